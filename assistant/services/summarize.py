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
from assistant.services.prompting import fit_messages, prompt_version
from assistant.tasks import summarize as summarize_task
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
    return prompt_version(model, summarize_task.VERSIONS, summarize_task.PROMPT_VERSION)


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
