"""The history database (`logs.db` in the data dir): every prompt and response, conversations,
and the feedback store of drafts the user accepted or edited (retraining data).

Migrations run once each, in order, and are recorded in `_migrations`. WAL journaling: a
kill during a write loses nothing that was committed.

A history that cannot be written (a read-only logs.db) still opens and reads; each write is then
skipped with a one-line warning on stderr instead of failing the command that made it. A history
that cannot be opened at all is a one-line AssistantError naming the folder.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import quote

from assistant import paths
from assistant.sqlite import open_wal, retrying

T = TypeVar("T")
MAX_QUERY_TERMS = 200  # words of a search that reach FTS5: a pasted page stays a fast, valid query

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


class History(sqlite3.Connection):
    """A connection to the history that remembers whether a write was refused (warned once)."""

    path: Path
    unsaved: str | None = None  # why writes are skipped, once one was refused


def connect(path: Path | None = None) -> sqlite3.Connection:
    """The history, migrated; read-only when it cannot be written; AssistantError when it cannot be opened."""
    path = Path(path or db_path())
    try:
        return _open(path)
    except sqlite3.DatabaseError as e:
        error = paths.write_error(path, e)
        if not any(s in str(e) for s in ("readonly", "unable to open")):  # e.g. not a database at all
            raise error from None
    try:  # it exists but cannot be written: reading still works, writes are skipped
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, factory=History, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("SELECT 1 FROM responses LIMIT 1")
    except sqlite3.Error:
        raise error from None
    db.path = path
    return db


def _open(path: Path) -> History:
    db = open_wal(path, factory=History)
    db.path = path
    retrying(lambda: db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)"))
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


def _save(db: sqlite3.Connection, write: Callable[[], T]) -> T | None:
    """`write()` in one transaction; None, with one warning on stderr, when the history is read-only."""
    if getattr(db, "unsaved", None):
        return None
    try:
        with db:
            return write()
    except sqlite3.OperationalError as e:
        if "readonly" not in str(e):
            raise
        why = str(paths.write_error(getattr(db, "path", None) or db_path(), e))
        if isinstance(db, History):
            db.unsaved = why
        print(f"warning: history is not saved: {why}", file=sys.stderr, flush=True)
        return None


def new_conversation(db: sqlite3.Connection, model: str, name: str = "", system: str = "") -> str:
    cid = uuid.uuid4().hex[:12]
    now = time.time()
    _save(db, lambda: db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)", (cid, name, model, system, now, now)))
    return cid


def last_conversation(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT id FROM conversations ORDER BY updated DESC LIMIT 1").fetchone()
    return row[0] if row else None


def log_response(db: sqlite3.Connection, *, model: str, kind: str, prompt: str, response: str,
                 system: str = "", conversation_id: str | None = None, options: dict | None = None,
                 duration_ms: int = 0) -> int | None:
    """The new response's id; None when the history is read-only (warned once)."""
    now = time.time()

    def write() -> int:
        cur = db.execute(
            "INSERT INTO responses (conversation_id, model, kind, prompt, system, response, options, duration_ms, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, model, kind, prompt, system, response, json.dumps(options or {}), duration_ms, now),
        )
        if conversation_id:
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
            row = db.execute("SELECT name FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            if row and not row[0]:
                db.execute("UPDATE conversations SET name = ? WHERE id = ?", (prompt.strip()[:60], conversation_id))
        return cur.lastrowid

    return _save(db, write)


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
            " ORDER BY r.id DESC LIMIT ?", (fts_query(query), limit))
    else:
        rows = db.execute("SELECT * FROM responses ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def fts_query(text: str) -> str:
    """User text → an FTS5 query that cannot be a syntax error: every word quoted (quotes doubled), ANDed.

    A NUL would end the quoted string early and a lone surrogate (undecodable bytes in argv) cannot
    reach SQLite at all, so both are replaced first; past MAX_QUERY_TERMS words the rest are dropped.
    """
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\0", " ")
    words = [w.replace('"', '""') for w in text.split()][:MAX_QUERY_TERMS]
    return " ".join(f'"{w}"' for w in words) or '""'


def add_feedback(db: sqlite3.Connection, *, task: str, model: str, source: str, input: str, draft: str,
                 final: str) -> int | None:
    """The new entry's id; None when the history is read-only (warned once)."""
    return _save(db, lambda: db.execute(
        "INSERT INTO feedback (task, model, source, input, draft, final, accepted, created) VALUES (?,?,?,?,?,?,?,?)",
        (task, model, source, input, draft, final, int(final.strip() == draft.strip()), time.time()),
    ).lastrowid)


def list_feedback(db: sqlite3.Connection, task: str | None = None) -> list[dict]:
    q, args = "SELECT * FROM feedback", ()
    if task:
        q, args = q + " WHERE task = ?", (task,)
    return [dict(r) for r in db.execute(q + " ORDER BY id", args)]


def conversation_system(db: sqlite3.Connection, conversation_id: str) -> str:
    row = db.execute("SELECT system FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return (row["system"] if row else "") or ""


def set_conversation_system(db: sqlite3.Connection, conversation_id: str, system: str) -> None:
    _save(db, lambda: db.execute("UPDATE conversations SET system = ? WHERE id = ?", (system, conversation_id)))


def rename_conversation(db: sqlite3.Connection, conversation_id: str, name: str) -> None:
    _save(db, lambda: db.execute("UPDATE conversations SET name = ? WHERE id = ?", (name, conversation_id)))


def delete_conversation(db: sqlite3.Connection, conversation_id: str) -> None:
    def write() -> None:
        db.execute("DELETE FROM responses WHERE conversation_id = ?", (conversation_id,))
        db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    _save(db, write)


def list_conversations(db: sqlite3.Connection, query: str = "", limit: int = 200) -> list[tuple[str, str]]:
    """(id, name) of recent conversations, or of those whose turns match a full-text `query`."""
    if query.strip():
        rows = db.execute(
            "SELECT DISTINCT c.id, c.name, c.updated FROM responses_fts f JOIN responses r ON r.id = f.rowid"
            " JOIN conversations c ON c.id = r.conversation_id WHERE responses_fts MATCH ? ORDER BY c.updated DESC LIMIT ?",
            (fts_query(query), limit))
    else:
        rows = db.execute("SELECT id, name FROM conversations ORDER BY updated DESC LIMIT ?", (limit,))
    return [(r["id"], r["name"]) for r in rows]
