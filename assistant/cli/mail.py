"""`assistant mail show`: what the mail parser sees, as JSON lines."""

from __future__ import annotations

import json

import click

from assistant import AssistantError

from assistant.cli.base import cli




@cli.group()
def mail():
    """Read mail files as the assistant sees them."""


@mail.command("show")
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message (the default output is also JSON lines).")
def mail_show(paths, as_json):  # noqa: ARG001  JSON lines either way: this command is for inspection and scripts
    """Parse .eml, mbox, Maildir or folders: one JSON line per message, with thread ids.

    A file that cannot be read gives one {"path", "error"} line (and a line on stderr) and the rest
    goes on. Exit status 1 when nothing could be read.
    """
    from assistant.mail import MailError, assign_threads, read_mail

    items = list(read_mail(*paths))
    good = [m for m in items if not isinstance(m, MailError)]
    assign_threads(good)
    for m in items:
        click.echo(json.dumps(m.to_json(), ensure_ascii=False))
        if isinstance(m, MailError):
            click.echo(f"error: {m.path}: {m.error}", err=True)
    if not good:
        raise AssistantError("no message could be read" if items else f"no messages found in {', '.join(paths)}")
