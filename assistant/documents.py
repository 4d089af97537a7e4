"""Read documents into indexable units, and cut them into chunks of roughly 100-250 words.

    for doc in read_documents(Path("notes/")):     # Doc or DocError, never raises
        for chunk in chunk_text(doc.text): ...

Mail is read per message (subject, sender, date, message id, thread id), without its
quoted text, which belongs to the message it quotes and is indexed there.

Reading is bounded: a document keeps its first MAX_TEXT_CHARS characters (a DocError beside the
Doc says it was cut), a .docx is read from its word/document.xml only when that unpacks to at most
MAX_DOCX_XML bytes (a zip bomb is a DocError), and only regular files are opened (never a FIFO).
"""

from __future__ import annotations

import csv
import errno
import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from assistant.mail import MAIL_SUFFIXES, MailError, Message, assign_threads, read_mail

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".rst"}
DOC_SUFFIXES = TEXT_SUFFIXES | {".html", ".htm", ".pdf", ".docx", ".csv", ".jsonl"} | MAIL_SUFFIXES
MAX_TEXT_CHARS = 4_000_000  # of one document (about 700k words, 4,000 chunks)
MAX_MARKUP_BYTES = 4 * MAX_TEXT_CHARS  # of a text or HTML file read (UTF-8 takes up to 4 bytes a character)
MAX_DOCX_XML = 32 << 20  # word/document.xml, unpacked
MAX_ROW_CHARS = 1 << 20  # one JSONL line (a CSV field keeps the csv module's own limit, 128 KB)


@dataclass
class Doc:
    path: str
    text: str
    title: str = ""
    message_id: str | None = None
    thread_id: str | None = None
    meta: dict = field(default_factory=dict)
    terms: str = ""  # what search matches besides the text, never shown: a Markdown page's front matter questions


@dataclass
class DocError:
    path: str
    error: str


class _TooLarge(Exception):
    pass


def _is_mail_file(p: Path) -> bool:
    from assistant.mail import _looks_like_mail

    if p.suffix.lower() in MAIL_SUFFIXES or p.parent.name in ("cur", "new"):
        return True
    return not p.suffix and _looks_like_mail(p)  # an mbox without an extension (Inbox, Sent)


def files_under(path: Path) -> Iterator[Path]:
    """Document files under a path; symlinked folders are not entered, FIFOs and devices not listed.

    A symlink loop with a document's name is listed, so that reading it reports the loop.
    """
    if path.is_file():
        yield path
        return
    for p in sorted(path.rglob("*")):
        hidden = any(part.startswith(".") for part in p.relative_to(path).parts)
        if hidden and p.parent.name not in ("cur", "new"):  # Maildir++ keeps its folders as .Sent/cur/…
            continue
        if p.is_file() or (p.is_symlink() and not p.exists() and p.suffix.lower() in DOC_SUFFIXES and _loops(p)):
            if p.suffix.lower() in DOC_SUFFIXES or _is_mail_file(p):
                yield p


def _loops(p: Path) -> bool:
    try:
        p.stat()
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def _mail_docs(path: Path) -> Iterator[Doc | DocError]:
    msgs = list(read_mail(path))
    good = assign_threads([m for m in msgs if isinstance(m, Message)])
    for m in msgs:
        if isinstance(m, MailError):
            yield DocError(m.path, m.error)
    for m in good:
        text = "\n".join(x for x in (f"From: {m.from_}", f"Date: {m.date}" if m.date else "", m.body) if x)
        yield Doc(m.path, text, m.subject, m.message_id, m.thread_id, {"from": m.from_, "date": m.date})


def _read_text(path: Path) -> tuple[str, bool]:
    """The file as text (UTF-8, errors replaced), at most MAX_MARKUP_BYTES of it; and whether it was cut."""
    with open(path, "rb") as f:
        data = f.read(MAX_MARKUP_BYTES + 1)
    return data[:MAX_MARKUP_BYTES].decode("utf-8", errors="replace"), len(data) > MAX_MARKUP_BYTES


def _bounded(path: Path, text: str, title: str, cut: bool = False,
             read: str = f"{MAX_TEXT_CHARS:,} characters", terms: str = "") -> Iterator[Doc | DocError]:
    """The Doc, its text cut to MAX_TEXT_CHARS; a DocError beside it when anything was cut."""
    if len(text) > MAX_TEXT_CHARS:
        text, cut = text[:MAX_TEXT_CHARS], True
    yield Doc(str(path), text, title[:200], meta={"truncated": True} if cut else {}, terms=terms)
    if cut:
        yield DocError(str(path), f"too long: only the first {read} were read")


_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
MAX_FRONT_CHARS = 64_000
FRONT_TERMS = ("description", "summary", "keywords", "tags", "aliases", "questions")
# keys that make a leading `---` block front matter, not a page that opens with a rule and a "Note: ..." line
FRONT_KEYS = frozenset(FRONT_TERMS) | {"title", "date", "layout", "author", "authors", "draft", "slug", "categories",
                                       "permalink", "weight", "lang", "id", "sidebar_position"}
MAX_TERMS_CHARS = 400  # about 90 word pieces: most of a chunk's 128 still embed its own words


def front_matter(text: str) -> tuple[dict, str]:
    """A Markdown page's YAML front matter (Jekyll, Hugo, Obsidian) as a dict, and the page without it.

    Only plain data is read (yaml.safe_load); a block that is not a mapping with a known front-matter key, or
    that does not parse, stays part of the text."""
    import yaml

    m = _FRONT.match(text[:MAX_FRONT_CHARS])
    if not m:
        return {}, text
    try:
        data = yaml.safe_load(m.group(1))
    except Exception:  # YAMLError, or RecursionError on deeply nested brackets: text, like any other page
        return {}, text
    if not isinstance(data, dict) or not FRONT_KEYS & {str(k).lower() for k in data}:
        return {}, text
    return data, text[m.end():]


def _terms(data: dict) -> str:
    """The words of the front matter's FRONT_TERMS fields, one line each: the requests a page answers
    ("questions:") reach search in the reader's own words, which a manual for agents lacks. At most
    MAX_TERMS_CHARS: they go before each chunk's words in its embedding, which reads 128 word pieces."""
    out = []
    for key in FRONT_TERMS:
        value = data.get(key)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip():
                out.append(str(v).strip()[:300])
    return "\n".join(out)[:MAX_TERMS_CHARS]


def read_file(path: Path) -> Iterator[Doc | DocError]:
    """The documents in one file (a mailbox or an export holds several)."""
    suffix = path.suffix.lower()
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            yield DocError(str(path), f"not a regular file: {kind}")
        elif _is_mail_file(path):
            yield from _mail_docs(path)
        elif suffix in TEXT_SUFFIXES:
            text, cut = _read_text(path)
            text = text.removeprefix("\ufeff")
            meta, text = front_matter(text) if suffix in (".md", ".markdown") else ({}, text)
            first = re.search(r"\S[^\n]{0,400}", text[:100_000])
            title = str(meta.get("title") or "").strip() or (first.group(0).lstrip("# ").strip() if first else path.stem)
            yield from _bounded(path, text, title, cut, terms=_terms(meta))
        elif suffix in (".html", ".htm"):
            from assistant.mail import MAX_HTML_CHARS, html_to_text

            html, cut = _read_text(path)
            m = re.search(r"<title[^>]*>([^<]{0,400})", html[:100_000], re.I)
            title, cut = m.group(1).strip() if m else path.stem, cut or len(html) > MAX_HTML_CHARS
            yield from _bounded(path, html_to_text(html), title, cut, f"{MAX_HTML_CHARS:,} characters of HTML")
        elif suffix == ".pdf":
            yield from _pdf(path)
        elif suffix == ".docx":
            text, cut = _docx_text(path)
            yield from _bounded(path, text, path.stem, cut)
        elif suffix in (".csv", ".jsonl"):
            yield from _rows(path)
        else:
            yield DocError(str(path), f"unsupported file type {suffix or '(none)'}")
    except RuntimeError:  # Path.stat on a symlink loop, before Python 3.13
        yield DocError(str(path), "symlink loop")
    except Exception as e:  # one bad file never stops an index run
        reason = "symlink loop" if getattr(e, "errno", None) == errno.ELOOP else f"{type(e).__name__}: {e}"
        yield DocError(str(path), reason.splitlines()[0][:300])


def _pdf(path: Path) -> Iterator[Doc | DocError]:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its warnings would print mid-progress; errors are listed
    pages, size = [], 0
    for page in PdfReader(str(path)).pages:
        pages.append(page.extract_text() or "")
        size += len(pages[-1]) + 2
        if size > MAX_TEXT_CHARS:
            break
    text = "\n\n".join(pages)
    if not text.strip():
        yield DocError(str(path), "PDF has no extractable text")
        return
    yield from _bounded(path, text, path.stem)


class _Budget:
    """A file object that raises _TooLarge once more than `limit` bytes were read through it."""

    def __init__(self, f: IO[bytes], limit: int) -> None:
        self.f, self.left = f, limit

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n >= 0 else self.left + 1)
        self.left -= len(data)
        if self.left < 0:
            raise _TooLarge()
        return data


def _docx_text(path: Path) -> tuple[str, bool]:
    """The paragraphs (tables included) of a .docx, streamed from word/document.xml; and whether it was cut.

    Only that one part is unpacked, and only when its declared size is within MAX_DOCX_XML; it is
    read through a byte budget of the same size, so a lying header cannot unpack more.
    """
    import zipfile
    from xml.etree.ElementTree import iterparse

    with zipfile.ZipFile(path) as z:
        try:
            info = z.getinfo("word/document.xml")
        except KeyError:
            raise ValueError("not a Word document (no word/document.xml)") from None
        if info.file_size > MAX_DOCX_XML:
            raise ValueError(f"word/document.xml unpacks to {info.file_size >> 20} MB "
                             f"(limit {MAX_DOCX_XML >> 20} MB): a zip bomb?")
        paragraphs, run, size = [], [], 0
        with z.open(info) as raw:
            try:
                for _, el in iterparse(_Budget(raw, MAX_DOCX_XML), events=("end",)):
                    tag = el.tag.rpartition("}")[2]
                    if tag == "t":
                        run.append(el.text or "")
                    elif tag == "tab":
                        run.append("\t")
                    elif tag in ("br", "cr"):
                        run.append("\n")
                    elif tag == "p":
                        paragraphs.append("".join(run))
                        size, run = size + len(paragraphs[-1]) + 2, []
                        el.clear()
                        if size > MAX_TEXT_CHARS:
                            return "\n\n".join(paragraphs), True
                    elif tag in ("tbl", "tc", "tr", "sdt", "body"):
                        el.clear()
            except _TooLarge:
                raise ValueError(f"word/document.xml unpacks to more than {MAX_DOCX_XML >> 20} MB: a zip bomb?") from None
    return "\n\n".join(paragraphs), False


def _lines(f: IO[str], limit: int) -> Iterator[str | None]:
    """Lines of a text file; None in place of a line longer than `limit` (never held whole)."""
    while line := f.readline(limit):
        if len(line) == limit and not line.endswith("\n"):
            while (rest := f.readline(limit)) and not rest.endswith("\n"):
                pass
            yield None
        else:
            yield line


def _rows(path: Path) -> Iterator[Doc | DocError]:
    """One Doc per CSV row or JSONL object, streamed; the file's text is capped at MAX_TEXT_CHARS."""
    size = 0
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = csv.DictReader(f) if path.suffix.lower() == ".csv" else _json_rows(path, f)
        for i, r in enumerate(rows):
            if isinstance(r, DocError):
                yield r
                continue
            if not isinstance(r, dict):
                continue
            text = "\n".join(f"{k}: {v}" for k, v in r.items() if isinstance(v, str) and v.strip())
            title = str(r.get("title") or r.get("subject") or r.get("id") or f"row {i}")
            yield Doc(f"{path}#{r.get('id', i)}", text, title[:200])
            size += len(text)
            if size > MAX_TEXT_CHARS:
                yield DocError(str(path), f"too long: only the first {i + 1} rows were read")
                return


def _json_rows(path: Path, f: IO[str]) -> Iterator[object]:
    for n, line in enumerate(_lines(f, MAX_ROW_CHARS), 1):
        if line is None:
            yield DocError(f"{path}:{n}", f"line longer than {MAX_ROW_CHARS:,} characters")
        elif line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                yield DocError(f"{path}:{n}", "line is not JSON")


# Chunking: linear in the text, every chunk within hard_max words and max_chars characters

_HEADING = re.compile(r"^(#{1,6} |[A-Z][^\n]{0,80}\n[=-]{3,})", re.M)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")


def _split(pattern: re.Pattern, text: str) -> Iterator[str]:
    """re.split, lazily: a 20 MB text is never held as a list of its pieces."""
    start = 0
    for m in pattern.finditer(text):
        yield text[start:m.start()]
        start = m.end()
    yield text[start:]


def _fits(text: str, words: int, chars: int) -> bool:
    return len(text) <= chars and len(text.split()) <= words


def _word_runs(sentence: str, words: int, chars: int) -> Iterator[str]:
    """A sentence too long to keep whole: runs of words; a word longer than `chars` cut into slices."""
    run, n_chars = [], -1
    for m in _WORD.finditer(sentence):
        word = m.group(0)
        if run and (len(run) >= words or n_chars + 1 + len(word) > chars):
            yield " ".join(run)
            run, n_chars = [], -1
        if len(word) > chars:
            yield from (word[i:i + chars] for i in range(0, len(word), chars))
            continue
        run.append(word)
        n_chars += 1 + len(word)
    if run:
        yield " ".join(run)


def _pack(units: Iterator[str], words: int, chars: int) -> Iterator[str]:
    """Consecutive units joined by spaces, as many as fit in `words` and `chars`."""
    cur, n_words, n_chars = [], 0, -1
    for u in units:
        w = len(u.split())
        if cur and (n_words + w > words or n_chars + 1 + len(u) > chars):
            yield " ".join(cur)
            cur, n_words, n_chars = [], 0, -1
        cur.append(u)
        n_words, n_chars = n_words + w, n_chars + 1 + len(u)
    if cur:
        yield " ".join(cur)


def _pieces(text: str, target: int, hard_max: int, max_chars: int) -> Iterator[str]:
    """Paragraphs; one too long is cut by sentence, then by whitespace, then by character."""
    for para in _split(_PARAGRAPH_BREAK, text):
        para = para.strip()
        if not para:
            continue
        if _fits(para, hard_max, max_chars):
            yield para
            continue
        sentences = (s for s in _split(_SENTENCE_END, para) if s)
        units = (u for s in sentences for u in ([s] if _fits(s, target, max_chars) else _word_runs(s, target, max_chars)))
        yield from _pack(units, target, max_chars)


def chunk_text(text: str, target: int = 180, hard_max: int = 250, min_words: int = 40,
               max_chars: int = 2000) -> list[str]:
    """Chunks of about `target` words that follow paragraphs and headings, in order.

    Every chunk has at most `hard_max` words and `max_chars` characters, whatever the text:
    a paragraph too long is cut by sentence, then by whitespace, then by character.
    """
    chunks: list[str] = []
    cur, n_words, n_chars, last_words = [], 0, -2, 0
    for p in _pieces(text, target, hard_max, max_chars):
        w = len(p.split())
        starts_section = n_words >= min_words and bool(_HEADING.match(p))
        if cur and (n_words + w > hard_max or n_chars + 2 + len(p) > max_chars or starts_section or n_words >= target):
            chunks.append("\n\n".join(cur))
            cur, n_words, n_chars, last_words = [], 0, -2, n_words
        cur.append(p)
        n_words, n_chars = n_words + w, n_chars + 2 + len(p)
    if cur:
        if chunks and n_words < min_words and last_words + n_words <= hard_max \
                and len(chunks[-1]) + 2 + n_chars <= max_chars:
            chunks[-1] += "\n\n" + "\n\n".join(cur)
        else:
            chunks.append("\n\n".join(cur))
    return [c for c in chunks if c.strip()]
