"""`assistant prompt`, `assistant ask` and `assistant logs`: one-shot prompts, grounded answers, history."""

from __future__ import annotations

import json
import sys
import time

import click

from assistant import AssistantError

from assistant.cli.base import cli, emit, first_use_indexing, model_option, source_lines
from assistant.cli.run import _stream_out


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
    from assistant.services import chat, models

    if text in (None, "-"):
        text = sys.stdin.read()
    opts = _parse_options(options)
    model = models.resolve(model_name, "chat", base_url)
    db = chat.connect()
    cid = chat.last_conversation(db) if cont else None
    conversation = chat.Conversation.open(db, cid) if cid else chat.Conversation(db)
    conversation.system = system or ""  # a one-shot prompt sends a system prompt only when given one
    start = time.time()
    pieces = chat.stream(model, chat.chat_prompt(model, conversation.history, text, conversation.system), **opts)
    out = "".join(pieces) if no_stream else "".join(_stream_out(pieces))
    if no_stream:
        click.echo(out.strip())
    if not no_log:
        conversation.record(model, text, out.strip(), start, opts)


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
@click.option("-n", "--count", type=click.IntRange(1, 10_000), default=3, show_default=True, help="How many entries.")
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
@click.option("-k", type=click.IntRange(1, 20), default=4, show_default=True, help="How many passages to give the model.")
@click.option("--json", "as_json", is_flag=True, help='Print {"answer", "sources", "model"} as JSON.')
@model_option
def ask(question, collection, k, as_json, model_name, base_url):
    """Answer a question from a collection, citing the passages used as [1], [2].

    Example usage:

    \b
        assistant ask "How do I return a damaged item?" --collection demo-kb
    """
    from assistant.services import chat, models

    model = models.resolve(model_name, "ask", base_url)
    with first_use_indexing() as indexing:
        result = chat.ask(model, question, collection, k, indexing)
    if result.collection != collection:
        click.echo(f"(nothing indexed yet: answered from the built-in {result.collection} collection)", err=True)
    out = result.to_json("answer")
    if as_json:
        click.echo(json.dumps({"answer": out["answer"], "sources": out["sources"], "model": out["model"]}))
        return
    click.echo(result.text + "\n")
    click.echo("\n".join(source_lines(out["sources"])))
