"""The retrieval index: SQLite (FTS5 for words, float32 vectors as blobs) in the data dir.

    idx = Index.open()
    stats = idx.add(["~/Mail/INBOX", "notes/"], collection="default")   # incremental, resumable
    hits = idx.search("refund for a damaged item", "default", k=10)        # hybrid by default

Every file is committed in one transaction with its chunks and vectors, so a kill at any
moment leaves each file either fully indexed or not at all: run again and it resumes. An
unchanged file (same size and mtime, or same content hash) is skipped without embedding.
Each collection records its embedding model; a mismatch is an error, never mixed vectors.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np

from assistant import AssistantError, paths
from assistant.sqlite import open_wal, retrying
from assistant.documents import DocError, chunk_text, files_under, read_file

try:
    import fcntl
except ImportError:  # Windows: no flock; the UNIQUE index and per-file transactions still keep chunks single
    fcntl = None

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, model_id TEXT, dim INTEGER, created REAL);
CREATE TABLE IF NOT EXISTS roots (collection TEXT, path TEXT, PRIMARY KEY (collection, path));
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, collection TEXT, path TEXT, sha256 TEXT, size INTEGER,
                                  mtime REAL, error TEXT, indexed REAL, UNIQUE (collection, path));
CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, collection TEXT, file_id INTEGER, path TEXT, title TEXT,
                                   message_id TEXT, thread_id TEXT, ord INTEGER, text TEXT, vector BLOB);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_collection ON chunks(collection);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(title, text, content='chunks', content_rowid='id',
                                                         tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); END;
"""
# Schema changes after SCHEMA, in order; PRAGMA user_version counts those applied.
MIGRATIONS = [
    # seq numbers a file's chunks, so (file_id, seq) is unique and a file cannot hold its chunks twice.
    # Two concurrent `index add` runs used to store every chunk twice: drop those copies first.
    """
    ALTER TABLE chunks ADD COLUMN seq INTEGER;
    DELETE FROM chunks WHERE id NOT IN (SELECT MIN(id) FROM chunks GROUP BY file_id, path, ord, text);
    DELETE FROM chunks WHERE file_id NOT IN (SELECT id FROM files);
    UPDATE chunks SET seq = (SELECT COUNT(*) FROM chunks c WHERE c.file_id = chunks.file_id AND c.id < chunks.id);
    CREATE UNIQUE INDEX chunks_seq ON chunks(file_id, seq);
    """,
]
CANDIDATES = 100
MAX_QUERY_TERMS = 200  # a query's distinct words that reach BM25: a pasted page stays a fast, valid query
EMBED_BATCH = 256  # chunks embedded together across files (sorted by length inside: less padding)


@dataclass
class Hit:
    path: str
    chunk: int
    score: float
    snippet: str
    text: str
    title: str = ""
    message_id: str | None = None
    thread_id: str | None = None

    def to_json(self) -> dict:
        return {"path": self.path, "message_id": self.message_id, "chunk": self.chunk, "score": round(self.score, 4),
                "snippet": self.snippet, "title": self.title}


@dataclass
class AddStats:
    files_seen: int = 0
    files_indexed: int = 0
    files_skipped: int = 0
    chunks: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the MIGRATIONS this database lacks, each with its version bump in one write transaction."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
        return
    with _writing(db):
        done = db.execute("PRAGMA user_version").fetchone()[0]  # again under the lock: another process may have run them
        for n, script in enumerate(MIGRATIONS[done:], done + 1):
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {n}")


@contextlib.contextmanager
def _writing(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes SQLite's write lock first (BEGIN IMMEDIATE, waiting up to the busy
    timeout), so two writers queue instead of one failing halfway; committed at the end or rolled back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.commit()


@contextlib.contextmanager
def collection_lock(db_file: Path, collection: str) -> Iterator[None]:
    """Hold the collection's lock file (flock) for a whole `add`: a second writer says so and waits.

    Without it two runs both found a file new and both stored its chunks. The kernel drops the lock
    when its process dies, so a killed run never leaves a collection locked.
    """
    if fcntl is None:
        yield
        return
    folder = db_file.with_name(db_file.name + ".locks")
    name = hashlib.sha256(collection.encode("utf-8", "surrogatepass")).hexdigest()[:16]  # any name is a safe file name
    try:
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise paths.write_error(folder, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another index run on collection {collection}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# Hybrid search, as measured on the mail and FAQ dev sets (bench/retrieval.py):
# - short keyword queries (a subject line) are lexical at heart, long questions semantic, so the
#   dense weight grows with the query's length, from 0.4 at 5 words to 0.9 at 12 words;
# - queries of up to 8 words also match adjacent word pairs as phrases (mail MRR +0.03 lexical);
# - scores are z-normalized per list, and every lexical candidate gets its real dense score.
# One constant weight could not serve both sets: mail wanted 0.3, FAQ 1.0.
PHRASE_MAX_WORDS = 8
ALPHA_RANGE = ((5, 0.4), (12, 0.9))


def _unreadable_input(p: Path) -> str | None:
    """Why an input named on the command line cannot be indexed (never opening a FIFO or a device), or None."""
    import errno
    import stat

    try:
        mode = os.stat(p).st_mode
    except OSError as e:
        return "symlink loop" if e.errno == errno.ELOOP else "no such file or folder" if e.errno == errno.ENOENT \
            else f"cannot read: {e.strerror}"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a file or folder (a FIFO, socket or device): skipped"
    return None


def _read(f: Path, row: dict | None) -> dict:
    """One file: unchanged ("same"), unreadable ("error") or its chunks ("new").

    `row` is the file's entry in the index, if it has one (looked up in bulk by the caller).
    """
    try:
        st = f.stat()
    except OSError as e:
        return {"kind": "error", "path": str(f), "error": e.strerror or str(e)}
    if row and row["size"] == st.st_size and row["mtime"] == st.st_mtime:
        return {"kind": "same", "path": str(f)}
    try:
        digest = _sha256(f)
    except OSError as e:
        return {"kind": "error", "path": str(f), "error": e.strerror or str(e)}
    if row and row["sha256"] == digest:
        return {"kind": "same", "path": str(f), "touch": True, "stat": st, "row": row}
    chunks, errors = [], []
    for doc in read_file(f):
        if isinstance(doc, DocError):
            errors.append(doc.error)
            continue
        for i, text in enumerate(chunk_text(doc.text)):
            chunks.append((doc, i, text))
    return {"kind": "new", "path": f, "stat": st, "row": row, "digest": digest, "chunks": chunks, "errors": errors}


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def fts_query(text: str, phrases: bool = False) -> str:
    """Any text → a valid FTS5 query: its words (letters, digits, _: never a quote, operator or NUL), quoted, ORed."""
    words = words_of(text)
    terms = [f'"{w}"' for w in dict.fromkeys(words)]
    if phrases:
        terms += [f'"{a} {b}"' for a, b in dict.fromkeys(zip(words, words[1:]))]
    return " OR ".join(terms[:MAX_QUERY_TERMS]) or '""'


def query_alpha(query: str) -> float:
    """The dense score's weight for this query: more words, more semantic."""
    (n0, lo), (n1, hi) = ALPHA_RANGE
    t = min(1.0, max(0.0, (len(words_of(query)) - n0) / (n1 - n0)))
    return lo + (hi - lo) * t


class _Vectors(NamedTuple):
    """A collection's vectors as cached between queries, with what says whether they are current."""

    stamp: tuple  # (PRAGMA data_version, connection total_changes)
    version: tuple  # (chunk count, last chunk id)
    ids: np.ndarray
    matrix: object  # torch tensor, bf16 or float32


class Index:
    def __init__(self, db: sqlite3.Connection, embedder=None) -> None:
        self.db = db
        self._embedder = embedder
        self._matrix: dict[str, _Vectors] = {}

    @classmethod
    def open(cls, path: Path | None = None, embedder=None) -> "Index":
        path = Path(path or paths.data_dir() / "index.db")
        try:
            db = open_wal(path)
            retrying(lambda: db.executescript(SCHEMA))  # a fresh file: another process may be creating it too
            retrying(lambda: _migrate(db))
        except sqlite3.DatabaseError as e:
            raise paths.write_error(path, e) from None
        return cls(db, embedder)

    @property
    def embedder(self):
        if self._embedder is None:
            from assistant.embed import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def _load_embedder_in_background(self) -> None:
        def load():
            try:
                self.embedder
            except Exception:  # raised again, with its message, where the embedder is first used
                pass

        threading.Thread(target=load, daemon=True).start()

    # collections
    @property
    def model_id(self) -> str:
        from assistant.embed import default_model_id

        return self._embedder.model_id if self._embedder is not None else default_model_id()

    def ensure_collection(self, name: str) -> None:
        model_id = self.model_id
        row = self.db.execute("SELECT model_id FROM collections WHERE name = ?", (name,)).fetchone()
        if not row:  # insert-or-keep, then read: two runs creating one collection both succeed
            with _writing(self.db):
                self.db.execute("INSERT OR IGNORE INTO collections VALUES (?, ?, ?, ?)", (name, model_id, 384, time.time()))
            row = self.db.execute("SELECT model_id FROM collections WHERE name = ?", (name,)).fetchone()
        if row["model_id"] != model_id:
            raise AssistantError(f"collection {name!r} was built with {row['model_id']}, not {model_id}: "
                                 f"remove it (`assistant index remove {name}`) and index again")

    def collections(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT c.name, c.model_id, (SELECT COUNT(*) FROM files f WHERE f.collection = c.name AND f.error IS NULL) AS files,"
            " (SELECT COUNT(*) FROM chunks k WHERE k.collection = c.name) AS chunks FROM collections c ORDER BY c.name")
        return [dict(r) for r in rows]

    def remove(self, name: str) -> None:
        with self._lock(name), _writing(self.db):
            self.db.execute("DELETE FROM chunks WHERE collection = ?", (name,))
            for table in ("files", "roots"):
                self.db.execute(f"DELETE FROM {table} WHERE collection = ?", (name,))
            self.db.execute("DELETE FROM collections WHERE name = ?", (name,))
        self._matrix.pop(name, None)

    def _file(self) -> Path | None:
        """The database file; None for an in-memory index."""
        main = next((r[2] for r in self.db.execute("PRAGMA database_list") if r[1] == "main"), "")
        return Path(main) if main else None

    def _lock(self, collection: str):
        """One writer per collection across processes (see `collection_lock`)."""
        f = self._file()
        return collection_lock(f, collection) if f else contextlib.nullcontext()

    # indexing
    def add(self, inputs: list[str | Path], collection: str = "default",
            progress: Callable[[AddStats, int], None] | None = None) -> AddStats:
        """Index files and folders; unchanged files are skipped, changed ones re-indexed alone.

        A second run on the same collection waits for the first, then skips what it indexed.
        The embedder loads on a thread from the first changed file on, while the next ones are read.
        Files are read on this thread: reading them on another one while torch computes ran 10-25%
        slower on 2 cores (torch's threads wait for the one the reader takes).
        """
        with self._lock(collection):
            try:
                return self._add(inputs, collection, progress)
            except sqlite3.OperationalError as e:
                raise paths.write_error(self._file() or Path(":memory:"), e) from None

    def _add(self, inputs: list[str | Path], collection: str, progress) -> AddStats:
        self.ensure_collection(collection)
        stats, t0 = AddStats(), time.time()
        files = []
        for x in inputs:
            # the path as the user gave it, made absolute: search shows that, not where its symlinks lead
            p = Path(os.path.abspath(Path(x).expanduser()))
            why = _unreadable_input(p)
            if why:
                stats.errors.append((str(p), why))
                continue
            with _writing(self.db):
                self.db.execute("INSERT OR IGNORE INTO roots VALUES (?, ?)", (collection, str(p)))
            files += list(files_under(p))
        files = list(dict.fromkeys(files))  # a file under two of the inputs is read once
        known = {r["path"]: dict(r) for r in self.db.execute(
            "SELECT id, path, sha256, size, mtime FROM files WHERE collection = ?", (collection,))}
        total, pending = len(files), []
        for f in files:
            item = _read(f, known.get(str(f)))
            stats.files_seen += 1
            if item["kind"] == "error":
                stats.errors.append((item["path"], item["error"]))
            elif item["kind"] == "same":
                stats.files_skipped += 1
                if item.get("touch"):  # same content, new mtime: remember it so the next run skips by stat
                    with _writing(self.db):
                        self.db.execute("UPDATE files SET size = ?, mtime = ? WHERE id = ?",
                                        (item["stat"].st_size, item["stat"].st_mtime, item["row"]["id"]))
            else:
                if not pending and self._embedder is None:
                    self._load_embedder_in_background()
                pending.append(item)
            # embed many small files together (a batch of one chunk wastes most of the CPU), then commit each file
            if pending and (sum(len(x["chunks"]) for x in pending) >= EMBED_BATCH or stats.files_seen == total):
                self._commit(pending, collection, stats)
                pending = []
            if progress:
                progress(stats, total)
        if pending:
            self._commit(pending, collection, stats)
        stats.seconds = time.time() - t0
        return stats

    def _commit(self, pending: list[dict], collection: str, stats: AddStats) -> None:
        # what a chunk is found by: its page's title and front-matter terms, then its own words
        texts = ["\n".join(filter(None, (d.title, d.terms, t))) for x in pending for d, _, t in x["chunks"]]
        vectors = iter(self.embedder.encode_documents(texts)) if texts else iter(())
        for x in pending:
            chunks, errors, st = x["chunks"], x["errors"], x["stat"]
            vecs = [next(vectors) for _ in chunks]
            error = None if chunks else (errors[0] if errors else "no text found")
            with _writing(self.db):  # one transaction per file: the file and all its chunks, or nothing
                cur = self.db.execute(
                    "INSERT INTO files (collection, path, sha256, size, mtime, error, indexed) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (collection, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
                    " mtime = excluded.mtime, error = excluded.error, indexed = excluded.indexed RETURNING id",
                    (collection, str(x["path"]), x["digest"], st.st_size, st.st_mtime, error, time.time()))
                file_id = cur.fetchone()[0]
                # the file's old chunks, whoever wrote them: its chunks replace them, never add to them
                self.db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
                self.db.executemany(
                    "INSERT INTO chunks (collection, file_id, path, title, message_id, thread_id, ord, text, vector, seq)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(collection, file_id, d.path, d.title, d.message_id, d.thread_id, i, t, v.tobytes(), seq)
                     for seq, ((d, i, t), v) in enumerate(zip(chunks, vecs))])
            if error:
                stats.errors.append((str(x["path"]), error))
            else:
                stats.files_indexed += 1
                stats.chunks += len(chunks)
                stats.errors += [(str(x["path"]), e) for e in errors]

    def sync(self, collection: str = "default") -> int:
        """Drop files that no longer exist; returns how many were dropped."""
        with self._lock(collection):
            gone = [r for r in self.db.execute("SELECT id, path FROM files WHERE collection = ?", (collection,))
                    if not Path(r["path"]).exists()]
            with _writing(self.db):
                for r in gone:
                    self.db.execute("DELETE FROM chunks WHERE file_id = ?", (r["id"],))
                    self.db.execute("DELETE FROM files WHERE id = ?", (r["id"],))
        return len(gone)

    def roots(self, collection: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM roots WHERE collection = ?", (collection,))]

    # search
    def _vectors(self, collection: str):
        """(sorted chunk ids, vector matrix) of a collection, cached between queries.

        The matrix is a torch tensor, bfloat16 where the CPU has native bf16 (100k chunks: 2.1 ms a
        query against 5.6 ms for numpy float32, half the memory, top-50 overlap 49/50), else float32.
        Freshness is checked with SQLite's data_version and this connection's change count, which cost
        nothing; only when either moved is the collection's row count, last id and last indexing time read again.
        """
        import torch

        from assistant.embed import native_bf16

        stamp = (self.db.execute("PRAGMA data_version").fetchone()[0], self.db.total_changes)
        cached = self._matrix.get(collection)
        if cached and cached.stamp == stamp:
            return cached.ids, cached.matrix
        # and when the files were last indexed: a page edited and indexed again can get back its chunks' ids
        version = tuple(self.db.execute(
            "SELECT COUNT(*), COALESCE(MAX(id), 0), (SELECT MAX(indexed) FROM files WHERE collection = ?1)"
            " FROM chunks WHERE collection = ?1", (collection,)).fetchone())
        if cached and cached.version == version:
            self._matrix[collection] = cached._replace(stamp=stamp)
            return cached.ids, cached.matrix
        rows = self.db.execute("SELECT id, vector FROM chunks WHERE collection = ? ORDER BY id", (collection,)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        mat = torch.frombuffer(bytearray(b"".join(r[1] for r in rows)), dtype=torch.float32).reshape(len(rows), -1) \
            if rows else torch.zeros((0, 384))
        if native_bf16():
            mat = mat.to(torch.bfloat16)
        self._matrix[collection] = _Vectors(stamp, version, ids, mat)
        return ids, mat

    def lexical(self, query: str, collection: str, n: int, phrases: bool = False) -> dict[int, float]:
        rows = self.db.execute(
            "SELECT c.id, bm25(chunks_fts, 2.0, 1.0) AS s FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid"
            " WHERE chunks_fts MATCH ? AND c.collection = ? ORDER BY s LIMIT ?",
            (fts_query(query, phrases), collection, n))
        return {r[0]: -r[1] for r in rows}

    def hybrid(self, query: str, collection: str, n: int = CANDIDATES) -> dict[int, float]:
        """Fused scores over the union of the lexical and dense candidates (see the notes at the top)."""
        lex = self.lexical(query, collection, n, phrases=len(words_of(query)) <= PHRASE_MAX_WORDS)
        dense = self.dense(query, collection, n, also=lex.keys())
        return fuse(lex, dense, query_alpha(query))

    def query_embedder(self, collection: str):
        """The embedder the collection was built with: queries always match its vectors. Without one loaded
        here (a command that only searches), its numpy query encoder (embed.QueryEncoder)."""
        from assistant.embed import get_query_encoder

        row = self.db.execute("SELECT model_id FROM collections WHERE name = ?", (collection,)).fetchone()
        if self._embedder is not None and (row is None or row["model_id"] == self._embedder.model_id):
            return self._embedder
        return get_query_encoder(row["model_id"] if row else None)

    def dense(self, query: str, collection: str, n: int, also=()) -> dict[int, float]:
        """The top `n` chunks by cosine, plus the cosine of every chunk id in `also`."""
        ids, mat = self._vectors(collection)
        if not len(ids):
            return {}
        import torch

        q = torch.from_numpy(self.query_embedder(collection).encode_query(query)).to(mat.dtype)
        scores = (mat @ q).float().numpy()
        top = np.argpartition(-scores, min(n, len(scores) - 1))[:n]
        out = {int(ids[i]): float(scores[i]) for i in top}
        if also:
            rows = np.searchsorted(ids, np.fromiter(also, dtype=np.int64))  # ids are sorted
            out.update({int(ids[r]): float(scores[r]) for r in rows if r < len(ids)})
        return out

    def search(self, query: str, collection: str = "default", k: int = 10, mode: str = "hybrid") -> list[Hit]:
        if not self.db.execute("SELECT 1 FROM collections WHERE name = ?", (collection,)).fetchone():
            raise AssistantError(f"no collection named {collection!r}; see `assistant index list`")
        if mode == "lexical":
            scores = self.lexical(query, collection, k)
        elif mode == "dense":
            scores = self.dense(query, collection, k)
        else:
            scores = self.hybrid(query, collection)
        best = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
        return self._hits(best, query)

    def passages(self, query: str, collection: str = "default", k: int = 4) -> list[Hit]:
        """The top `k` passages for a grounded answer: one per source (see `by_source`)."""
        return by_source(self.search(query, collection, k * SEARCH_DEPTH), k)

    def _hits(self, best: list[tuple[int, float]], query: str) -> list[Hit]:
        if not best:
            return []
        rows = {r["id"]: r for r in self.db.execute(
            f"SELECT * FROM chunks WHERE id IN ({','.join('?' * len(best))})", [i for i, _ in best])}
        return [Hit(rows[i]["path"], rows[i]["ord"], s, snippet(rows[i]["text"], query), rows[i]["text"],
                    rows[i]["title"] or "", rows[i]["message_id"], rows[i]["thread_id"]) for i, s in best]


SEARCH_DEPTH = 3  # chunks searched per passage wanted: several may come from one source


def by_source(hits: list[Hit], k: int) -> list[Hit]:
    """Hits as passages to number and cite: the chunks of one source (a file or message) become one passage,
    its best chunk first, and a passage whose text another already holds (the same page in two places) is
    dropped, so that no two numbers point at the same page. The first `k`, in the order of their best chunk."""
    groups: dict[tuple, list[Hit]] = {}
    for h in hits:
        groups.setdefault((h.path, h.message_id), []).append(h)
    out, seen = [], set()
    for chunks in groups.values():
        text = "\n…\n".join(h.text.strip() for h in chunks)
        key = " ".join(re.findall(r"\w+", text.lower()))
        if key in seen:
            continue
        seen.add(key)
        out.append(replace(chunks[0], text=text))
        if len(out) == k:
            break
    return out


def fuse(lex: dict[int, float], dense: dict[int, float], alpha: float) -> dict[int, float]:
    """alpha * z(dense) + (1 - alpha) * z(lexical); a chunk the lexical list lacks gets its minimum."""

    def z(d: dict[int, float]) -> tuple[dict[int, float], float]:
        """z-scores, and the score of a chunk the list lacks (its minimum; below every hit when all tie)."""
        if not d:
            return {}, 0.0
        v = np.fromiter(d.values(), dtype=np.float64)
        mu, sd = v.mean(), v.std()
        if sd == 0:  # one hit, or hits that tie: they still beat what did not match
            return {i: 1.0 for i in d}, 0.0
        out = {i: (s - mu) / sd for i, s in d.items()}
        return out, min(out.values())

    (nl, floor_l), (nd, floor_d) = z(lex), z(dense)
    return {i: alpha * nd.get(i, floor_d) + (1 - alpha) * nl.get(i, floor_l) for i in set(nl) | set(nd)}


def snippet(text: str, query: str, width: int = 200) -> str:
    words = set(re.findall(r"\w+", query.lower()))
    flat = " ".join(text.split())
    pos = min((flat.lower().find(w) for w in words if len(w) > 3 and w in flat.lower()), default=0)
    start = max(0, pos - width // 3)
    return ("…" if start else "") + flat[start : start + width] + ("…" if start + width < len(flat) else "")
