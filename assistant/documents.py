"""Read documents into indexable units, and cut them into chunks of roughly 100-250 words.

    for doc in read_documents(Path("notes/")):     # Doc or DocError, never raises
        for chunk in chunk_text(doc.text): ...

Mail is read per message (subject, sender, date, message id, thread id), without its
quoted text, which belongs to the message it quotes and is indexed there.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from assistant.mail import MAIL_SUFFIXES, MailError, Message, assign_threads, read_mail

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".rst"}
DOC_SUFFIXES = TEXT_SUFFIXES | {".html", ".htm", ".pdf", ".docx", ".csv", ".jsonl"} | MAIL_SUFFIXES


@dataclass
class Doc:
    path: str
    text: str
    title: str = ""
    message_id: str | None = None
    thread_id: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class DocError:
    path: str
    error: str


def _is_mail_file(p: Path) -> bool:
    from assistant.mail import _looks_like_mail

    if p.suffix.lower() in MAIL_SUFFIXES or p.parent.name in ("cur", "new"):
        return True
    return not p.suffix and _looks_like_mail(p)  # an mbox without an extension (Inbox, Sent)


def files_under(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for p in sorted(path.rglob("*")):
        hidden = any(part.startswith(".") for part in p.relative_to(path).parts)
        if hidden and p.parent.name not in ("cur", "new"):  # Maildir++ keeps its folders as .Sent/cur/…
            continue
        if p.is_file():
            if p.suffix.lower() in DOC_SUFFIXES or _is_mail_file(p):
                yield p


def _mail_docs(path: Path) -> Iterator[Doc | DocError]:
    msgs = list(read_mail(path))
    good = assign_threads([m for m in msgs if isinstance(m, Message)])
    for m in msgs:
        if isinstance(m, MailError):
            yield DocError(m.path, m.error)
    for m in good:
        text = "\n".join(x for x in (f"From: {m.from_}", f"Date: {m.date}" if m.date else "", m.body) if x)
        yield Doc(m.path, text, m.subject, m.message_id, m.thread_id, {"from": m.from_, "date": m.date})


def read_file(path: Path) -> Iterator[Doc | DocError]:
    """The documents in one file (a mailbox or an export holds several)."""
    suffix = path.suffix.lower()
    try:
        if _is_mail_file(path):
            yield from _mail_docs(path)
        elif suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8", errors="replace")
            title = next((l.lstrip("# ").strip() for l in text.splitlines() if l.strip()), path.stem)
            yield Doc(str(path), text, title[:200])
        elif suffix in (".html", ".htm"):
            from assistant.mail import html_to_text

            html = path.read_text(encoding="utf-8", errors="replace")
            m = re.search(r"<title>(.*?)</title>", html, re.I | re.S)
            yield Doc(str(path), html_to_text(html), (m.group(1).strip() if m else path.stem)[:200])
        elif suffix == ".pdf":
            import logging

            from pypdf import PdfReader

            logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its warnings would print mid-progress; errors are listed

            text = "\n\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
            yield Doc(str(path), text, path.stem) if text.strip() else DocError(str(path), "PDF has no extractable text")
        elif suffix == ".docx":
            import docx

            d = docx.Document(str(path))
            yield Doc(str(path), "\n\n".join(p.text for p in d.paragraphs), path.stem)
        elif suffix in (".csv", ".jsonl"):
            yield from _rows(path)
        else:
            yield DocError(str(path), f"unsupported file type {suffix or '(none)'}")
    except Exception as e:  # one bad file never stops an index run
        yield DocError(str(path), f"{type(e).__name__}: {e}".splitlines()[0][:300])


def _rows(path: Path) -> Iterator[Doc | DocError]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = []
        for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    yield DocError(f"{path}:{n}", "line is not JSON")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            continue
        text = "\n".join(f"{k}: {v}" for k, v in r.items() if isinstance(v, str) and v.strip())
        title = str(r.get("title") or r.get("subject") or r.get("id") or f"row {i}")
        yield Doc(f"{path}#{r.get('id', i)}", text, title[:200])


_HEADING = re.compile(r"^(#{1,6} |[A-Z][^\n]{0,80}\n[=-]{3,})", re.M)


def chunk_text(text: str, target: int = 180, hard_max: int = 250, min_words: int = 40) -> list[str]:
    """Chunks of about `target` words that follow paragraphs and headings; long paragraphs split by sentence."""
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for p in paras:
        words = p.split()
        if len(words) <= hard_max:
            pieces.append(p)
            continue
        sentences, cur = re.split(r"(?<=[.!?])\s+", p), []
        for s in sentences:
            if cur and len(" ".join(cur).split()) + len(s.split()) > target:
                pieces.append(" ".join(cur))
                cur = []
            cur.append(s)
        if cur:
            pieces.append(" ".join(cur))
    chunks: list[str] = []
    cur: list[str] = []
    for p in pieces:
        n_cur = sum(len(x.split()) for x in cur)
        starts_section = bool(_HEADING.match(p)) and n_cur >= min_words
        if cur and (n_cur + len(p.split()) > hard_max or starts_section or n_cur >= target):
            chunks.append("\n\n".join(cur))
            cur = []
        cur.append(p)
    if cur:
        if chunks and sum(len(x.split()) for x in cur) < min_words and len(chunks[-1].split()) + len(" ".join(cur).split()) <= hard_max:
            chunks[-1] += "\n\n" + "\n\n".join(cur)
        else:
            chunks.append("\n\n".join(cur))
    return [c for c in chunks if c.strip()]
