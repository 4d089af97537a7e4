"""Prompt plumbing the services share: raw input to a Message, prompts fitted to a model's context,
and the prompt version a student was trained on."""

from __future__ import annotations

import email
import email.policy
from typing import Callable

from assistant.engine.models import ChatModel, PromptTooLong
from assistant.mail import Message, parse_message
from assistant.tasks import Email, Prompt, Task


def message_from_text(raw: bytes, path: str = "<stdin>") -> Message:
    """Parse `raw` as an email when it has headers, else treat it as the plain text of one message."""
    probe = email.message_from_bytes(raw, policy=email.policy.compat32)
    if any(probe.get(h) for h in ("From", "Subject", "Message-ID", "To", "Date")):
        parsed = parse_message(raw, path)
        if isinstance(parsed, Message):
            return parsed
    text = raw.decode("utf-8", errors="replace").strip()
    return Message(path=path, message_id="", body=text)


def fit(model: ChatModel, text: str, build: Callable[[str], Prompt], max_tokens: int) -> Prompt:
    """build(text) → Prompt, with `text` cut (never skipped) until the prompt fits the model's context."""
    for _ in range(6):
        prompt = build(text)
        n_ctx = getattr(model, "n_ctx", None)
        if not n_ctx or not hasattr(model, "prompt_text"):
            return prompt
        n = model.count_tokens(model.prompt_text(prompt.messages))
        if n + max_tokens <= n_ctx:
            return prompt
        text = text[: int(len(text) * (n_ctx - max_tokens) / n * 0.9)]
    raise PromptTooLong(n, n_ctx - max_tokens)


def version_for(model: ChatModel, t: Task) -> str:
    """The prompt version `model` was trained on for task `t` (its manifest says), else the task's current one."""
    return t.version_for(getattr(model, "prompt_version", None))


def email_of(msg: Message) -> Email:
    return Email(msg.body or msg.quoted, msg.subject, msg.from_, msg.date)
