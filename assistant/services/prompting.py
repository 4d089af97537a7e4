"""Prompt plumbing the services share: raw input to a Message, prompts fitted to a model's context,
and the prompt version a student was trained on."""

from __future__ import annotations

import re
from typing import Callable

from assistant.engine.models import ChatModel, PromptTooLong
from assistant import AssistantError
from assistant.mail import Message, not_mail, parse_message
from assistant.tasks import Email, Prompt, Task


_FIRST_HEADER = re.compile(rb"\A[ \t]*[A-Za-z][A-Za-z0-9-]{0,76}:")
_KNOWN_HEADER = re.compile(rb"^(from|subject|message-id|to|date):", re.I | re.M)


def message_from_text(raw: bytes, path: str = "<stdin>") -> Message:
    """Parse `raw` as an email when it has headers, else treat it as the plain text of one message.

    Raises:
        AssistantError: `raw` is no text at all (an Outlook .msg, a binary file).
    """
    why = not_mail(raw)
    if why:
        raise AssistantError(f"{path}: {why}")
    head = re.split(rb"\r?\n\r?\n", raw[:65536], maxsplit=1)[0]  # headers end at the first blank line
    if _FIRST_HEADER.match(head) and _KNOWN_HEADER.search(head):
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
