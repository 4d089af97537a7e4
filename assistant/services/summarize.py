"""Summaries of messages and threads, as `assistant summarize` and the app's mail screen ask for them.

No Textual and no torch here; every function takes a ChatModel so tests and the app can
pass any backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from assistant.engine.models import ChatModel, complete
from assistant.tasks.summarize import summary_of
from assistant.mail import Message, MailError, Thread, group_threads
from assistant import tasks
from assistant.services.prompting import email_of, fit, version_for
from assistant.tasks.guard import scrub_output


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


def summarize_message(model: ChatModel, msg: Message, length: str = "short", samples: int | None = None) -> Summary:
    t = tasks.for_summary(length)
    version = version_for(model, t)
    prompt = fit(model, t.text(email_of(msg)), lambda text: t.prompt(text, version), t.max_tokens)
    summary = summary_of(model, prompt.messages, length, samples)
    if not summary:  # an echo or a bare label ("Email:"): a line falls back to the subject, else sample once more
        summary = msg.subject if length == "line" else t.clean(
            complete(model, prompt.messages, max_tokens=t.max_tokens, temperature=0.7, seed=1))
    return Summary(msg.path, msg.message_id, scrub_output(summary, prompt.payloads), model.name)


def summarize_thread(model: ChatModel, thread: Thread, length: str = "short", samples: int | None = None) -> Summary:
    if len(thread.messages) == 1:
        s = summarize_message(model, thread.messages[0], length, samples)
        s.thread_id, s.messages = thread.thread_id, 1
        return s
    t = tasks.for_summary(length, thread=True)
    version = version_for(model, t)
    text = t.text([email_of(m) for m in thread.messages], thread.subject)
    prompt = fit(model, text, lambda text: t.prompt(text, version), t.max_tokens)
    summary = scrub_output(summary_of(model, prompt.messages, length, samples), prompt.payloads)
    first = thread.messages[0]
    return Summary(first.path, first.message_id, summary, model.name, thread.thread_id, len(thread.messages))


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
