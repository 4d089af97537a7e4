"""Opening the project's SQLite files (history, index) so that concurrent processes queue instead of failing.

SQLite's busy timeout does not cover two cases that two fresh processes meet at once: switching a new
file to WAL, and a statement that read the schema before another process wrote it (SQLITE_BUSY on a
lock upgrade, returned at once). `retrying` repeats such a step until the timeout.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

TIMEOUT = 30.0  # seconds a writer waits for another before giving up

T = TypeVar("T")


def retrying(step: Callable[[], T], timeout: float = TIMEOUT) -> T:
    """`step()`, repeated while SQLite says the database is locked or busy, for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return step()
        except sqlite3.OperationalError as e:
            locked = "database is locked" in str(e) or "busy" in str(e)  # SQLITE_BUSY: another connection writes
            if not locked or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.08)  # jittered: two waiters don't retry in step


def open_wal(path: Path, factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    """A connection to `path` in WAL mode (readers never block the writer), rows as sqlite3.Row."""
    db = sqlite3.connect(path, timeout=TIMEOUT, check_same_thread=False, factory=factory)
    db.row_factory = sqlite3.Row
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # WAL persists in the file: set once
        mode = retrying(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        if mode != "wal":  # e.g. a file system without shared memory: still correct, readers then block writers
            print(f"warning: {path}: SQLite kept journal mode {mode!r}, not WAL", file=sys.stderr)
    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a kill -9 loses no committed write, only power loss might
    return db
