"""What every `assistant` command shares: the click group, the model option, JSON and progress output."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from assistant import __version__
from assistant.clickutil import ErrorGroup, stay_offline

stay_offline()


def emit(obj: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False) if as_json else text)


def source_lines(sources: list[dict]) -> list[str]:
    """The passages an answer's [n] marks point at, one line each: number, title, where it is."""
    return [f"[{s['n']}] {s['title'] or '(untitled)'} — {s['message_id'] or s['path']}" for s in sources]


def progress(total: int | None, label: str):
    """A progress bar on stderr when it is a terminal, else a one-line status there every STATUS_EVERY
    seconds (a log or a pipe still shows that long work is moving). Use as rich's Progress:
    `task = bar.add_task("", total=n)`, then `bar.update(task, advance=1)`."""
    if not sys.stderr.isatty():
        return LineStatus(label)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


STATUS_EVERY = 10.0


@contextmanager
def first_use_indexing(label: str = "indexing the demo knowledge base (first use)"):
    """A progress callback for Index.add, shown as `progress` shows bars (nothing when nothing is indexed)."""
    with progress(None, label) as bar:
        task = bar.add_task("", total=None)
        yield lambda stats, total: bar.update(task, total=total, completed=stats.files_seen)


class LineStatus:
    """rich.Progress's add_task/update for a stderr that is not a terminal: `label: 12/80 (15%), 0:41`."""

    def __init__(self, label: str, every: float | None = None) -> None:
        import time

        self.label, self.every, self.clock = label, STATUS_EVERY if every is None else every, time.monotonic
        self.start = self.last = self.clock()
        self.done, self.total = 0, None

    def __enter__(self) -> "LineStatus":
        return self

    def __exit__(self, *exc) -> None:
        if self.last != self.start:  # said something before: say how it ended
            self._say()

    def add_task(self, description: str = "", total: int | None = None) -> int:
        self.total = total
        return 0

    def update(self, task: int = 0, advance: int = 0, total: int | None = None, completed: int | None = None, **_) -> None:
        self.done = completed if completed is not None else self.done + advance
        self.total = total if total is not None else self.total
        if self.clock() - self.last >= self.every:
            self._say()

    def _say(self) -> None:
        self.last = self.clock()
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        elapsed = int(self.last - self.start)
        click.echo(f"{self.label}: {self.done}/{self.total or '?'}{share}, {elapsed // 60}:{elapsed % 60:02d}", err=True)


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
