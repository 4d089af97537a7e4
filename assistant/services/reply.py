"""Support-reply drafts, as `assistant reply` and the app's mail screen ask for them."""

from __future__ import annotations

from typing import Iterator

from assistant.engine.loops import stop_loops
from assistant.engine.models import ChatModel
from assistant.mail import Message
from assistant.services.prompting import fit_messages, prompt_version
from assistant.tasks import reply as reply_task
from assistant.tasks.guard import scrub_output


def reply_messages(model: ChatModel, msg: Message, kb: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """The reply prompt, fitted to the model's context, and the injection payloads found in the message."""
    version = prompt_version(model, reply_task.VERSIONS, reply_task.PROMPT_VERSION)
    return fit_messages(model, msg.body or msg.quoted, lambda t: reply_task.build_messages(t, msg.subject, kb, version),
                        reply_task.MAX_TOKENS)


def stream_reply(model: ChatModel, msg: Message, kb: list[str] | None = None) -> Iterator[str]:
    """The reply as it is generated; when the message carried an injection, the scrubbed reply in one piece."""
    messages, payloads = reply_messages(model, msg, kb)
    pieces = reply_task.fill_slots(stop_loops(model.stream(messages, max_tokens=reply_task.MAX_TOKENS)), reply_slots())
    if payloads:  # payloads are scrubbed from the whole text, so nothing is shown before the end
        yield scrub_output(reply_task.clean("".join(pieces)), payloads)
        return
    yield from pieces


def draft_reply(model: ChatModel, msg: Message, kb: list[str] | None = None) -> str:
    return reply_task.clean("".join(stream_reply(model, msg, kb)))


def reply_slots() -> dict[str, str]:
    """Values for {{Slot}} placeholders the support student writes, from config.toml:

        [reply.slots]
        "Agent Name" = "Anna Berg, Example Support"
        "Company Name" = "Example Ltd"
    """
    from assistant.engine.registry import load_config

    slots = load_config().get("reply", {}).get("slots", {})
    return {str(k): str(v) for k, v in slots.items()} if isinstance(slots, dict) else {}
