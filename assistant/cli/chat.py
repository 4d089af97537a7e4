"""`assistant prompt`, `assistant ask` and `assistant logs`: one-shot prompts, grounded answers, history."""

from __future__ import annotations

import json
import sys
import time

import click

from assistant import AssistantError

from assistant.cli.base import cli, emit, model_option
from assistant.cli.run import _stream_out
from assistant.engine.loops import stop_loops


@cli.command()
@click.argument("text", required=False)
@click.option("-s", "--system", help="System prompt.")
@click.option("-o", "--option", "options", type=(str, str), multiple=True,
              help="temperature, max_tokens or seed, e.g. -o temperature 0.7")
@click.option("--no-stream", is_flag=True, help="Print the reply at the end instead of as it arrives.")
@click.option("-c", "--continue", "cont", is_flag=True, help="Continue the last conversation.")
@click.option("--no-log", is_flag=True, help="Do not record this prompt in the history.")
@model_option
def prompt(text, system, options, no_stream, cont, no_log, model_name, base_url):
    """Send one prompt to a model and print the reply (TEXT or - for stdin).

    Example usage:

    \b
        assistant prompt "Three tips for a polite refund email"
        assistant prompt -c "Shorter, please"
        assistant prompt -o temperature 0.8 -o seed 1 "Name a cat"
    """
    from assistant.engine import registry
    from assistant.services import store

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
    from assistant.services import store

    for r in store.search_logs(store.connect(), query, count):
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))
        emit(r, as_json, f"# {stamp} {r['model']} ({r['kind']})\n\n{r['prompt']}\n\n## Response\n\n{r['response']}\n")


@cli.command()
@click.argument("question")
@click.option("--collection", "-C", default="default", show_default=True, help="Which collection (a named index).")
@click.option("-k", default=4, show_default=True, help="How many passages to give the model.")
@click.option("--json", "as_json", is_flag=True, help='Print {"answer", "sources", "model"} as JSON.')
@model_option
def ask(question, collection, k, as_json, model_name, base_url):
    """Answer a question from a collection, citing the passages used as [1], [2].

    Example usage:

    \b
        assistant ask "How do I return a damaged item?" --collection demo-kb
    """
    from assistant.engine import registry
    from assistant.demo import resolve_collection
    from assistant.index import Index
    from assistant.engine.models import complete
    from assistant.tasks.ask import build_messages, cite

    idx = Index.open()
    name = resolve_collection(collection, idx)
    if name != collection:
        click.echo(f"(nothing indexed yet: answering from the built-in {name} collection)", err=True)
    hits = idx.search(question, name, k)
    model = registry.resolve(model_name, "chat", base_url)
    messages = build_messages(question, [h.text for h in hits])
    answer = cite(complete(model, messages, max_tokens=300), [h.text for h in hits])
    sources = [{"n": i, "path": h.path, "message_id": h.message_id, "title": h.title} for i, h in enumerate(hits, 1)]
    if as_json:
        click.echo(json.dumps({"answer": answer, "sources": sources, "model": model.name}))
        return
    click.echo(answer + "\n")
    for s in sources:
        click.echo(f"[{s['n']}] {s['title']} — {s['message_id'] or s['path']}")
