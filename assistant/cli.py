"""The `assistant` command: summaries, support replies and chat with small local models.

    assistant                               open the terminal app
    assistant summarize ~/Mail/INBOX --length line --json
    echo "My parcel never arrived" | assistant reply -
    assistant prompt "Write a haiku about inboxes"
"""

from __future__ import annotations

import json
import sys
import time

import click

from assistant import AssistantError, __version__
from assistant.clickutil import ErrorGroup, stay_offline
from assistant.tasks.loops import stop_loops
from assistant.tasks.summarize import LINE_SAMPLES

stay_offline()


def _emit(obj: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False) if as_json else text)


def _progress(total: int | None, label: str):
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


def _model_option(f):
    f = click.option("--base-url", help="Server URL for an openai:NAME model (key from OPENAI_API_KEY).")(f)
    return click.option("-m", "--model", "model_name", help="Model name, a .gguf path, or openai:NAME.")(f)


def _read_inputs(paths: tuple[str, ...]):
    from assistant.services import message_from_text

    if paths == ("-",) or not paths:
        return None, message_from_text(sys.stdin.buffer.read())
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
@click.option("--no-log", is_flag=True, help="Do not record this run in the history.")
@_model_option
def summarize(paths, length, threads, samples, as_json, no_log, model_name, base_url):
    """Summarize email: .eml files, mbox files, Maildirs, folders, or - for stdin.

    Example usage:

    \b
        assistant summarize message.eml
        assistant summarize ~/Mail/INBOX --threads --length long --json
        cat note.txt | assistant summarize - --length line
    """
    from assistant import registry, services, store
    from assistant.mail import MailError

    model = registry.resolve(model_name, "summarize", base_url)
    files, stdin_msg = _read_inputs(paths)
    if stdin_msg is not None:
        results = iter([services.summarize_message(model, stdin_msg, length, samples)])
        total = 1
    else:
        from assistant.mail import read_mail

        items = list(read_mail(*files))  # parsed once: the bar's total is exact, mbox files included
        total = services.count_units(items, threads)
        results = services.summarize_items(model, items, length, threads, samples)
    db = None if no_log else store.connect()
    failed = 0
    with _progress(total, "summarizing") as bar:
        task = bar.add_task("", total=total)
        for r in results:
            if isinstance(r, MailError):
                failed += 1
                _emit(r.to_json(), as_json, "")
                if not as_json:
                    click.echo(f"error: {r.path}: {r.error}", err=True)
            else:
                _emit(r.to_json(), as_json, f"{r.path}: {r.summary}")
                if db:
                    store.log_response(db, model=r.model, kind=f"summarize-{length}", prompt=r.path, response=r.summary)
            bar.update(task, advance=1)
    if failed and not as_json:
        click.echo(f"{failed} message(s) could not be summarized", err=True)


@cli.command()
@click.argument("path", default="-")
@click.option("--json", "as_json", is_flag=True, help="Print {\"reply\", \"model\"} as JSON.")
@click.option("--kb", help="Ground the reply in this retrieval collection and cite it.")
@click.option("--edit", is_flag=True, help="Open the draft in $EDITOR; the final text is kept for retraining.")
@click.option("--no-log", is_flag=True, help="Do not record this run in the history.")
@_model_option
def reply(path, as_json, kb, edit, no_log, model_name, base_url):
    """Draft a support reply to an email file, or to text on stdin (-).

    Text without mail headers is taken as the customer's message itself.

    Example usage:

    \b
        assistant reply ticket.eml
        echo "I was charged twice for my order" | assistant reply -
    """
    from pathlib import Path

    from assistant import registry, services, store
    from assistant.mail import MailError, read_mail

    model = registry.resolve(model_name, "reply", base_url)
    if path == "-":
        msg = services.message_from_text(sys.stdin.buffer.read())
    else:
        if not Path(path).is_file():
            raise AssistantError(f"{path}: no such file")
        msg = services.message_from_text(Path(path).read_bytes(), path)
        if not (msg.body or msg.subject):
            first = next(read_mail(path), None)
            raise AssistantError(f"{path}: {first.error if isinstance(first, MailError) else 'empty message'}")
    chunks = None
    if kb:
        from assistant.demo import resolve_collection
        from assistant.index import Index

        idx = Index.open()
        chunks = [h.text for h in idx.search(msg.subject + "\n" + msg.body, resolve_collection(kb, idx), k=4)]
    start = time.time()
    if as_json or edit:
        text = services.draft_reply(model, msg, chunks)
    else:
        text = "".join(_stream_out(services.stream_reply(model, msg, chunks)))
    final = text
    if edit:
        final = (click.edit(text) or text).strip()
    if as_json:
        _emit({"reply": final, "model": model.name}, True, "")
    elif edit:
        click.echo(final)
    if not no_log:
        db = store.connect()
        store.log_response(db, model=model.name, kind="reply", prompt=msg.body, response=final,
                           duration_ms=int((time.time() - start) * 1000))
        if edit:
            store.add_feedback(db, task="reply", model=model.name, source=path, input=msg.body, draft=text, final=final)


def _stream_out(pieces):
    for p in pieces:
        click.echo(p, nl=False)
        yield p
    click.echo()


@cli.command()
@click.argument("text", required=False)
@click.option("-s", "--system", help="System prompt.")
@click.option("-o", "--option", "options", type=(str, str), multiple=True,
              help="temperature, max_tokens or seed, e.g. -o temperature 0.7")
@click.option("--no-stream", is_flag=True, help="Print the reply at the end instead of as it arrives.")
@click.option("-c", "--continue", "cont", is_flag=True, help="Continue the last conversation.")
@click.option("--no-log", is_flag=True, help="Do not record this prompt in the history.")
@_model_option
def prompt(text, system, options, no_stream, cont, no_log, model_name, base_url):
    """Send one prompt to a model and print the reply (TEXT or - for stdin).

    Example usage:

    \b
        assistant prompt "Three tips for a polite refund email"
        assistant prompt -c "Shorter, please"
        assistant prompt -o temperature 0.8 -o seed 1 "Name a cat"
    """
    from assistant import registry, store

    if text in (None, "-"):
        text = sys.stdin.read()
    opts = _parse_options(options)
    model = registry.resolve(model_name, "chat", base_url)
    db = store.connect()
    cid = store.last_conversation(db) if cont else None
    history = store.conversation_messages(db, cid) if cid else []
    messages = ([{"role": "system", "content": system}] if system else []) + history + [{"role": "user", "content": text}]
    start = time.time()
    pieces = stop_loops(model.stream(messages, **opts))
    out = "".join(pieces) if no_stream else "".join(_stream_out(pieces))
    if no_stream:
        click.echo(out.strip())
    if not no_log:
        cid = cid or store.new_conversation(db, model.name, system=system or "")
        store.log_response(db, model=model.name, kind="chat", prompt=text, response=out.strip(), system=system or "",
                           conversation_id=cid, options=opts, duration_ms=int((time.time() - start) * 1000))


def _parse_options(options) -> dict:
    kinds = {"temperature": float, "max_tokens": int, "seed": int}
    out = {"max_tokens": 512}
    for key, value in options:
        if key not in kinds:
            raise AssistantError(f"unknown option {key!r}; use one of {', '.join(kinds)}")
        try:
            out[key] = kinds[key](value)
        except ValueError:
            raise AssistantError(f"option {key} takes a {kinds[key].__name__}, not {value!r}") from None
    return out


@cli.command()
@click.option("-n", "--count", default=3, show_default=True, help="How many entries.")
@click.option("-q", "--query", help="Full-text search over prompts and responses.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def logs(count, query, as_json):
    """Show recent prompts and responses from the history."""
    from assistant import store

    for r in store.search_logs(store.connect(), query, count):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))
        _emit(r, as_json, f"# {stamp} {r['model']} ({r['kind']})\n\n{r['prompt']}\n\n## Response\n\n{r['response']}\n")


def main() -> None:  # also `python -m assistant.cli`
    cli(prog_name="assistant")


from assistant import cli_index, cli_more  # noqa: E402,F401  more commands, registered on `cli`


if __name__ == "__main__":  # `python -m assistant.cli`: run the imported module, where every command is registered
    from assistant.cli import main as _main

    _main()
