"""The history database (`logs.db` in the data dir): every prompt and response, conversations,
and the feedback store of drafts the user accepted or edited (retraining data).

Migrations run once each, in order, and are recorded in `_migrations`. WAL journaling: a
kill during a write loses nothing that was committed.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Callable

from assistant import paths

MIGRATIONS: list[Callable[[], str]] = []


def migration(fn: Callable[[], str]):
    """Register a migration: a function returning its SQL; each runs once, in order, in one transaction."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial() -> str:
    return (
        """
        CREATE TABLE conversations (id TEXT PRIMARY KEY, name TEXT, model TEXT, system TEXT,
                                    created REAL, updated REAL);
        CREATE TABLE responses (id INTEGER PRIMARY KEY, conversation_id TEXT REFERENCES conversations(id),
                                model TEXT, kind TEXT, prompt TEXT, system TEXT, response TEXT,
                                options TEXT, duration_ms INTEGER, created REAL);
        CREATE INDEX responses_conversation ON responses(conversation_id);
        CREATE VIRTUAL TABLE responses_fts USING fts5(prompt, response, content='responses', content_rowid='id');
        CREATE TRIGGER responses_ai AFTER INSERT ON responses BEGIN
            INSERT INTO responses_fts(rowid, prompt, response) VALUES (new.id, new.prompt, new.response);
        END;
        CREATE TRIGGER responses_ad AFTER DELETE ON responses BEGIN
            INSERT INTO responses_fts(responses_fts, rowid, prompt, response) VALUES ('delete', old.id, old.prompt, old.response);
        END;
        """
    )


@migration
def m002_feedback() -> str:
    return (
        """
        CREATE TABLE feedback (id INTEGER PRIMARY KEY, task TEXT, model TEXT, source TEXT,
                               input TEXT, draft TEXT, final TEXT, accepted INTEGER, created REAL);
        """
    )


def db_path() -> Path:
    return paths.data_dir() / "logs.db"


def connect(path: Path | None = None) -> sqlite3.Connection:
    db = sqlite3.connect(path or db_path(), timeout=30, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
    for fn in MIGRATIONS:
        if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (fn.__name__,)).fetchone():
            continue
        try:  # the schema change and its record commit together, or not at all
            db.executescript(f"BEGIN IMMEDIATE; {fn()}; INSERT INTO _migrations VALUES ('{fn.__name__}', {time.time()}); COMMIT;")
        except sqlite3.OperationalError:
            if db.in_transaction:
                db.rollback()
            if not db.execute("SELECT 1 FROM _migrations WHERE name = ?", (fn.__name__,)).fetchone():
                raise  # not another process that got there first: a real error
    return db


def new_conversation(db: sqlite3.Connection, model: str, name: str = "", system: str = "") -> str:
    cid = uuid.uuid4().hex[:12]
    now = time.time()
    with db:
        db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)", (cid, name, model, system, now, now))
    return cid


def last_conversation(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT id FROM conversations ORDER BY updated DESC LIMIT 1").fetchone()
    return row[0] if row else None


def log_response(db: sqlite3.Connection, *, model: str, kind: str, prompt: str, response: str,
                 system: str = "", conversation_id: str | None = None, options: dict | None = None,
                 duration_ms: int = 0) -> int:
    now = time.time()
    with db:
        cur = db.execute(
            "INSERT INTO responses (conversation_id, model, kind, prompt, system, response, options, duration_ms, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, model, kind, prompt, system, response, json.dumps(options or {}), duration_ms, now),
        )
        if conversation_id:
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
            if not db.execute("SELECT name FROM conversations WHERE id = ?", (conversation_id,)).fetchone()[0]:
                db.execute("UPDATE conversations SET name = ? WHERE id = ?", (prompt.strip()[:60], conversation_id))
    return cur.lastrowid


def conversation_messages(db: sqlite3.Connection, conversation_id: str) -> list[dict]:
    """The chat so far, as messages (for continuing a conversation)."""
    msgs: list[dict] = []
    for r in db.execute("SELECT prompt, response FROM responses WHERE conversation_id = ? ORDER BY id", (conversation_id,)):
        msgs += [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]
    return msgs


def search_logs(db: sqlite3.Connection, query: str | None = None, limit: int = 10) -> list[dict]:
    if query:
        rows = db.execute(
            "SELECT r.* FROM responses r JOIN responses_fts f ON f.rowid = r.id WHERE responses_fts MATCH ?"
            " ORDER BY r.id DESC LIMIT ?", (_fts_query(query), limit))
    else:
        rows = db.execute("SELECT * FROM responses ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def _fts_query(text: str) -> str:
    """User text → an FTS5 query that cannot be a syntax error: every word quoted."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words) or '""'


def add_feedback(db: sqlite3.Connection, *, task: str, model: str, source: str, input: str, draft: str,
                 final: str) -> int:
    with db:
        cur = db.execute(
            "INSERT INTO feedback (task, model, source, input, draft, final, accepted, created) VALUES (?,?,?,?,?,?,?,?)",
            (task, model, source, input, draft, final, int(final.strip() == draft.strip()), time.time()),
        )
    return cur.lastrowid


def list_feedback(db: sqlite3.Connection, task: str | None = None) -> list[dict]:
    q, args = "SELECT * FROM feedback", ()
    if task:
        q, args = q + " WHERE task = ?", (task,)
    return [dict(r) for r in db.execute(q + " ORDER BY id", args)]
