"""Read mail: `.eml` files, mbox files, Maildirs and folders of them, into plain messages and threads.

    from assistant.mail import read_mail, group_threads
    for msg in read_mail("~/Mail/INBOX"):        # yields Message or MailError, never raises
        print(msg.subject, msg.thread_id)

Hostile input is bounded before Python's email package sees it: one header is cut to 16 KB and
the header block to 256 KB (the header parser is quadratic, gh-136063), Content-Type and
-Disposition are rewritten plain, MIME nests at most MAX_NESTING multipart/message parts (deeper
ones are listed as attachments, never parsed) and holds at most MAX_PARTS parts, a body keeps its
first MAX_BODY_CHARS characters, and files that are not mail (binary data, an Outlook .msg) are
refused with a one-line MailError. FIFOs and devices are never opened. The structure is parsed
with compat32 (linear); the headers shown are decoded by policy.default, as before.

HTML bodies become text in one linear pass (`html_to_text`): scripts, styles and comments go,
while text hidden with CSS or the `hidden` attribute is KEPT, each line of it starting with
"[hidden text] ", so the injection guard (and a reader) can see what the sender hid.
Quoted replies and signatures are split out of the body as email-reply-parser does (in linear
time), not lost. Threads link by Message-ID when the ids look real, else by subject (`assign_threads`).
"""

from __future__ import annotations

import email
import email.policy
import errno
import hashlib
import mailbox
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from email.header import decode_header, make_header
from email.message import Message as MimePart
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Iterator

from email_reply_parser import EmailMessage as _ReplyScan

from assistant.mail.html import MAX_HTML_CHARS, html_to_text  # noqa: F401  (part of this module's API)

MAIL_SUFFIXES = {".eml", ".msg", ".mbox", ".mbx", ".mail"}
MAX_HEADER = 16 * 1024  # one header, raw bytes
MAX_MIME_HEADER = 2 * 1024  # Content-Type and friends are parsed again on every access
MAX_HEADER_BLOCK = 256 * 1024  # all top-level headers; the body is kept whole
MAX_NESTING = 100  # multipart/ and message/ parts (the parser recurses once per level)
MAX_PARTS = 2000  # leaves walked in one message
MAX_BODY_CHARS = 2_000_000  # of one message's text
MAX_MESSAGE_BYTES = 64 << 20  # one .eml file

_HEADER_LINE = re.compile(rb"^(From |[A-Za-z][A-Za-z0-9-]*:)")
_MAGIC = {b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "unsupported format: Outlook .msg (OLE2 compound file)",
          b"%PDF-": "not an email: a PDF file", b"PK\x03\x04": "not an email: a ZIP archive",
          b"\x1f\x8b": "not an email: a gzip file", b"\x89PNG": "not an email: a PNG image",
          b"\xff\xd8\xff": "not an email: a JPEG image", b"GGUF": "not an email: a GGUF model"}
_TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r\f\x1b"


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


# Quoted replies and signatures

class _LinearReplyScan(_ReplyScan):
    """email-reply-parser's scan with its two super-linear steps replaced by linear ones of the same result.

    Its multi-line "On … wrote:" regex takes 92 s on 10 KB of "On x " and fails on a header
    holding a backslash (DOMAIN\\user), and it marks earlier fragments hidden once per header
    fragment (quadratic in fragments).
    """

    def read(self) -> "_LinearReplyScan":
        self.found_visible, self._hide_before = False, 0
        self.text = _join_quote_header(self.text)
        # as the library does: its re.MULTILINE lands in the count argument, so at most 8 replacements
        self.text = re.sub("([^\n])(?=\n ?[_-]{7,})", "\\1\n", self.text, count=8)
        self.lines = self.text.split("\n")
        self.lines.reverse()
        for line in self.lines:
            self._scan_line(line)
        self._finish_fragment()
        for f in self.fragments[: self._hide_before]:
            f.hidden = True
        self.fragments.reverse()
        return self

    def _finish_fragment(self) -> None:
        if self.fragment:
            self.fragment.finish()
            if self.fragment.headers:  # every earlier fragment is hidden: applied once, after the scan
                self.found_visible = False
                self._hide_before = len(self.fragments)
            if not self.found_visible:
                if self.fragment.quoted or self.fragment.headers or self.fragment.signature \
                        or not self.fragment.content.strip():
                    self.fragment.hidden = True
                else:
                    self.found_visible = True
            self.fragments.append(self.fragment)
        self.fragment = None


def _join_quote_header(text: str) -> str:
    """The last "On … wrote:" (which may span lines) put on one line, as the library's regex does."""
    wrote = text.rfind("wrote:")
    if wrote < 4:
        return text
    start = text.rfind("On", 0, wrote - 2)  # the last "On<space>" that a "wrote:" follows
    while start >= 0 and not text[start + 2].isspace():
        start = text.rfind("On", 0, start)
    if start < 0:
        return text
    end = text.find("wrote:", start + 4) + len("wrote:")
    return text[:start] + text[start:end].replace("\n", "") + text[end:]


def split_reply(text: str) -> tuple[str, str, str]:
    """Split a plain body into (new text, quoted replies, signature)."""
    fragments = _LinearReplyScan(text).read().fragments
    body = [f.content for f in fragments if not f.quoted and not f.signature and not f.hidden]
    quoted = [f.content for f in fragments if f.quoted or (f.hidden and not f.signature)]
    signature = [f.content for f in fragments if f.signature]
    body_text = "\n".join(body).strip()
    if not body_text:  # a message that is all quote (a bare forward): keep it as the body
        return text.strip(), "", "\n".join(signature).strip()
    return body_text, "\n".join(quoted).strip(), "\n".join(signature).strip()


# Bounding raw bytes before the email package parses them

class _BoundedPolicy(email.policy.Compat32):
    """The compat32 parser, with each header of every MIME part bounded as it is read.

    compat32 and not policy.default for the structure: the default policy parses Content-Type
    again on every access (100,000 parts took 72 s, compat32 4 s). Values stay raw (no
    sanitizing on fetch); the few headers shown are decoded by policy.default in `_header`.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        key = name.strip().lower()
        if key in ("content-type", "content-disposition"):
            return name, _mime_header(value[:MAX_MIME_HEADER])
        if key == "content-transfer-encoding":  # read on every decode: one token is all it can hold
            return name, (re.findall(r"[\w-]{1,40}", value[:MAX_MIME_HEADER]) or [""])[0]
        value = value[:MAX_HEADER]
        if value.count("(") > 16:  # nested comments recurse in the parser: (((((… is a RecursionError
            value = value.replace("(", " ").replace(")", " ")
        return name, value


_PARAM = re.compile(r"""\s*([^\s;="]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)""")


def _mime_header(value: str) -> str:
    """Content-Type/-Disposition rewritten plain: `main; name="value"`, at most 16 parameters, no comments.

    These are parsed on every access (several times a part), and a hostile one (2 KB of quotes,
    semicolons or parentheses) takes the parser a second or a RecursionError each time.
    """
    main, _, rest = value.partition(";")
    params = []
    for chunk in re.finditer(r'(?:[^;"]|"(?:[^"\\]|\\.)*"?)+', rest):
        if (m := _PARAM.match(chunk.group(0))) is None:
            continue
        name, v = m.group(1), m.group(2).strip()
        v = re.sub(r"\\(.)", r"\1", v[1:].removesuffix('"')) if v.startswith('"') else re.sub(r"\([^()]*\)", "", v).strip()
        v = v.replace("\\", "/").replace('"', "").replace("\r", "").replace("\n", "")
        quote = not name.endswith("*") and re.search(r'[\s()<>@,;:/\[\]?=]', v)  # an RFC 2231 value is never quoted
        params.append(f'{name}="{v}"' if quote else f"{name}={v}")
        if len(params) == 16:
            break
    main = re.sub(r"[^\w!#$&^.+/-]", "", re.sub(r"\([^()]*\)", "", main))[:200]
    return "; ".join([main, *params])


_POLICY = _BoundedPolicy()
# header lines and their continuations, as the feed parser reads them (linear: the alternatives differ at once)
_HEADER_BLOCK = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]+:)[^\n]*\n(?:[ \t][^\n]*\n)*)*")
_NESTED = re.compile(rb"(?im)^(content-type:[ \t]*(?:\r?\n[ \t]+)?)(multipart|message)/")
_ESSENTIAL = {b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
              b"mime-version", b"content-type", b"content-transfer-encoding", b"content-disposition"}


def _cap_headers(raw: bytes) -> bytes:
    """Each top-level header cut to MAX_HEADER bytes, the block to MAX_HEADER_BLOCK (essential headers kept), body intact."""
    end = _HEADER_BLOCK.match(raw).end()
    if end <= MAX_HEADER:
        return raw
    kept, size, seen = [], 0, set()
    for h in re.split(rb"\r?\n(?![ \t])", raw[:end].rstrip(b"\r\n")):
        if len(h) > MAX_HEADER:
            cut = h.rfind(b" ", 0, MAX_HEADER)  # at a space, so an encoded word is not cut in two
            h = h[: cut if cut > MAX_HEADER // 2 else MAX_HEADER]
        name = h.split(b":", 1)[0].strip().lower()
        if size + len(h) <= MAX_HEADER_BLOCK or (name in _ESSENTIAL and name not in seen):
            kept.append(h)
            size += len(h) + 1
            seen.add(name)
    return b"\n".join(kept) + b"\n" + raw[end:]


def _cap_nesting(raw: bytes) -> bytes:
    """multipart/ and message/ parts after the first MAX_NESTING become opaque attachments (never parsed)."""
    count = 0

    def mark(m: re.Match) -> bytes:
        nonlocal count
        count += 1
        return m.group(0) if count <= MAX_NESTING else m.group(1) + b"application/x-too-deep-" + m.group(2) + b"-"

    return _NESTED.sub(mark, raw)


def _cap_parts(raw: bytes) -> bytes:
    """The message cut at its 2*MAX_PARTS-th line starting with "--": parsing costs per part (a 4 MB
    message of 100,000 parts took 72 s), and no more than MAX_PARTS are read anyway."""
    if raw.count(b"\n--") <= 2 * MAX_PARTS:
        return raw
    cut = -1
    for _ in range(2 * MAX_PARTS):
        cut = raw.find(b"\n--", cut + 1)
    return raw[: cut + 1]


def not_mail(raw: bytes) -> str | None:
    """Why `raw` is not an email (a known binary format; no headers and mostly non-text bytes), or None."""
    for magic, why in _MAGIC.items():
        if raw.startswith(magic):
            return why
    head = raw[:65536]
    if _HEADER_LINE.match(head.lstrip()):
        return None
    control = len(head.translate(None, _TEXT_BYTES + bytes(range(128, 256))))
    invalid = head.decode("utf-8", "replace").count("\ufffd")
    return "not an email (binary data, no headers)" if control + invalid > 0.3 * len(head) else None


# Bodies and headers

def _clean(text: str) -> str:
    """No lone surrogates (undecodable header bytes): they cannot be printed or stored."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _decode(text.encode("utf-8", "surrogateescape"), None).encode("utf-8", "replace").decode("utf-8")


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes in the declared charset; with none, an unknown or a wrong one: UTF-8 when at most 2% of
    the bytes are not (a sequence cut short, replaced), else Latin-1, which never fails."""
    if charset and charset.lower() not in ("punycode", "idna"):  # quadratic decoders
        try:
            return data.decode(charset, errors="replace")
        except (LookupError, ValueError, TypeError):  # unknown (x-foo) or not a text codec (zlib)
            pass
    text = data.decode("utf-8", errors="replace")
    return text if text.count("\ufffd") <= 0.02 * len(data) else data.decode("latin-1")


def _decode_part(part: MimePart) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: the raw text
        payload = str(part.get_payload()).encode("utf-8", "surrogateescape")
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _clean(_decode(payload[: MAX_BODY_CHARS * 4], charset))


def _is_attachment(part: MimePart) -> bool:
    if part.is_multipart():
        return False
    return bool(part.get_filename()) or part.get_content_disposition() == "attachment" \
        or not part.get_content_type().startswith("text/")


def _text_rank(part: MimePart) -> int:
    """2 for plain text that is not empty (or a multipart holding plain text), 1 for HTML, 0 for anything else."""
    if part.is_multipart():
        types = {k.get_content_type() for k in part.get_payload() if isinstance(k, MimePart)}
        return 2 if "text/plain" in types else 1 if "text/html" in types else 0
    if part.get_content_type() == "text/plain":
        payload = part.get_payload(decode=True)
        return 2 if isinstance(payload, bytes) and payload.strip() else 0
    return 1 if part.get_content_type() == "text/html" else 0


def _leaves(msg: MimePart) -> Iterator[tuple[MimePart, bool]]:
    """(part, read its text?) depth first, without recursion; one alternative of a multipart/alternative
    is read (the first non-empty plain text, else HTML), the others only for their attachments."""
    stack, seen = [(msg, True)], 0
    while stack and seen < MAX_PARTS:
        part, text = stack.pop()
        seen += 1
        if part.get_content_type() == "message/delivery-status" or not part.is_multipart():
            yield part, text
            continue
        kids = [(k, text) for k in part.get_payload() if isinstance(k, MimePart)]
        if text and part.get_content_type() == "multipart/alternative":  # the same text twice: read one
            best = max((k for k, _ in kids if not _is_attachment(k)), key=_text_rank, default=None)
            kids = [(k, k is best) for k, _ in kids]
        stack.extend(reversed(kids))


def _body_and_attachments(msg: MimePart) -> tuple[str, list[dict]]:
    plain, html, attachments = [], [], []
    for part, text in _leaves(msg):
        ctype = part.get_content_type()
        if ctype == "message/delivery-status" and text:  # a bounce report: its fields are the content
            blocks = part.get_payload() if isinstance(part.get_payload(), list) else []
            fields = (f"{k}: {' '.join(v.split())}" for b in blocks for k, v in b.items() if k.lower() != "mime-version")
            plain.append(_clean("\n".join(fields)))
        elif _is_attachment(part):
            payload = part.get_payload(decode=True)
            attachments.append({"name": _words(_clean(part.get_filename() or "")), "type": ctype,
                                "size": len(payload) if isinstance(payload, bytes) else 0})
        elif text:
            (html if ctype == "text/html" else plain).append(_decode_part(part))
    if any(p.strip() for p in plain):
        return "\n\n".join(p.strip() for p in plain if p.strip()), attachments
    return "\n\n".join(html_to_text(h) for h in html if h.strip()), attachments


def _header(msg: MimePart, name: str) -> str:
    """A header decoded by policy.default (its value already bounded), as the user sees it."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        value = email.policy.default.header_fetch_parse(name, value)
    except Exception:  # a header the policy cannot parse ("To: unlisted-recipients:; (no To-header)"): its raw text
        try:
            value = make_header(decode_header(value))
        except Exception:
            pass
    return _clean(re.sub(r"\s+", " ", str(value)).strip())


def _addresses(msg: MimePart, name: str) -> list[str]:
    """`Name <address>` of an address header. One over 1 KB goes to the old linear parser: the policy's
    is quadratic in quotes, backslashes and commas (16 KB of '"' in a To: took 7 s)."""
    raw = msg.get(name) or ""
    if len(raw) <= 1024:
        return [f"{n} <{a}>" if n else a for n, a in getaddresses([_header(msg, name)]) if a]
    try:
        pairs = getaddresses([_clean(re.sub(r"\s+", " ", raw))])
    except RecursionError:  # groups nested in groups (":::") recurse in the old parser too: the bare addresses
        return re.findall(r"[^\s<>,;:\"()]+@[^\s<>,;:\"()]+", raw)
    return [f"{_words(n)} <{a}>" if n else a for n, a in pairs if a]


def _words(text: str) -> str:
    """RFC 2047 encoded words decoded (a display name's =?utf-8?q?Jos=C3=A9?=)."""
    try:
        return _clean(str(make_header(decode_header(text)))) if "=?" in text else text
    except Exception:  # a broken encoded word: as written
        return text


def _ids(value: str) -> list[str]:
    return [i for i in re.findall(r"<[^<>\s]+>", value) if valid_id(i)]


def _date(msg: MimePart) -> tuple[str | None, float]:
    raw = _header(msg, "Date")
    try:
        when = parsedate_to_datetime(raw) if raw else None
        if when is None:
            return None, 0.0
        if when.tzinfo is None:
            from datetime import timezone

            when = when.replace(tzinfo=timezone.utc)
        return when.isoformat(), when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return raw or None, 0.0


def parse_message(raw: bytes, path: str) -> Message | MailError:
    """One RFC 822 message (bytes) → Message, or MailError when nothing usable is in it."""
    try:
        if why := not_mail(raw):
            return MailError(path, why)
        msg = email.message_from_bytes(_cap_parts(_cap_nesting(_cap_headers(raw))), policy=_POLICY)
        body, attachments = _body_and_attachments(msg)
        if len(body) > MAX_BODY_CHARS:
            body = body[:MAX_BODY_CHARS] + f"\n[… {len(body) - MAX_BODY_CHARS} more characters not read]"
        subject = _header(msg, "Subject")
        if not body.strip() and not subject and not attachments:
            return MailError(path, "no message found (no headers, body or attachments)")
        text, quoted, signature = split_reply(body) if body.strip() else ("", "", "")
        date, timestamp = _date(msg)
        message_id = (_ids(_header(msg, "Message-ID")) or [""])[0]
        if not message_id:  # a stable synthetic id, so threads and indexes can still refer to it
            message_id = "<%s@local>" % hashlib.sha1(raw).hexdigest()[:16]
        return Message(
            path=path, message_id=message_id, subject=subject, from_=(_addresses(msg, "From") or [""])[0],
            to=_addresses(msg, "To"), cc=_addresses(msg, "Cc"), date=date, body=text, quoted=quoted,
            signature=signature, attachments=attachments,
            in_reply_to=(_ids(_header(msg, "In-Reply-To")) or [None])[0],
            references=_ids(_header(msg, "References")), timestamp=timestamp,
        )
    except Exception as e:  # the batch must go on: one line naming the file and the problem
        return MailError(path, f"cannot parse message: {type(e).__name__}: {e}".splitlines()[0][:300])


# Files and folders

def _os_error(e: BaseException) -> str:
    if isinstance(e, RuntimeError) or getattr(e, "errno", None) == errno.ELOOP:
        return "symlink loop"
    return f"cannot read: {getattr(e, 'strerror', None) or e}"


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


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


def _read_bytes(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file, opened so that a FIFO swapped in after the stat cannot block."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read(limit)


def _read_file(path: Path) -> Iterator[Message | MailError]:
    try:
        size, head = path.stat().st_size, _read_bytes(path, 5)
        if size and _is_mbox(path, head):
            yield from _read_mbox(path)
            return
        if size > MAX_MESSAGE_BYTES:
            yield MailError(str(path), f"too large for one message ({size >> 20} MB)")
            return
        raw = _read_bytes(path, MAX_MESSAGE_BYTES)
    except (OSError, RuntimeError) as e:
        yield MailError(str(path), _os_error(e))
        return
    yield parse_message(raw, str(path)) if raw.strip() else MailError(str(path), "empty file")


def _read_mbox(path: Path) -> Iterator[Message | MailError]:
    count = 0
    try:
        box = mailbox.mbox(str(path), create=False)
        for key in box.iterkeys():
            count += 1
            raw = box.get_bytes(key)
            yield parse_message(raw, f"{path}#{key}") if len(raw) <= MAX_MESSAGE_BYTES else \
                MailError(f"{path}#{key}", f"too large for one message ({len(raw) >> 20} MB)")
    except Exception as e:
        yield MailError(str(path), f"cannot read mbox: {type(e).__name__}: {e}".splitlines()[0][:300])
        return
    if count == 0:
        yield MailError(str(path), "mbox holds no messages")


def _walk(folder: Path) -> Iterator[Path | MailError]:
    """Mail-like files below a folder, sorted; unreadable folders and symlink loops as MailError.

    Symlinked folders are not entered (a link to an ancestor would loop); FIFOs are skipped unopened.
    """
    found: list[Path | MailError] = []
    todo = [folder]
    while todo:
        d = todo.pop()
        try:
            entries = list(os.scandir(d))
        except OSError as e:
            found.append(MailError(str(d), f"cannot read folder: {e.strerror or e}"))
            continue
        for entry in entries:
            p = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(p)
                elif entry.is_symlink() and not entry.name.startswith("."):
                    st = p.stat()  # raises on a loop or a dangling link
                    if stat.S_ISREG(st.st_mode) and _looks_like_mail(p):
                        found.append(p)
                elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(".") and _looks_like_mail(p):
                    found.append(p)
            except (OSError, RuntimeError) as e:
                if e.__class__ is FileNotFoundError:  # a dangling link: nothing to read
                    continue
                found.append(MailError(str(p), _os_error(e)))
    yield from sorted(found, key=lambda x: Path(x.path) if isinstance(x, MailError) else x)


def iter_files(path: Path) -> Iterator[Path]:
    """Mail files under a path: the file itself, or every mail-like file below a folder (Maildirs included)."""
    if path.is_file():
        yield path
        return
    yield from (p for p in _walk(path) if isinstance(p, Path))


def read_mail(*paths: str | Path) -> Iterator[Message | MailError]:
    """Every message under the paths, in a stable order; errors come back as MailError items.

    Only regular files and folders are read: a FIFO, a device (/dev/null), a socket, a symlink
    loop or an unreadable folder is one MailError naming it.
    """
    for p in map(Path, paths):
        try:
            st = p.stat()
        except FileNotFoundError:
            yield MailError(str(p), "no such file or folder")
            continue
        except (OSError, RuntimeError) as e:
            yield MailError(str(p), _os_error(e))
            continue
        if stat.S_ISDIR(st.st_mode):
            for f in _walk(p):
                yield from [f] if isinstance(f, MailError) else _read_file(f)
        elif stat.S_ISREG(st.st_mode):
            yield from _read_file(p)
        else:
            yield MailError(str(p), f"not a mail file or folder: {_kind(st.st_mode)}")


from assistant.mail.threads import Thread, assign_threads, group_threads, normalize_subject, valid_id  # noqa: E402,F401
