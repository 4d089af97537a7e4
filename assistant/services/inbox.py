"""A mailbox as the assistant lists it: messages read one at a time, headers parsed without the
body (threads need only ids, dates and subjects), bodies parsed only for what is summarized or shown.

    for h in scan("~/Mail/INBOX"):            # Header (a Message without its body) or MailError, streamed
        print(h.subject, h.seen, h.digest)
    threads = group([h for h in headers if h.seen is False])   # assistant.mail's threads, of headers
    msg = load(h)                             # the whole Message (or MailError)

A header is read with the plain header parser (about 0.1 ms; the full parse of a message takes
a few ms), so listing 10,000 messages holds some megabytes, not their bodies. `digest` is a hash
of the message's bytes: a summary made from other bytes is stale. `seen` comes from the Maildir
flags in a file name (`:2,S`: seen; a file in new/ is unseen) or an mbox Status header (R);
None when the mailbox does not say.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import mailbox
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Iterable, Iterator

from assistant import AssistantError
from assistant.mail import (MAX_MESSAGE_BYTES, MailError, Message, Thread, assign_threads, iter_files, not_mail,
                            parse_message, valid_id)

MAX_HEADER = 16 * 1024  # one header value, as assistant.mail bounds it
MAX_HEADER_BLOCK = 256 * 1024


@dataclass
class Header(Message):
    """A message's headers and where it is: body, quotes and attachments are not read."""

    digest: str = ""  # sha1 of the message's bytes
    seen: bool | None = None  # read already (Maildir S flag, mbox Status R); None: the mailbox does not say


def raw_messages(*paths: str | Path) -> Iterator[tuple[str, bytes] | MailError]:
    """(path, bytes) of every message under the paths, in assistant.mail's order (an mbox message's
    path is FILE#KEY); what cannot be read is a MailError naming it. One message in memory at a time."""
    for p in map(Path, paths):
        try:
            st = p.stat()
        except FileNotFoundError:
            yield MailError(str(p), "no such file or folder")
            continue
        except (OSError, RuntimeError) as e:
            yield MailError(str(p), f"cannot read: {getattr(e, 'strerror', None) or e}")
            continue
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            yield MailError(str(p), "not a mail file or folder")
            continue
        for f in iter_files(p):
            yield from _raw_file(f)


def _raw_file(path: Path) -> Iterator[tuple[str, bytes] | MailError]:
    try:
        with open(path, "rb", opener=lambda f, flags: os.open(f, flags | getattr(os, "O_NONBLOCK", 0))) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise OSError(0, "not a regular file")
            size, head = os.fstat(fh.fileno()).st_size, fh.read(5)
            if size and (path.suffix.lower() in (".mbox", ".mbx") or head.startswith(b"From ")):
                fh.close()
                yield from _raw_mbox(path)
                return
            if size > MAX_MESSAGE_BYTES:
                yield MailError(str(path), f"too large for one message ({size >> 20} MB)")
                return
            raw = head + fh.read(MAX_MESSAGE_BYTES)
    except (OSError, RuntimeError) as e:
        yield MailError(str(path), f"cannot read: {getattr(e, 'strerror', None) or e}")
        return
    yield (str(path), raw) if raw.strip() else MailError(str(path), "empty file")


def _raw_mbox(path: Path) -> Iterator[tuple[str, bytes] | MailError]:
    count = 0
    try:
        box = _mbox(path)
        for key in box.iterkeys():
            count += 1
            yield f"{path}#{key}", box.get_bytes(key)
    except Exception as e:
        yield MailError(str(path), f"cannot read mbox: {type(e).__name__}: {e}".splitlines()[0][:300])
        return
    if count == 0:
        yield MailError(str(path), "mbox holds no messages")


_BOXES: dict[str, tuple[tuple, mailbox.mbox]] = {}
_BOX_LOCK = threading.Lock()


def _mbox(path: Path) -> mailbox.mbox:
    """The mbox at `path`, kept open while it is unchanged: opening one reads all of it for its index."""
    st = path.stat()
    with _BOX_LOCK:
        stamp, box = _BOXES.get(str(path), ((), None))
        if box is None or stamp != (st.st_size, st.st_mtime_ns):
            _BOXES.clear()  # one open mbox at a time
            box = mailbox.mbox(str(path), create=False)
            _BOXES[str(path)] = ((st.st_size, st.st_mtime_ns), box)
        return box


def read_raw(path: str) -> bytes:
    """The bytes of one message by its path (FILE, or FILE#KEY in an mbox).

    Raises:
        AssistantError: it cannot be read any more (moved, deleted, the mbox rewritten).
    """
    try:
        if "#" in path and not Path(path).exists():
            file, _, key = path.rpartition("#")
            return _mbox(Path(file)).get_bytes(int(key))
        with open(path, "rb") as f:
            return f.read(MAX_MESSAGE_BYTES)
    except (OSError, KeyError, ValueError) as e:
        raise AssistantError(f"{path}: cannot read it again ({e})".splitlines()[0]) from None


def load(h: Message) -> Message | MailError:
    """The whole message `h` stands for (a Header is read again and parsed; a Message is itself)."""
    if not isinstance(h, Header):
        return h
    try:
        raw = read_raw(h.path)
    except AssistantError as e:
        return MailError(h.path, str(e))
    msg = parse_message(raw, h.path)
    if isinstance(msg, Message):
        msg.thread_id = h.thread_id
    return msg


# Headers without the body

_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_BLANK = re.compile(rb"\r?\n\r?\n")
_IDS = re.compile(r"<[^<>\s]+>")


def header_of(raw: bytes, path: str) -> Header | MailError:
    """The headers of one message (bytes), parsed without its body; MailError for what is not mail."""
    if why := not_mail(raw):
        return MailError(path, why)
    end = _BLANK.search(raw, 0, MAX_HEADER_BLOCK)
    head = _PARSER.parsebytes(raw[: end.start() + 1] if end else raw[:MAX_HEADER_BLOCK])

    def get(name: str) -> str:
        value = head.get(name)
        return re.sub(r"\s+", " ", str(value)[:MAX_HEADER]).strip() if value is not None else ""

    ids = lambda name: [i for i in _IDS.findall(get(name)) if valid_id(i)]  # noqa: E731
    digest = hashlib.sha1(raw).hexdigest()
    date, timestamp = _date(get("Date"))
    status = get("Status") + get("X-Status")
    return Header(
        path=path, message_id=(ids("Message-ID") or ["<%s@local>" % digest[:16]])[0], subject=_words(get("Subject")),
        from_=_first_address(get("From")), date=date, timestamp=timestamp,
        in_reply_to=(ids("In-Reply-To") or [None])[0], references=ids("References"), digest=digest,
        seen=_seen(path) if _seen(path) is not None else ("R" in status if status else None),
    )


def scan(*paths: str | Path) -> Iterator[Header | MailError]:
    """The headers of every message under the paths (see raw_messages), streamed."""
    for item in raw_messages(*paths):
        yield item if isinstance(item, MailError) else header_of(item[1], item[0])


def _words(text: str) -> str:
    """RFC 2047 encoded words decoded, each in its charset (bytes it cannot hold replaced)."""
    if "=?" not in text:
        return text
    try:
        parts = decode_header(text)
    except Exception:  # a broken encoded word: as written
        return text
    out = []
    for data, charset in parts:
        if isinstance(data, str):
            out.append(data)
            continue
        try:
            out.append(data.decode(charset or "ascii", errors="replace"))
        except LookupError:
            out.append(data.decode("utf-8", errors="replace"))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _first_address(value: str) -> str:
    try:
        name, addr = next(((n, a) for n, a in getaddresses([value[:1024]]) if a), ("", ""))
    except Exception:
        return value[:200]
    name = _words(name)
    return f"{name} <{addr}>" if name else addr


def _date(raw: str) -> tuple[str | None, float]:
    try:
        when = parsedate_to_datetime(raw) if raw else None
        if when is None:
            return None, 0.0
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return when.isoformat(), when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return raw or None, 0.0


def _seen(path: str) -> bool | None:
    """Maildir: a file in new/ is unseen; in cur/, the S flag of its `:2,FLAGS` info says."""
    p = Path(path)
    if p.parent.name == "new":
        return False
    if p.parent.name == "cur":
        _, sep, flags = p.name.rpartition(":2,")
        return bool(sep) and "S" in flags
    return None


# Selecting and grouping

def since(value: str, now: float | None = None) -> float:
    """A --since value as a UTC timestamp: 30m, 12h, 1d, 2w ago, or a date (2001-10-30, ISO time allowed).

    Raises:
        AssistantError: neither.
    """
    now = time.time() if now is None else now
    if m := re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", value):
        return now - int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise AssistantError(f"--since {value!r}: give an age (30m, 12h, 1d, 2w) or a date (2001-10-30)") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def select(headers: Iterable[Header | MailError], after: float | None = None,
           unread: bool = False) -> Iterator[Header | MailError]:
    """The messages dated at or after `after` (undated ones are left out) and, with `unread`, not seen."""
    for h in headers:
        if isinstance(h, MailError):
            yield h
        elif (after is None or (h.timestamp and h.timestamp >= after)) and not (unread and h.seen):
            yield h


def group(headers: Iterable[Message]) -> list[Thread]:
    """Threads as assistant.mail links them (assign_threads), each oldest first, newest activity first;
    a message stored twice (same id, sender, subject and bytes) counts once."""
    seen, unique = set(), []
    for h in headers:
        key = (h.message_id, h.from_, h.subject, getattr(h, "digest", None) or h.body)
        if key not in seen:
            seen.add(key)
            unique.append(h)
    by_id: dict[str, list[Message]] = {}
    for m in assign_threads(unique):
        by_id.setdefault(m.thread_id, []).append(m)
    threads = [Thread(t, sorted(ms, key=lambda m: m.timestamp)) for t, ms in by_id.items()]
    return sorted(threads, key=lambda t: t.messages[-1].timestamp, reverse=True)


def count(*paths: str | Path) -> int:
    """How many messages (and unreadable files) raw_messages will give, without parsing any:
    one per file, the messages of an mbox counted from its index."""
    n = 0
    for p in map(Path, paths):
        if not (p.is_dir() or p.is_file()):
            n += 1
            continue
        for f in iter_files(p):
            try:
                with open(f, "rb") as fh:
                    head = fh.read(5)
                n += len(_mbox(f).keys()) or 1 if f.suffix.lower() in (".mbox", ".mbx") or head.startswith(b"From ") else 1
            except Exception:
                n += 1
    return n
