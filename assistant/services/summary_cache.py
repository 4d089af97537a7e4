"""Summaries already made, in SQLite in the data dir: a mailbox summarized again costs only its new mail.

    cache = SummaryCache()                                   # <data dir>/summaries.db
    key = Key("m:<id@host>", model_key(model), "line", "summarize-v3", 8)
    cache.get(key, content)                                  # the summary, or None (absent or made from other bytes)
    cache.put(key, content, "Budget review moved to Friday")

A key is what was summarized (a message by its Message-ID, which assistant.mail makes from a
content hash when there is none; a thread by its id), by which model (its name and the size and
mtime of its files: a retrained student is another model), at which length, with which prompt
version and how many consensus samples. `content` is a hash of what was read: a message whose
bytes changed, or a thread that gained a message, is summarized again and its row replaced.

Each put commits at once (WAL journal), so a killed run keeps everything but what was in flight;
two processes writing the same key leave one row (an upsert on the primary key).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assistant import paths

SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    item TEXT NOT NULL,      -- m:<message id> or t:<thread id>
    model TEXT NOT NULL,     -- name@identity of its files
    length TEXT NOT NULL,
    prompt TEXT NOT NULL,    -- prompt version
    samples INTEGER NOT NULL,
    content TEXT NOT NULL,   -- hash of what was summarized
    summary TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (item, model, length, prompt, samples)
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class Key:
    item: str
    model: str
    length: str
    prompt: str
    samples: int


def model_key(model) -> str:
    """A model's name and the identity of its files (path, size, mtime of the GGUF and adapter), or of
    its server: a file replaced under the same name makes another key."""
    parts = [getattr(model, "name", type(model).__name__), getattr(model, "base_url", "") or ""]
    for attr in ("path", "lora_path"):
        p = getattr(model, attr, None)
        if p:
            try:
                st = Path(p).stat()
                parts += [str(p), str(st.st_size), str(st.st_mtime_ns)]
            except OSError:
                parts.append(str(p))
    parts.append(str(getattr(model, "merge", "") or ""))
    return f"{parts[0]}@{hashlib.sha1('|'.join(parts).encode()).hexdigest()[:12]}"


def default_path() -> Path:
    return paths.data_dir() / "summaries.db"


class SummaryCache:
    """The summary table; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self._lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses no committed row
            self.db.execute(SCHEMA)
        except sqlite3.Error as e:
            raise paths.write_error(self.path, e) from None

    def get(self, key: Key, content: str) -> str | None:
        """The summary stored for `key` if it was made from `content`, else None."""
        with self._lock:
            row = self.db.execute(
                "SELECT summary FROM summaries WHERE item=? AND model=? AND length=? AND prompt=? AND samples=?"
                " AND content=?", (key.item, key.model, key.length, key.prompt, key.samples, content)).fetchone()
        return row[0] if row else None

    def put(self, key: Key, content: str, summary: str) -> None:
        """Store (or replace) the summary for `key`, committed before this returns."""
        with self._lock:
            self.db.execute(
                "INSERT INTO summaries (item, model, length, prompt, samples, content, summary, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item, model, length, prompt, samples)"
                " DO UPDATE SET content=excluded.content, summary=excluded.summary, created=excluded.created",
                (key.item, key.model, key.length, key.prompt, key.samples, content, summary, time.time()))

    def count(self) -> int:
        with self._lock:
            return self.db.execute("SELECT count(*) FROM summaries").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.db.close()
