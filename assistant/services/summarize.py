"""Summaries of messages and threads, as `assistant summarize`, `assistant digest` and the app's mail screen ask for them.

    for s in summaries(model, scan("~/Mail/INBOX"), "line", cache=SummaryCache()):   # in input order
        print(s.path, s.summary)
    summarize_thread(model, thread, "short")          # one, raising AssistantError when it fails

No Textual and no torch here; every function takes a ChatModel so tests and the app can pass any
backend. A model that can decode many prompts at once (LlamaCppModel.generate_many) gets every
message's prompts as parallel sequences: a subject line's greedy and sampled lines share the
evaluation of their prompt, and several messages are decoded together. Any other model is asked
one prompt at a time, as `assistant.tasks.summarize.summary_of` asks.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from assistant import AssistantError, tasks
from assistant.engine.models import ChatModel, complete
from assistant.mail import MailError, Message, Thread
from assistant.services import inbox
from assistant.services.prompting import email_of, fit, version_for
from assistant.services.summary_cache import Key, SummaryCache, model_key
from assistant.tasks import Prompt
from assistant.tasks.guard import scrub_output
from assistant.tasks.summarize import LENGTHS, LINE_HEAD_CHARS, LINE_SAMPLES, LINE_TEMPERATURE, consensus


@dataclass
class Summary:
    path: str
    message_id: str
    summary: str
    model: str
    thread_id: str | None = None
    messages: int | None = None
    subject: str | None = None  # a thread's subject
    cached: bool = False  # read from the summary cache, not written now

    def to_json(self) -> dict:
        d = {"path": self.path, "message_id": self.message_id, "summary": self.summary, "model": self.model}
        if self.thread_id:
            d.update(thread_id=self.thread_id, messages=self.messages, subject=self.subject)
        return d

    @property
    def label(self) -> str:
        """What a person reads it by: a thread's subject and size, else the message's path."""
        if self.thread_id:
            return f"{self.subject} ({self.messages} message{'s' if self.messages != 1 else ''})"
        return self.path


def summarize_message(model: ChatModel, msg: Message, length: str = "short", samples: int | None = None) -> Summary:
    """The summary of one message. Raises AssistantError when it cannot be made."""
    return _one(summaries(model, [msg], length, samples))


def summarize_thread(model: ChatModel, thread: Thread, length: str = "short", samples: int | None = None,
                     cache: SummaryCache | None = None) -> Summary:
    """The summary of one thread (of one message: that message's). Raises AssistantError when it cannot be made."""
    return _one(summaries(model, [thread], length, samples, cache))


def _one(results: Iterator[Summary | MailError]) -> Summary:
    r = next(results)
    if isinstance(r, MailError):
        raise AssistantError(r.error)
    return r


def summaries(model: ChatModel, items: Iterable[Message | Thread | MailError], length: str = "short",
              samples: int | None = None, cache: SummaryCache | None = None,
              refresh: bool = False) -> Iterator[Summary | MailError]:
    """A summary of each message or thread in `items`, in their order; a MailError passes through,
    and one that cannot be summarized becomes a MailError naming it.

    `items` is read lazily: a few dozen messages are in memory at a time, whatever its length.
    Headers (inbox.Header) are read in full only when summarized. With a `cache`, a summary made
    before from the same bytes by the same model, length, prompt version and samples is reused
    (`refresh`: made again and replaced), and each new one is stored as soon as it is made.
    `samples`: consensus samples of a subject line (default LINE_SAMPLES; 0: the greedy line).
    """
    return summaries_of(model, ((item, length) for item in items), samples, cache, refresh)


def cached(model: ChatModel, items: Iterable[Message | Thread], length: str, cache: SummaryCache,
           samples: int | None = None) -> list[Summary | None]:
    """What the cache already holds for each item (None where it has nothing), without the model."""
    run = _Run(model, samples, cache, refresh=False)
    return [u.result if isinstance(u.result, Summary) else None
            for u in (run.start(i, item, length, lookup_only=True) for i, item in enumerate(items))]


def open_cache() -> SummaryCache:
    """The user's summary cache (in the data dir)."""
    return SummaryCache()


def summaries_of(model: ChatModel, requests: Iterable[tuple[Message | Thread | MailError, str]],
                 samples: int | None = None, cache: SummaryCache | None = None,
                 refresh: bool = False) -> Iterator[Summary | MailError]:
    """`summaries` of (item, length) pairs: one run, so that lines and short summaries are decoded together."""
    return _Run(model, samples, cache, refresh).results(requests)


@dataclass
class _Unit:
    """One message or thread on its way to a summary."""

    index: int
    item: Message | Thread | MailError
    length: str = "short"
    key: Key | None = None
    content: str = ""
    task: tasks.SummarizeTask | None = None
    prompt: Prompt | None = None
    message: Message | None = None  # the (first) message, read in full
    size: int = 1  # messages in the thread
    outputs: list = field(default_factory=list)
    result: Summary | MailError | None = None

    @property
    def path(self) -> str:
        item = self.item
        return item.messages[0].path if isinstance(item, Thread) else item.path


class _Run:
    def __init__(self, model: ChatModel, samples: int | None, cache: SummaryCache | None, refresh: bool) -> None:
        self.model, self.cache, self.refresh = model, cache, refresh
        self.samples = LINE_SAMPLES if samples is None else samples  # for subject lines
        self.model_key = model_key(model) if cache else ""

    def results(self, items: Iterable) -> Iterator[Summary | MailError]:
        units: dict[int, _Unit] = {}  # started, not yet given out
        source = enumerate(items)
        job_of: dict[int, tuple[_Unit, int]] = {}
        numbers = itertools.count()
        given = 0

        def next_miss() -> _Unit | None:
            """Start units until one needs the model (cache hits and errors are done at once)."""
            for i, (item, length) in source:
                u = units[i] = self.start(i, item, length)
                if u.result is None:
                    return u
            return None

        def jobs(u: _Unit | None) -> Iterator[dict]:
            while u is not None:
                for k, job in enumerate(self.jobs(u)):
                    job_of[next(numbers)] = (u, k)
                    yield job
                u = next_miss()

        def ready() -> Iterator[Summary | MailError]:
            nonlocal given
            while given in units and units[given].result is not None:
                yield units.pop(given).result
                given += 1

        while True:
            u = next_miss()
            yield from ready()
            if u is None:
                assert not units, "a summary was never finished"
                return
            for j, out in self.generate(jobs(u)):
                unit, k = job_of.pop(j)
                unit.outputs[k] = out
                if all(o is not None for o in unit.outputs):
                    self.finish(unit)
                yield from ready()

    def start(self, i: int, item, length: str, lookup_only: bool = False) -> _Unit:
        if length not in LENGTHS:
            raise ValueError(f"length must be one of {LENGTHS}, not {length!r}")
        u = _Unit(i, item, length)
        if isinstance(item, MailError):
            u.result = item
            return u
        messages = item.messages if isinstance(item, Thread) else [item]
        single = len(messages) == 1
        u.task = tasks.for_summary(length, thread=not single)
        version = version_for(self.model, u.task)
        u.content = _content(messages)
        line = single and length == "line"
        u.key = Key(f"m:{messages[0].message_id}" if single else f"t:{item.thread_id}", self.model_key, length,
                    f"{version}/head{LINE_HEAD_CHARS}" if line else version, self.samples if length == "line" else 0)
        u.size = len(messages)
        if self.cache and not self.refresh and (text := self.cache.get(u.key, u.content)) is not None:
            u.result = self._summary(u, text, cached=True)
            return u
        if lookup_only:
            return u
        try:
            full = [m for m in map(inbox.load, messages) if isinstance(m, Message)]
            if not full:
                raise AssistantError(inbox.load(messages[0]).error)
            u.message = full[0]
            t = u.task
            emails = [email_of(m) for m in full]
            if single:
                text = t.run_text(emails[0])
            elif t.needs_map(emails):  # too long for one prompt: its messages' summaries, then the thread's
                text = t.reduced_text(emails, self._message_summaries(full), item.subject)
            else:
                text = t.text(emails, item.subject)
            u.prompt = fit(self.model, text, lambda text: t.prompt(text, version), t.max_tokens)
        except AssistantError as e:
            u.result = MailError(u.path, str(e))
        return u

    def _message_summaries(self, messages: list[Message]) -> list[str]:
        """The map step of a long thread: each message's short summary (decoded together, cached as any
        message's), or its opening words where one cannot be made."""
        run = _Run(self.model, 0, self.cache, self.refresh)
        return [r.summary if isinstance(r, Summary) else " ".join((m.body or m.quoted).split()[:40])
                for m, r in zip(messages, run.results((m, tasks.SummarizeTask.MAP_LENGTH) for m in messages))]

    def jobs(self, u: _Unit) -> list[dict]:
        """The generations a unit needs: the greedy answer, and for a subject line its consensus samples."""
        base = dict(messages=u.prompt.messages, max_tokens=u.task.max_tokens)
        n = self.samples if u.length == "line" else 0
        u.outputs = [None] * (1 + n)
        return [base] + [dict(base, seed=k, temperature=LINE_TEMPERATURE) for k in range(1, n + 1)]

    def generate(self, jobs: Iterator[dict]) -> Iterator[tuple[int, str | Exception]]:
        """(job number, text or error) as each ends: many at once where the model can, else one by one."""
        head = list(itertools.islice(jobs, 2))
        if len(head) > 1 and hasattr(self.model, "generate_many"):
            yield from self.model.generate_many(itertools.chain(head, jobs))
            return
        for i, job in enumerate(itertools.chain(head, jobs)):
            try:
                yield i, complete(self.model, **job)
            except AssistantError as e:
                yield i, e

    def finish(self, u: _Unit) -> None:
        failed = next((o for o in u.outputs if isinstance(o, Exception)), None)
        if failed is not None:
            u.result = MailError(u.path, str(failed))
            return
        lines = [u.task.clean(o) for o in u.outputs]
        summary = consensus(lines) if len(lines) > 1 else lines[0]
        if not summary and u.size == 1:  # an echo or a bare label ("Email:"): a line falls back to the subject
            summary = u.message.subject if u.length == "line" else self._resample(u)
        summary = scrub_output(summary, u.prompt.payloads)
        if self.cache:
            self.cache.put(u.key, u.content, summary)
        u.result = self._summary(u, summary)

    def _resample(self, u: _Unit) -> str:
        """Sample once more (a summary that cleaned to nothing)."""
        try:
            return u.task.clean(complete(self.model, u.prompt.messages, max_tokens=u.task.max_tokens,
                                         temperature=0.7, seed=1))
        except AssistantError:
            return ""

    def _summary(self, u: _Unit, text: str, cached: bool = False) -> Summary:
        first = u.item.messages[0] if isinstance(u.item, Thread) else u.item
        s = Summary(first.path, first.message_id, text, self.model.name, cached=cached)
        if isinstance(u.item, Thread):
            s.thread_id, s.messages, s.subject = u.item.thread_id, u.size, u.item.subject
        return s


def _content(messages: list[Message]) -> str:
    """A hash of what is summarized: the bytes of each message (a Header's digest), else its fields."""
    parts = [getattr(m, "digest", "") or hashlib.sha1(
        "\0".join([m.subject, m.from_, m.date or "", m.body, m.quoted]).encode("utf-8", "replace")).hexdigest()
        for m in messages]
    return parts[0] if len(parts) == 1 else hashlib.sha1(" ".join(parts).encode()).hexdigest()
