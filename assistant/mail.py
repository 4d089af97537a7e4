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

import bisect
import email
import email.policy
import errno
import hashlib
import html as htmllib
import mailbox
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from email.header import decode_header, make_header
from email.message import Message as MimePart
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Iterable, Iterator

from email_reply_parser import EmailMessage as _ReplyScan

MAIL_SUFFIXES = {".eml", ".msg", ".mbox", ".mbx", ".mail"}
MAX_HEADER = 16 * 1024  # one header, raw bytes
MAX_MIME_HEADER = 2 * 1024  # Content-Type and friends are parsed again on every access
MAX_HEADER_BLOCK = 256 * 1024  # all top-level headers; the body is kept whole
MAX_NESTING = 100  # multipart/ and message/ parts (the parser recurses once per level)
MAX_PARTS = 2000  # leaves walked in one message
MAX_BODY_CHARS = 2_000_000  # of one message's text
MAX_HTML_CHARS = 2_000_000  # of markup read by html_to_text (its worst case is about 1 s a MB on a busy core)
MAX_MESSAGE_BYTES = 64 << 20  # one .eml file
THREAD_WINDOW = 30 * 86400  # a reply without references joins a same-subject message this close in time

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


# HTML → text, linear in the input whatever its nesting (html.parser and bs4 are not, on hostile input)

_RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"}
_DROPPED = {"script", "style", "title", "template", "noscript", "iframe", "noembed", "noframes"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr", "dl"}
_BLOCK = _PARAGRAPH | {"div", "li", "tr", "td", "th", "dt", "dd", "section", "article", "header", "footer", "nav",
                       "aside", "main", "figure", "address", "center", "form", "body", "html", "caption"}
_NO_SELF_NEST = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}
_START_TAG = re.compile(r"""<([a-zA-Z][^\s/<>]*+)((?:[^<>"']++|"[^"]*+"|'[^']*+')*+)>""")
_END_TAG = re.compile(r"</([a-zA-Z][^\s/<>]*+)[^<>]*+>")
_ATTR = re.compile(r"""([^\s=/<>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_RAW_END: dict[str, re.Pattern] = {t: re.compile(rf"</{t}[\s/>]", re.I) for t in _RAW_TEXT}
_COLORS = {"white": "#ffffff", "black": "#000000", "transparent": "transparent"}
_ZERO = re.compile(r"^[0.]+(px|pt|em|rem|%)?$")


def _color(value: str) -> str | None:
    """#fff, #FFFFFF, white, rgb(255, 255, 255) → '#ffffff'; anything else we cannot compare → None."""
    v = value.strip().lower().removesuffix("!important").strip()
    if m := re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", v):
        h = m.group(1)
        return "#" + (h if len(h) == 6 else "".join(c * 2 for c in h))
    if m := re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)", v):
        if m.group(4) is not None and _ZERO.match(m.group(4)):
            return "transparent"
        return "#%02x%02x%02x" % tuple(min(255, int(x)) for x in m.groups()[:3])
    return _COLORS.get(v)


def _style(state: tuple, tag: str, attrs: dict) -> tuple:
    """The inherited (dropped, gone, zero_size, color, background, pre) state of an element, updated by its own attributes."""
    dropped, gone, zero, color, bg, pre = state
    dropped, pre = dropped or tag in _DROPPED, pre or tag == "pre"
    gone = gone or "hidden" in attrs
    if "bgcolor" in attrs:
        bg = _color(attrs["bgcolor"]) or bg
    if tag == "font" and "color" in attrs:
        color = _color(attrs["color"]) or color
    decls = dict(d.split(":", 1) for d in attrs.get("style", "").lower().split(";") if ":" in d)
    decls = {k.strip(): v.strip().removesuffix("!important").strip() for k, v in decls.items()}
    gone = gone or decls.get("display") == "none" or decls.get("visibility") in ("hidden", "collapse")
    gone = gone or decls.get("mso-hide") == "all" or bool(_ZERO.match(decls.get("opacity", "1")))
    gone = gone or (decls.get("overflow") == "hidden" and any(_ZERO.match(decls.get(k, "1")) for k in ("max-height", "height")))
    if "font-size" in decls:
        zero = bool(_ZERO.match(decls["font-size"]))
    if "color" in decls:
        color = _color(decls["color"]) or color
    for key in ("background-color", "background"):
        found = [c for c in map(_color, decls.get(key, "").split()) if c]
        bg = found[0] if found else bg
    return dropped, gone, zero, color, bg, pre


class _HtmlText:
    """Collects text lines; a run of hidden text becomes lines of its own, each marked."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.cur_hidden = False

    def add(self, text: str, state: tuple) -> None:
        dropped, gone, zero, color, bg, pre = state
        if dropped or not text:
            return
        hidden = gone or zero or color == "transparent" or (color is not None and color == (bg or "#ffffff"))
        if hidden != self.cur_hidden and text.strip():
            self.newline()
            self.cur_hidden = hidden
        if not pre:
            self.cur.append(text)
            return
        first, *rest = text.split("\n")
        self.cur.append(first)
        for line in rest:
            self.newline()
            self.cur.append(line)

    def newline(self, paragraph: bool = False) -> None:
        line = re.sub(r"[ \t\r\n\f\v\xa0]+", " ", "".join(self.cur)).strip() if self.cur else ""
        self.cur = []
        if line:
            self.lines.append("[hidden text] " + line if self.cur_hidden else line)
        if paragraph and self.lines and self.lines[-1]:
            self.lines.append("")

    def text(self) -> str:
        self.newline()
        return "\n".join(self.lines).strip()


def _attrs(raw: str) -> dict:
    return {m.group(1).lower(): htmllib.unescape(next((g for g in m.groups()[1:] if g is not None), ""))
            for m in _ATTR.finditer(raw)}


def html_to_text(html: str) -> str:
    """The text of an HTML body, in one pass: scripts, styles and comments dropped; hidden text kept and marked.

    Lines of text hidden by the `hidden` attribute or CSS (display:none, visibility:hidden,
    font-size:0, opacity:0, mso-hide:all, max-height:0 with overflow:hidden, a text colour equal
    to its background: white-on-white) start with "[hidden text] ". Only the first MAX_HTML_CHARS
    characters of markup are read.
    """
    html = html[:MAX_HTML_CHARS]
    root = (False, False, False, None, None, False)
    stack: list[tuple[str, tuple]] = []  # (tag, state); an end tag pops to its start tag, if it is open
    open_count: dict[str, int] = {}
    out, pos, n = _HtmlText(), 0, len(html)
    state = lambda: stack[-1][1] if stack else root  # noqa: E731

    def pop_to(tag: str) -> None:
        while stack:
            name, _ = stack.pop()
            open_count[name] -= 1
            if name in _BLOCK:
                out.newline(name in _PARAGRAPH)
            if name == tag:
                return

    text_from = 0  # text since the last markup, added when the next markup starts (a lone "<" is text)
    while (lt := html.find("<", pos)) >= 0:
        pos, m = lt + 1, None
        if html.startswith("<!--", lt):  # a comment; an unclosed one runs to the end, as in a browser
            end = html.find("-->", lt + 4)
            markup_end = n if end < 0 else end + 3
        elif html.startswith(("<!", "<?"), lt):  # doctype, CDATA, processing instruction
            end = html.find(">", lt + 2)
            markup_end = n if end < 0 else end + 1
        elif (m := (_END_TAG if html.startswith("</", lt) else _START_TAG).match(html, lt)) is not None:
            markup_end = m.end()
        else:
            continue
        if lt > text_from:
            out.add(htmllib.unescape(html[text_from:lt]), state())
        pos = text_from = markup_end
        if m is None:  # a comment or a declaration
            continue
        tag = m.group(1).lower()
        if m.re is _END_TAG:
            if open_count.get(tag):
                pop_to(tag)
            elif tag in ("br", "p"):
                out.newline(tag == "p")
            continue
        raw_attrs = m.group(2)
        if stack and ((stack[-1][0] == tag and tag in _NO_SELF_NEST) or (stack[-1][0] == "p" and tag in _BLOCK)):
            pop_to(stack[-1][0])
        if tag in _BLOCK or tag == "br":
            out.newline(tag in _PARAGRAPH)
        own = _style(state(), tag, _attrs(raw_attrs)) if raw_attrs.strip() or tag in _DROPPED or tag == "pre" else state()
        if tag in _RAW_TEXT:  # no markup inside: runs to its end tag
            close = _RAW_END[tag].search(html, pos)
            out.add(htmllib.unescape(html[pos:close.start() if close else n]), own)
            pos = text_from = n if close is None else html.find(">", close.start()) + 1 or n
        elif tag not in _VOID and not raw_attrs.rstrip().endswith("/"):
            stack.append((tag, own))
            open_count[tag] = open_count.get(tag, 0) + 1
    if text_from < n:
        out.add(htmllib.unescape(html[text_from:]), state())
    return out.text()


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


def _valid_id(ref: str | None) -> bool:
    """A message id worth linking by: <local@domain>, of a sane length ('<yes>' glued 13 lkml threads)."""
    return bool(ref) and len(ref) <= 250 and re.fullmatch(r"<[^<>\s]+@[^<>\s@]+>", ref) is not None


def _ids(value: str) -> list[str]:
    return [i for i in re.findall(r"<[^<>\s]+>", value) if _valid_id(i)]


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
        refs = [r for r in m.references + [m.in_reply_to] if _valid_id(r)]
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
