"""What every `assistant` command shares: the click group, the model option, JSON and progress output."""

from __future__ import annotations

import json
import sys

import click

from assistant import __version__
from assistant.clickutil import ErrorGroup, stay_offline

stay_offline()


def emit(obj: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False) if as_json else text)


def progress(total: int | None, label: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())


@click.group(cls=ErrorGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="assistant")
@click.option("-c", "--continue", "cont", is_flag=True, help="Reopen the last conversation in the app.")
@click.pass_context
def cli(ctx, cont):
    """Local email summaries and support replies from small distilled models, on your CPU.

    With no command, opens the terminal app.
    """
    if ctx.invoked_subcommand is None:
        from assistant.tui.app import run_app

        run_app(continue_last=cont)


def model_option(f):
    f = click.option("--base-url", help="Server URL for an openai:NAME model (key from OPENAI_API_KEY).")(f)
    return click.option("-m", "--model", "model_name", help="Model name, a .gguf path, or openai:NAME.")(f)
