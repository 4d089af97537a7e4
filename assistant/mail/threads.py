"""Threads: messages linked by Message-ID / In-Reply-To / References when those look like real ids,
else by normalized subject within a time window; a message stored twice is counted once.

    from assistant.mail import group_threads
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from assistant.mail import Message

THREAD_WINDOW = 30 * 86400  # a reply without references joins a same-subject message this close in time


def valid_id(ref: str | None) -> bool:
    """A message id worth linking by: <local@domain>, of a sane length ('<yes>' glued 13 lkml threads)."""
    return bool(ref) and len(ref) <= 250 and re.fullmatch(r"<[^<>\s]+@[^<>\s@]+>", ref) is not None

# Threads

_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|antw|tr|rv|ref|odp|r)\s*(\[\d+\])?\s*:\s*)+", re.I)


def normalize_subject(subject: str) -> str:
    """'Re: AW: Fwd: [list] Hello  world' → '[list] hello world'."""
    return re.sub(r"\s+", " ", _REPLY_PREFIX.sub("", subject)).strip().lower()


def assign_threads(messages: Iterable[Message]) -> list[Message]:
    """Set thread_id on each message and return them all (copies of one message share a thread).

    Messages are linked by Message-ID / In-Reply-To / References when those look like real ids
    (<local@domain>). A reply (Re:, Fwd:, AW:, WG:, …) with no usable reference joins the
    message with the same normalized subject closest in time, within THREAD_WINDOW.
    """
    messages = list(messages)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    by_subject: dict[str, list[tuple[float, str]]] = {}
    for m in messages:
        if m.timestamp and (key := normalize_subject(m.subject)):
            by_subject.setdefault(key, []).append((m.timestamp, m.message_id))
    for group in by_subject.values():
        group.sort()
    for m in messages:
        refs = [r for r in m.references + [m.in_reply_to] if valid_id(r)]
        for ref in refs:
            union(m.message_id, ref)
        key = normalize_subject(m.subject)
        if refs or not m.timestamp or not key or not _REPLY_PREFIX.match(m.subject):
            continue
        group = by_subject[key]
        i = bisect.bisect_left(group, (m.timestamp, m.message_id))
        near = [group[j] for j in (i - 1, i + 1) if 0 <= j < len(group) and group[j][1] != m.message_id]
        near = [(abs(t - m.timestamp), mid) for t, mid in near if abs(t - m.timestamp) <= THREAD_WINDOW]
        if near:
            union(m.message_id, min(near)[1])
    for m in messages:
        m.thread_id = "t-" + hashlib.sha1(find(m.message_id).encode()).hexdigest()[:12]
    return messages


@dataclass
class Thread:
    thread_id: str
    messages: list[Message]

    @property
    def subject(self) -> str:
        return next((m.subject for m in self.messages if m.subject), "(no subject)")


def group_threads(messages: Iterable[Message]) -> list[Thread]:
    """Group messages into threads, each sorted by date, threads newest first; a message stored twice counts once."""
    seen: set[tuple] = set()
    unique = []
    for m in messages:
        key = (m.message_id, m.from_, m.subject, m.body)
        if key not in seen:
            seen.add(key)
            unique.append(m)
    by_id: dict[str, list[Message]] = {}
    for m in assign_threads(unique):
        by_id.setdefault(m.thread_id, []).append(m)
    threads = [Thread(t, sorted(ms, key=lambda m: m.timestamp)) for t, ms in by_id.items()]
    return sorted(threads, key=lambda t: t.messages[-1].timestamp, reverse=True)
