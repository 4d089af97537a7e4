"""Support-reply drafts, as `assistant reply` and the app's mail screen ask for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from assistant.engine.loops import stop_loops
from assistant.engine.models import ChatModel
from assistant.mail import Message
from assistant import tasks
from assistant.services.prompting import email_of, fit, version_for
from assistant.tasks import Prompt
from assistant.tasks import reply as reply_task
from assistant.tasks.guard import scrub_output

if TYPE_CHECKING:
    from assistant.services.retrieval import Grounded  # imported where used: drafting loads no index


def reply_prompt(model: ChatModel, msg: Message, kb: list[str] | None = None) -> Prompt:
    """The reply prompt, fitted to the model's context, with the injection payloads found in the message."""
    t = tasks.task("reply")
    version = version_for(model, t)
    return fit(model, t.text(email_of(msg)), lambda text: t.prompt(text, version, msg.subject, kb), t.max_tokens)


def stream_reply(model: ChatModel, msg: Message, kb: list[str] | None = None) -> Iterator[str]:
    """The reply as it is generated; when the message carried an injection, the scrubbed reply in one piece."""
    prompt = reply_prompt(model, msg, kb)
    pieces = reply_task.fill_slots(stop_loops(model.stream(prompt.messages, max_tokens=reply_task.MAX_TOKENS)), reply_slots())
    if prompt.payloads:  # payloads are scrubbed from the whole text, so nothing is shown before the end
        yield scrub_output(reply_task.clean("".join(pieces)), prompt.payloads)
        return
    yield from pieces


def draft_reply(model: ChatModel, msg: Message, kb: list[str] | None = None) -> str:
    return reply_task.clean("".join(stream_reply(model, msg, kb)))


def grounded_reply(model: ChatModel, msg: Message, collection: str, k: int = 4, progress=None) -> Grounded:
    """A reply drafted with the top `k` passages of a collection in its prompt; [n] marks say which passage
    backs a sentence (the model's own, else where most of a sentence's words come from one passage)."""
    from assistant.services import retrieval
    from assistant.tasks.ask import cite

    name, hits = retrieval.passages(f"{msg.subject}\n{msg.body}".strip(), collection, k, progress=progress)
    texts = [h.text for h in hits]
    return retrieval.Grounded(cite(draft_reply(model, msg, texts), texts), hits, name, model.name)


def reply_slots() -> dict[str, str]:
    """Values for {{Slot}} placeholders the support student writes, from config.toml:

        [reply.slots]
        "Agent Name" = "Anna Berg, Example Support"
        "Company Name" = "Example Ltd"
    """
    from assistant.engine.registry import load_config

    slots = load_config().get("reply", {}).get("slots", {})
    return {str(k): str(v) for k, v in slots.items()} if isinstance(slots, dict) else {}
