"""A whole inbox at a glance: its threads, newest activity first, each with a one-line summary and,
where it holds more than one message, a short one.

    for entry in digest(model, ["~/Mail/INBOX"], after=inbox.since("1d"), unread=True, cache=SummaryCache()):
        print(entry.line, entry.short)
    print(markdown(entries))

Only headers are held for the whole mailbox (ids, dates, subjects); bodies are read thread by
thread as they are summarized, and summaries come from the cache where it has them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from assistant.engine.models import ChatModel
from assistant.mail import MailError, Thread
from assistant.services import inbox
from assistant.services.summarize import summaries_of
from assistant.services.summary_cache import SummaryCache


@dataclass
class Entry:
    """One thread of the digest."""

    thread: Thread
    line: str = ""
    short: str | None = None  # for a thread of more than one message
    errors: list[str] = field(default_factory=list)
    model: str = ""  # the model that wrote the summaries

    @property
    def unread(self) -> int:
        return sum(1 for m in self.thread.messages if getattr(m, "seen", None) is False)

    @property
    def last(self) -> float:
        return self.thread.messages[-1].timestamp

    def to_json(self) -> dict:
        t = self.thread
        return {"thread_id": t.thread_id, "subject": t.subject, "summary": self.line, "short": self.short,
                "model": self.model, "last": t.messages[-1].date, "unread": self.unread,
                "messages": [{"message_id": m.message_id, "path": m.path, "from": m.from_, "date": m.date,
                              "seen": getattr(m, "seen", None)} for m in t.messages],
                **({"errors": self.errors} if self.errors else {})}


@dataclass
class Selection:
    """What a digest covers: the threads to summarize and what could not be read."""

    threads: list[Thread]
    errors: list[MailError]
    read: int  # messages read (selected or not)

    @property
    def summaries(self) -> int:
        """How many summaries the digest makes: a line per thread, a short one per thread of several."""
        return sum(1 + (len(t.messages) > 1) for t in self.threads)


def select(paths: Iterable[str], after: float | None = None, unread: bool = False) -> Selection:
    """The threads of the messages under `paths` dated `after` or later (and, with `unread`, not seen)."""
    errors, read, chosen = [], 0, []
    for h in inbox.scan(*paths):
        if isinstance(h, MailError):
            errors.append(h)
            continue
        read += 1
        if next(inbox.select([h], after, unread), None) is not None:
            chosen.append(h)
    return Selection(inbox.group(chosen), errors, read)


def digest(model: ChatModel, selection: Selection, samples: int | None = None, cache: SummaryCache | None = None,
           refresh: bool = False, progress: Callable[[], None] | None = None) -> Iterator[Entry]:
    """An Entry per selected thread, in the selection's order (newest activity first), as each is done.
    `progress` is called once per summary made or read from the cache."""
    asked: deque[tuple[Thread, str]] = deque()  # results come in the order they were asked for

    def requests() -> Iterator[tuple[Thread, str]]:
        for t in selection.threads:
            for length in ("line", "short") if len(t.messages) > 1 else ("line",):
                asked.append((t, length))
                yield t, length

    entry: Entry | None = None
    for s in summaries_of(model, requests(), samples, cache, refresh):
        thread, length = asked.popleft()
        if progress:
            progress()
        if entry is None or entry.thread is not thread:
            if entry is not None:
                yield entry
            entry = Entry(thread)
        if isinstance(s, MailError):
            entry.errors.append(s.error)
        elif length == "line":
            entry.line, entry.model = s.summary, s.model
        else:
            entry.short = s.summary
    if entry is not None:
        yield entry


def heading(selection: Selection, title: str = "Digest") -> str:
    """The Markdown heading of a digest: how many threads, messages and unread ones it covers."""
    msgs = [m for t in selection.threads for m in t.messages]
    unread = sum(1 for m in msgs if getattr(m, "seen", None) is False)
    counts = f"{len(selection.threads)} threads, {len(msgs)} messages" + (f", {unread} unread" if unread else "")
    return f"# {title}\n\n{counts}\n"


def markdown(e: Entry) -> str:
    """One thread as a Markdown bullet: its line in bold, how many messages, who and when; the
    subject and the short summary below."""
    t = e.thread
    count = f"{len(t.messages)} messages" if len(t.messages) > 1 else "1 message"
    count += f", {e.unread} unread" if e.unread else ""
    out = [f"- **{_md(e.line or t.subject)}** ({count}) — {_md(_people([m.from_ for m in t.messages]))}, {_when(e.last)}",
           f"  Subject: {_md(t.subject)}"]
    out += [f"  {_md(e.short)}"] if e.short else []
    out += [f"  (not summarized: {_md(err)})" for err in e.errors]
    return "\n".join(out)


def _people(senders: list[str]) -> str:
    """'Ana', 'Ana and Ben', 'Ana, Ben and 2 others': who wrote in a thread, first writer first."""
    names = list(dict.fromkeys(_name(s) for s in senders))
    if len(names) <= 2:
        return " and ".join(names)
    return f"{names[0]}, {names[1]} and {len(names) - 2} other{'s' if len(names) > 3 else ''}"


def _name(sender: str) -> str:
    return sender.split("<")[0].strip().strip('"') or sender.strip("<>") or "unknown sender"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "undated"


def _md(text: str) -> str:
    """Text safe inside a Markdown line: no line breaks, no markup characters that would take effect."""
    text = " ".join(text.split())
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text
