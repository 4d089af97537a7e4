"""`assistant digest`: a whole mailbox at a glance, thread by thread."""

from __future__ import annotations

import click

from assistant import AssistantError, tasks
from assistant.cli.base import cli, emit, model_option, progress


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--since", metavar="AGE|DATE", help="Only messages this recent: 30m, 12h, 1d, 2w, or a date (2001-10-30).")
@click.option("--unread", is_flag=True, help="Only unread messages (Maildir flags; an mbox's Status header).")
@click.option("--json", "fmt", flag_value="json", help="One JSON object per thread: ids, paths, summaries.")
@click.option("--md", "fmt", flag_value="md", default=True, help="Markdown (the default).")
@click.option("--samples", type=click.IntRange(0, 32), default=None, metavar="N",
              help="Consensus samples for each one-line summary (0: the first line, faster).")
@click.option("--refresh", is_flag=True, help="Summarize again what the summary cache already holds.")
@model_option
def digest(paths, since, unread, fmt, samples, refresh, model_name, base_url):
    """Threads of a Maildir or mbox, newest activity first: a one-line summary of each, and a
    short one where a thread holds more than one message.

    Example usage:

    \b
        assistant digest ~/Mail/INBOX --since 1d
        assistant digest ~/Mail/INBOX --unread --json | jq .summary

    Summaries come from the summary cache where it has them (the app and `assistant summarize`
    fill it too). Exit status 1 when no message could be read.
    """
    from assistant.services import digest as digest_service
    from assistant.services import inbox, models
    from assistant.services.summary_cache import SummaryCache

    after = inbox.since(since) if since else None
    selection = digest_service.select(paths, after, unread)
    for e in selection.errors:
        click.echo(f"error: {e.path}: {e.error}", err=True)
    if selection.read == 0:
        raise AssistantError(f"no message could be read in {', '.join(paths)}")
    # one model decodes the lines and the short summaries together: the default must be trained for both
    covers = tasks.summary_tasks("line") + tasks.summary_tasks("short", threads=True)
    model = models.resolve(model_name, "summarize", base_url, covers=covers) if selection.threads else None
    if fmt != "json":
        scope = [f"since {since}"] * bool(since) + ["unread"] * unread
        click.echo(digest_service.heading(selection, "Digest" + (f" ({', '.join(scope)})" if scope else "")))
    with progress(selection.summaries, "digest") as bar:
        task = bar.add_task("", total=selection.summaries)
        entries = digest_service.digest(model, selection, samples, SummaryCache(), refresh,
                                        lambda: bar.update(task, advance=1)) if model else ()
        for entry in entries:
            emit(entry.to_json(), fmt == "json", digest_service.markdown(entry))
