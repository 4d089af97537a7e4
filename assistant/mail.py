"""Read mail: `.eml` files, mbox files, Maildirs and folders of them, into plain messages and threads.

    from assistant.mail import read_mail, group_threads
    for msg in read_mail("~/Mail/INBOX"):        # yields Message or MailError, never raises
        print(msg.subject, msg.thread_id)

HTML bodies are converted to text by BeautifulSoup with scripts, styles, comments and
hidden elements removed (hidden text is a favourite place for prompt injections).
Quoted replies and signatures are split out of the body by email-reply-parser, not lost.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mailbox
import re
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Iterable, Iterator

MAIL_SUFFIXES = {".eml", ".msg", ".mbox", ".mbx", ".mail"}
_HEADER_LINE = re.compile(rb"^(From |[A-Za-z][A-Za-z0-9-]*:)")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0", re.I)


@dataclass
class Message:
    path: str
    message_id: str
    subject: str = ""
    from_: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: str | None = None
    body: str = ""
    quoted: str = ""
    signature: str = ""
    attachments: list[dict] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    thread_id: str = ""
    timestamp: float = 0.0  # UTC seconds, for ordering across time zones (0 when the date is unknown)

    def to_json(self) -> dict:
        d = asdict(self)
        d["from"] = d.pop("from_")
        return d


@dataclass
class MailError:
    path: str
    error: str

    def to_json(self) -> dict:
        return {"path": self.path, "error": self.error}


def html_to_text(html: str) -> str:
    """Visible text of an HTML body: no scripts, styles, comments or hidden elements."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "template", "noscript"]):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(True):
        if tag.decomposed:
            continue
        attrs = tag.attrs or {}
        if "hidden" in attrs or attrs.get("aria-hidden") == "true" or _HIDDEN_STYLE.search(str(attrs.get("style", ""))):
            tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    text = soup.get_text("\n")
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def split_reply(text: str) -> tuple[str, str, str]:
    """Split a plain body into (new text, quoted replies, signature)."""
    from email_reply_parser import EmailReplyParser

    fragments = EmailReplyParser.read(text).fragments
    body = [f.content for f in fragments if not f.quoted and not f.signature and not f.hidden]
    quoted = [f.content for f in fragments if f.quoted or (f.hidden and not f.signature)]
    signature = [f.content for f in fragments if f.signature]
    body_text = "\n".join(body).strip()
    if not body_text:  # a message that is all quote (a bare forward): keep it as the body
        return text.strip(), "", "\n".join(signature).strip()
    return body_text, "\n".join(quoted).strip(), "\n".join(signature).strip()


def _decode_part(part) -> str:
    try:
        content = part.get_content()
    except Exception:  # unknown charset, broken transfer encoding: fall back to bytes
        payload = part.get_payload(decode=True) or b""
        content = payload.decode(part.get_content_charset() or "utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else ""


def _body_and_attachments(msg: EmailMessage) -> tuple[str, list[dict]]:
    plain, html, attachments = [], [], []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":  # a bounce report: its fields are the content
            blocks = part.get_payload() if isinstance(part.get_payload(), list) else []
            plain.append("\n".join(f"{k}: {v}" for b in blocks for k, v in b.items() if k.lower() != "mime-version"))
            continue
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if filename or disposition == "attachment" or not ctype.startswith("text/"):
            payload = part.get_payload(decode=True)
            attachments.append({"name": filename or "", "type": ctype, "size": len(payload) if payload else 0})
            continue
        text = _decode_part(part)
        (html if ctype == "text/html" else plain).append(text)
    if any(p.strip() for p in plain):
        return "\n\n".join(p.strip() for p in plain if p.strip()), attachments
    return "\n\n".join(html_to_text(h) for h in html if h.strip()), attachments


def _header(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot parse ("To: unlisted-recipients:; (no To-header)"): its raw text
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
        try:
            value = str(make_header(decode_header(value)))
        except Exception:
            pass
    return re.sub(r"\s+", " ", str(value or "")).strip()


def _ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value)


def parse_message(raw: bytes, path: str) -> Message | MailError:
    """One RFC 822 message (bytes) → Message, or MailError when nothing usable is in it."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body, attachments = _body_and_attachments(msg)
        subject = _header(msg, "Subject")
        if not body.strip() and not subject and not attachments:
            return MailError(path, "no message found (no headers, body or attachments)")
        text, quoted, signature = split_reply(body) if body.strip() else ("", "", "")
        addresses = lambda name: [f"{n} <{a}>" if n else a for n, a in getaddresses([_header(msg, name)]) if a]
        date, timestamp = None, 0.0
        try:
            if _header(msg, "Date"):
                when = parsedate_to_datetime(_header(msg, "Date"))
                if when.tzinfo is None:
                    from datetime import timezone

                    when = when.replace(tzinfo=timezone.utc)
                date, timestamp = when.isoformat(), when.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            date = _header(msg, "Date") or None
        message_id = (_ids(_header(msg, "Message-ID")) or [""])[0]
        if not message_id:  # a stable synthetic id, so threads and indexes can still refer to it
            message_id = "<%s@local>" % hashlib.sha1(raw).hexdigest()[:16]
        return Message(
            path=path, message_id=message_id, subject=subject, from_=(addresses("From") or [""])[0],
            to=addresses("To"), cc=addresses("Cc"), date=date, body=text, quoted=quoted,
            signature=signature, attachments=attachments,
            in_reply_to=(_ids(_header(msg, "In-Reply-To")) or [None])[0],
            references=_ids(_header(msg, "References")), timestamp=timestamp,
        )
    except Exception as e:  # the batch must go on: one line naming the file and the problem
        return MailError(path, f"cannot parse message: {type(e).__name__}: {e}".splitlines()[0])


def _looks_like_mail(path: Path) -> bool:
    if path.suffix.lower() in MAIL_SUFFIXES or path.parent.name in ("cur", "new"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return True  # let the reader report why it cannot be read
    return bool(_HEADER_LINE.match(head)) and b"\n" in head


def _is_mbox(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in (".mbox", ".mbx") or head.startswith(b"From ")


def _read_file(path: Path) -> Iterator[Message | MailError]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        yield MailError(str(path), f"cannot read: {e.strerror or e}")
        return
    if not raw.strip():
        yield MailError(str(path), "empty file")
        return
    if _is_mbox(path, raw[:5]):
        count = 0
        try:
            box = mailbox.mbox(str(path), create=False)
            for key in box.keys():
                count += 1
                yield parse_message(box.get_bytes(key), f"{path}#{key}")
        except Exception as e:
            yield MailError(str(path), f"cannot read mbox: {type(e).__name__}: {e}".splitlines()[0])
            return
        if count == 0:
            yield MailError(str(path), "mbox holds no messages")
        return
    yield parse_message(raw, str(path))


def iter_files(path: Path) -> Iterator[Path]:
    """Mail files under a path: the file itself, or every mail-like file below a folder (Maildirs included)."""
    if path.is_file():
        yield path
        return
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and _looks_like_mail(p):
            yield p


def read_mail(*paths: str | Path) -> Iterator[Message | MailError]:
    """Every message under the paths, in a stable order; errors come back as MailError items."""
    for p in map(Path, paths):
        if not p.exists():
            yield MailError(str(p), "no such file or folder")
            continue
        for f in iter_files(p):
            yield from _read_file(f)


def assign_threads(messages: Iterable[Message]) -> list[Message]:
    """Set thread_id on each message: messages linked by Message-ID / In-Reply-To / References share one."""
    messages = list(messages)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m in messages:
        for ref in m.references + ([m.in_reply_to] if m.in_reply_to else []):
            a, b = find(m.message_id), find(ref)
            if a != b:
                parent[max(a, b)] = min(a, b)
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
    """Group messages into threads, each sorted by date, threads newest first."""
    by_id: dict[str, list[Message]] = {}
    for m in assign_threads(messages):
        by_id.setdefault(m.thread_id, []).append(m)
    threads = [Thread(t, sorted(ms, key=lambda m: m.timestamp)) for t, ms in by_id.items()]
    return sorted(threads, key=lambda t: t.messages[-1].timestamp, reverse=True)
