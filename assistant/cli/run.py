"""`assistant summarize` and `assistant reply`: mail in, summaries and drafts out."""

from __future__ import annotations

import sys
import time

import click

from assistant import AssistantError, tasks
from assistant.cli.base import cli, emit, first_use_indexing, model_option, progress, source_lines
from assistant.tasks.summarize import LINE_SAMPLES


def _read_inputs(paths: tuple[str, ...]):
    from assistant.services.prompting import message_from_text

    if paths == ("-",) or not paths:
        return None, message_from_text(_bounded(sys.stdin.buffer, "<stdin>"))
    return list(paths), None


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("-l", "--length", type=click.Choice(["line", "short", "long"]), default="short", show_default=True,
              help="line: a subject line; short: 1-2 sentences; long: a paragraph.")
@click.option("--threads", is_flag=True, help="One summary per thread instead of per message.")
@click.option("--samples", type=click.IntRange(0, 32), default=None, metavar="N",
              help="Subject lines: write N more lines by sampling and keep the one most agree with "
                   f"(default {LINE_SAMPLES}; 0 keeps the first line, faster).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--refresh", is_flag=True, help="Summarize again what the summary cache already holds (and replace it).")
@click.option("--no-log", is_flag=True, help="Do not record this run in the history.")
@model_option
def summarize(paths, length, threads, samples, as_json, refresh, no_log, model_name, base_url):
    """Summarize email: .eml files, mbox files, Maildirs, folders, or - for stdin.

    Example usage:

    \b
        assistant summarize message.eml
        assistant summarize ~/Mail/INBOX --threads --length long --json
        cat note.txt | assistant summarize - --length line

    Summaries are kept in a cache in the data dir: run again on the same mailbox, only new or
    changed messages are summarized (--refresh makes them all again). Several messages are
    decoded at once. A message that cannot be read or summarized is reported on stderr (and as
    an {"path", "error"} line with --json) and the rest go on. Exit status: 0 when at least one
    summary was written, 1 when none was (nothing found, or every message failed).
    """
    from assistant.mail import MailError
    from assistant.services import inbox, models, store
    from assistant.services import summarize as summarize_service
    from assistant.services.summary_cache import SummaryCache

    # a default trained for what is asked: a subject-line student never writes paragraphs
    model = models.resolve(model_name, "summarize", base_url, covers=tasks.summary_tasks(length, threads))
    files, stdin_msg = _read_inputs(paths)
    cache = None
    if stdin_msg is not None:
        items, total = [stdin_msg], 1
    elif threads:  # threads need every message's headers first; bodies are read thread by thread
        headers = list(inbox.scan(*files))
        good = [h for h in headers if not isinstance(h, MailError)]
        items = [h for h in headers if isinstance(h, MailError)] + inbox.group(good)
        total = len(items)
    else:
        items, total = inbox.scan(*files), inbox.count(*files)
    if stdin_msg is None:
        cache = SummaryCache()
    results = summarize_service.summaries(model, items, length, samples, cache, refresh)
    db = None if no_log else store.connect()
    done = failed = 0
    with progress(total, "summarizing") as bar:
        task = bar.add_task("", total=total)
        for r in results:
            done += 1
            if isinstance(r, MailError):
                failed += 1
                if as_json:
                    emit(r.to_json(), as_json, "")
                click.echo(f"error: {r.path}: {r.error}", err=True)
            else:
                emit(r.to_json(), as_json, f"{r.label}: {r.summary}")
                if db and not r.cached:  # the history records what a model wrote, once
                    store.log_response(db, model=r.model, kind=f"summarize-{length}", prompt=r.path, response=r.summary)
            bar.update(task, advance=1, total=max(total, done))
    if done == 0:
        raise AssistantError(f"no messages found in {', '.join(files)}")
    if failed == done:
        raise AssistantError(f"nothing was summarized: every message failed ({failed})")
    if failed:
        click.echo(f"warning: {failed} of {done} message(s) could not be summarized", err=True)


@cli.command()
@click.argument("path", default="-")
@click.option("--json", "as_json", is_flag=True, help="Print {\"reply\", \"model\"} as JSON.")
@click.option("--kb", help="Ground the reply in this retrieval collection (demo-kb: the built-in one); the "
                            "passages its [n] marks cite are listed under it, and in --json as sources.")
@click.option("--edit", is_flag=True, help="Open the draft in $EDITOR; the final text is kept for retraining.")
@click.option("--no-log", is_flag=True, help="Do not record this run in the history.")
@model_option
def reply(path, as_json, kb, edit, no_log, model_name, base_url):
    """Draft a support reply to an email file, or to text on stdin (-).

    Text without mail headers is taken as the customer's message itself.

    Example usage:

    \b
        assistant reply ticket.eml
        echo "I was charged twice for my order" | assistant reply -
    """
    from pathlib import Path

    from assistant.services import models, prompting, store
    from assistant.services import reply as reply_service
    from assistant.mail import MailError, read_mail

    model = models.resolve(model_name, "reply", base_url, covers="reply+kb" if kb else None)
    if path == "-":
        msg = prompting.message_from_text(_bounded(sys.stdin.buffer, "<stdin>"))
    else:
        if not Path(path).is_file():  # also never opens a FIFO or a device
            raise AssistantError(f"{path}: no such file")
        with open(path, "rb") as f:
            msg = prompting.message_from_text(_bounded(f, path), path)
        if not (msg.body or msg.subject):
            first = next(read_mail(path), None)
            raise AssistantError(f"{path}: {first.error if isinstance(first, MailError) else 'empty message'}")
    start, grounded = time.time(), None
    if kb:  # drafted whole: its citation marks are placed before it is shown
        with first_use_indexing() as indexing:
            grounded = reply_service.grounded_reply(model, msg, kb, progress=indexing)
        text = grounded.text
        if grounded.collection != kb:
            click.echo(f"(nothing indexed yet: grounded in the built-in {grounded.collection} collection)", err=True)
    elif as_json or edit:
        text = reply_service.draft_reply(model, msg)
    else:
        text = "".join(_stream_out(reply_service.stream_reply(model, msg)))
    final = text
    if edit:
        final = (click.edit(text) or text).strip()
    if as_json:
        emit({**(grounded.to_json("reply") if grounded else {}), "reply": final, "model": model.name}, True, "")
    elif edit or grounded:
        click.echo(final)
    if grounded and not as_json:
        click.echo("\n" + "\n".join(source_lines(grounded.to_json()["sources"])))
    db = None if no_log else _history()
    if db is not None:
        store.log_response(db, model=model.name, kind="reply", prompt=msg.body, response=final,
                           duration_ms=int((time.time() - start) * 1000))
        if edit:
            store.add_feedback(db, task="reply", model=model.name, source=path, input=msg.body, draft=text, final=final)


MAX_MESSAGE_BYTES = 25 << 20  # a larger "message" is no email a person sends


def _bounded(stream, name: str) -> bytes:
    raw = stream.read(MAX_MESSAGE_BYTES + 1)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise AssistantError(f"{name}: larger than {MAX_MESSAGE_BYTES >> 20} MB: not read")
    return raw


def _history():
    """The history database, or None with a warning when it cannot be opened: the output matters more."""
    from assistant.services import store

    try:
        return store.connect()
    except AssistantError as e:
        click.echo(f"warning: history is not saved: {e}", err=True)
        return None


def _stream_out(pieces):
    for p in pieces:
        click.echo(p, nl=False)
        yield p
    click.echo()
