"""Concurrent `assistant index add` runs, as real processes with the real embedder, on one index.db.

Two runs on one collection used to store every chunk twice (180 chunks for 90) and a re-run kept
them; 45 runs creating 15 collections crashed two with sqlite3.IntegrityError.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assistant import paths
from assistant.index import MIGRATIONS, SCHEMA, Index, collection_lock

FILES = 8  # one chunk each
ASSISTANT = [sys.executable, "-c", "from assistant.cli import main; main()"]


def docs_folder(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        (dest / f"note{i}.txt").write_text(f"Note {i}: the parcel for order {1000 + i} leaves the depot on day {i}.\n")
    return dest


def start_add(docs: Path, collection: str) -> subprocess.Popen:
    cmd = [*ASSISTANT, "index", "add", str(docs), "--collection", collection, "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each process, once all have ended."""
    outputs = [p.communicate(timeout=600) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def chunk_counts() -> dict[str, int]:
    db = sqlite3.connect(paths.data_dir() / "index.db")
    return dict(db.execute("SELECT collection, COUNT(*) FROM chunks GROUP BY collection").fetchall())


def test_two_concurrent_adds_store_each_chunk_once(tmp_path):
    docs = docs_folder(tmp_path / "docs")
    results = finish([start_add(docs, "c"), start_add(docs, "c")])
    assert all(code == 0 for code, _, _ in results), results
    assert sum(json.loads(out)["indexed"] for _, out, _ in results) == FILES  # the second run skipped them all
    assert chunk_counts() == {"c": FILES}


@pytest.mark.slow  # six processes load torch at once: about a minute on 2 cores
def test_concurrent_adds_over_three_collections_create_each_once(tmp_path):
    docs = docs_folder(tmp_path / "docs")
    results = finish([start_add(docs, c) for c in ("a", "b", "c") * 2])  # on a fresh index: schema races too
    assert [code for code, _, _ in results] == [0] * 6, [err[-300:] for _, _, err in results]
    assert not any("Traceback" in err for _, _, err in results)
    assert chunk_counts() == {"a": FILES, "b": FILES, "c": FILES}


def test_a_second_writer_says_it_waits_then_skips_what_the_first_indexed(tmp_path):
    docs = docs_folder(tmp_path / "docs")
    db_file = paths.data_dir() / "index.db"
    Index.open(db_file)
    with collection_lock(db_file, "c"):
        proc = start_add(docs, "c")
        said = ""
        while "waiting" not in said and (line := proc.stderr.readline()):  # ends at EOF if it did not wait
            said += line
        assert "waiting for another index run on collection c" in said
        time.sleep(1)
        assert proc.poll() is None  # and it does wait
    code, out, err = finish([proc])[0]
    assert code == 0, said + err
    assert json.loads(out)["indexed"] == FILES and chunk_counts() == {"c": FILES}


def test_opening_an_index_with_duplicate_chunks_repairs_it(tmp_path):
    """An index the old code wrote twice into: opening it keeps one copy of each chunk, and the new
    UNIQUE (file_id, seq) index makes another copy impossible."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)  # the schema before any migration
    db.execute("INSERT INTO files (collection, path) VALUES ('c', '/a.md')")
    vector = np.zeros(384, np.float32).tobytes()
    rows = [("c", 1, "/a.md", i, f"chunk {i}", vector) for i in range(3)]
    db.executemany("INSERT INTO chunks (collection, file_id, path, ord, text, vector) VALUES (?, ?, ?, ?, ?, ?)", rows * 2)
    db.commit()
    db.close()
    idx = Index.open(path)
    assert idx.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [tuple(r) for r in idx.db.execute("SELECT ord, seq FROM chunks ORDER BY id")] == [(0, 0), (1, 1), (2, 2)]
    assert len(idx.db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'chunk'").fetchall()) == 3
    with pytest.raises(sqlite3.IntegrityError), idx.db:
        idx.db.execute("INSERT INTO chunks (collection, file_id, path, ord, text, vector, seq) "
                       "VALUES ('c', 1, '/a.md', 0, 'chunk 0', ?, 0)", (vector,))


OPEN_BOTH = "import sys; from assistant.index import Index; from assistant.services import store; Index.open(sys.argv[1]); store.connect(sys.argv[2])"


def test_processes_opening_fresh_databases_at_once_all_succeed(tmp_path):
    """Six processes create one index and one history at once, five times over. Switching a new file to
    WAL and creating its schema fail at once with "database is locked" (the busy timeout does not
    cover them): that failed 5 runs in 60 before they were retried."""
    for trial in range(5):
        folder = tmp_path / str(trial)
        folder.mkdir()
        cmd = [sys.executable, "-c", OPEN_BOTH, str(folder / "index.db"), str(folder / "history.db")]
        results = finish([subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)])
        assert [code for code, _, _ in results] == [0] * 6, [err.strip()[-200:] for _, _, err in results]


def test_retrying_repeats_only_a_locked_database_and_gives_up_at_its_deadline():
    from assistant.sqlite import retrying

    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert retrying(locked_twice, timeout=5) == "done" and len(calls) == 3
    calls.clear()

    def broken():
        calls.append(1)
        raise sqlite3.OperationalError("no such table: chunks")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retrying(broken, timeout=5)
    assert len(calls) == 1  # a real error at once, not retried

    def always_locked():
        raise sqlite3.OperationalError("database is locked")

    t0 = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retrying(always_locked, timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < 2
