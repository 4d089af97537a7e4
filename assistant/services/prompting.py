"""Prompt plumbing the services share: raw input to a Message, prompts fitted to a model's context,
and the prompt version a student was trained on."""

from __future__ import annotations

import email
import email.policy

from assistant.engine.models import ChatModel, PromptTooLong
from assistant.mail import Message, parse_message


def message_from_text(raw: bytes, path: str = "<stdin>") -> Message:
    """Parse `raw` as an email when it has headers, else treat it as the plain text of one message."""
    probe = email.message_from_bytes(raw, policy=email.policy.compat32)
    if any(probe.get(h) for h in ("From", "Subject", "Message-ID", "To", "Date")):
        parsed = parse_message(raw, path)
        if isinstance(parsed, Message):
            return parsed
    text = raw.decode("utf-8", errors="replace").strip()
    return Message(path=path, message_id="", body=text)


def fit_messages(model: ChatModel, text: str, build, max_tokens: int) -> tuple[list[dict], list[str]]:
    """build(text) → (messages, payloads), with `text` cut (never skipped) until the prompt fits the context."""
    for _ in range(6):
        messages, payloads = build(text)
        n_ctx = getattr(model, "n_ctx", None)
        if not n_ctx or not hasattr(model, "prompt_text"):
            return messages, payloads
        n = model.count_tokens(model.prompt_text(messages))
        if n + max_tokens <= n_ctx:
            return messages, payloads
        text = text[: int(len(text) * (n_ctx - max_tokens) / n * 0.9)]
    raise PromptTooLong(n, n_ctx - max_tokens)


def prompt_version(model: ChatModel, known: tuple[str, ...], current: str) -> str:
    """The prompt version a student was trained on (from its manifest), else the current one."""
    v = getattr(model, "prompt_version", None)
    return v if v in known else current
