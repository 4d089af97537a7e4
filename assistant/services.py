"""What the CLI and the app do with a model: summarize mail, draft replies, chat.

No Textual and no torch here; every function takes a ChatModel so tests and the app can
pass any backend.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from typing import Iterable, Iterator

from assistant.mail import Message, MailError, Thread, group_threads, parse_message
from assistant.models import ChatModel, PromptTooLong, complete
from assistant.tasks import reply as reply_task
from assistant.tasks import summarize as summarize_task
from assistant.tasks.guard import scrub_output
from assistant.tasks.loops import stop_loops


@dataclass
class Summary:
    path: str
    message_id: str
    summary: str
    model: str
    thread_id: str | None = None
    messages: int | None = None

    def to_json(self) -> dict:
        d = {"path": self.path, "message_id": self.message_id, "summary": self.summary, "model": self.model}
        if self.thread_id:
            d.update(thread_id=self.thread_id, messages=self.messages)
        return d


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


def summary_of(model: ChatModel, messages: list[dict], length: str, samples: int | None = None) -> str:
    """The cleaned summary for prepared chat messages. A subject line is the consensus of the greedy
    line and `samples` sampled ones (default summarize_task.LINE_SAMPLES; 0 for the greedy line alone)."""
    max_tokens = summarize_task.MAX_TOKENS[length]
    summary = summarize_task.clean(complete(model, messages, max_tokens=max_tokens), length)
    n = summarize_task.LINE_SAMPLES if samples is None else samples
    if length != "line" or n <= 0:
        return summary
    sampled = [summarize_task.clean(complete(model, messages, max_tokens=max_tokens, seed=k,
                                             temperature=summarize_task.LINE_TEMPERATURE), length)
               for k in range(1, n + 1)]
    return summarize_task.consensus([summary, *sampled])


def summarize_message(model: ChatModel, msg: Message, length: str = "short", samples: int | None = None) -> Summary:
    text = summarize_task.input_text(msg.body or msg.quoted, msg.subject, msg.from_, msg.date, length)
    version = _summarize_version(model)
    build = lambda t: summarize_task.build_messages(t, length, version=version)  # noqa: E731
    messages, payloads = fit_messages(model, text, build, summarize_task.MAX_TOKENS[length])
    summary = summary_of(model, messages, length, samples)
    if not summary:  # an echo or a bare label ("Email:"): a line falls back to the subject, else sample once more
        summary = msg.subject if length == "line" else summarize_task.clean(
            complete(model, messages, max_tokens=summarize_task.MAX_TOKENS[length], temperature=0.7, seed=1), length)
    return Summary(msg.path, msg.message_id, scrub_output(summary, payloads), model.name)


def summarize_thread(model: ChatModel, thread: Thread, length: str = "short", samples: int | None = None) -> Summary:
    if len(thread.messages) == 1:
        s = summarize_message(model, thread.messages[0], length, samples)
        s.thread_id, s.messages = thread.thread_id, 1
        return s
    text = f"Subject: {thread.subject}\n" + summarize_task.thread_text(
        [(m.from_, m.date, m.body) for m in thread.messages])
    version = _summarize_version(model)
    messages, payloads = fit_messages(model, text, lambda t: summarize_task.build_messages(t, length, thread=True, version=version),
                                      summarize_task.MAX_TOKENS[length])
    summary = scrub_output(summary_of(model, messages, length, samples), payloads)
    first = thread.messages[0]
    return Summary(first.path, first.message_id, summary, model.name, thread.thread_id, len(thread.messages))


def _summarize_version(model: ChatModel) -> str:
    return _prompt_version(model, summarize_task.VERSIONS, summarize_task.PROMPT_VERSION)


def _prompt_version(model: ChatModel, known: tuple[str, ...], current: str) -> str:
    """The prompt version a student was trained on (from its manifest), else the current one."""
    v = getattr(model, "prompt_version", None)
    return v if v in known else current


def count_units(items: list[Message | MailError], threads: bool) -> int:
    """How many results summarize_items will give: one per message (or thread) and per error."""
    if not threads:
        return len(items)
    good = [i for i in items if not isinstance(i, MailError)]
    return len(items) - len(good) + len(group_threads(good))


def summarize_items(model: ChatModel, items: Iterable[Message | MailError], length: str = "short",
                    threads: bool = False, samples: int | None = None) -> Iterator[Summary | MailError]:
    """Summaries of every message (or thread) in `items` (from read_mail); errors pass through as MailError."""
    if not threads:
        for item in items:
            yield item if isinstance(item, MailError) else _safe(summarize_message, model, item, length, samples)
        return
    good = []
    for item in items:
        if isinstance(item, MailError):
            yield item
        else:
            good.append(item)
    for thread in group_threads(good):
        yield _safe(summarize_thread, model, thread, length, samples)


def _safe(fn, model, item, length, samples):
    from assistant import AssistantError

    try:
        return fn(model, item, length, samples)
    except AssistantError as e:
        path = item.path if isinstance(item, Message) else item.messages[0].path
        return MailError(path, str(e))


def reply_messages(model: ChatModel, msg: Message, kb: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """The reply prompt, fitted to the model's context, and the injection payloads found in the message."""
    version = _prompt_version(model, reply_task.VERSIONS, reply_task.PROMPT_VERSION)
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
    from assistant.registry import load_config

    slots = load_config().get("reply", {}).get("slots", {})
    return {str(k): str(v) for k, v in slots.items()} if isinstance(slots, dict) else {}
