"""The retrieval index with the real MiniLM embedder and real SQLite."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assistant import AssistantError
from assistant.documents import chunk_text
from assistant.index import Index


def faq_folder(shared, dest: Path, n=None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for i, line in enumerate(open(shared / "stackfaq-retrieval" / "corpus.jsonl")):
        if n is not None and i >= n:
            break
        d = json.loads(line)
        (dest / f"{d['doc_id']}.md").write_text(f"# {d['title']}\n\n{d['text']}\n")
    return dest


def test_chunks_follow_paragraphs_and_sizes():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(10))
    chunks = chunk_text(text)
    assert all(len(c.split()) <= 250 for c in chunks)
    assert all(c.startswith("Paragraph") for c in chunks)
    assert "".join(chunks).count("Paragraph") == 10


def test_incremental_sync_and_errors(tmp_path, shared):
    docs = faq_folder(shared, tmp_path / "docs", n=12)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    idx = Index.open(tmp_path / "i.db")
    first = idx.add([docs], "faq")
    assert first.files_indexed == 12 and any("broken.pdf" in p for p, _ in first.errors)
    again = idx.add([docs], "faq")
    assert again.files_indexed == 0 and again.files_skipped == 13
    (docs / "t000.md").write_text("# Strikethrough\n\nUse two tildes on each side.")
    (docs / "t001.md").unlink()
    changed = idx.add([docs], "faq")
    assert changed.files_indexed == 1
    assert idx.sync("faq") == 1
    paths = {r[0] for r in idx.db.execute("SELECT DISTINCT path FROM chunks")}
    assert str((docs / "t001.md").resolve()) not in paths
    hit = idx.search("strike through text with tildes", "faq", k=3)[0]
    assert hit.path.endswith("t000.md") and hit.snippet



def test_touched_and_doubly_listed_files_are_indexed_once(tmp_path, shared):
    docs = faq_folder(shared, tmp_path / "docs", n=3)
    idx = Index.open(tmp_path / "i.db")
    one = docs / "t000.md"
    first = idx.add([docs, one], "faq")  # the file is under both inputs
    assert first.files_indexed == 3
    per_file = idx.db.execute("SELECT path, COUNT(*), COUNT(DISTINCT ord) FROM chunks GROUP BY path").fetchall()
    assert len(per_file) == 3 and all(n == distinct for _, n, distinct in per_file)
    later = time.time() + 100
    os.utime(one, (later, later))  # same content, new mtime: skipped, and remembered
    again = idx.add([docs], "faq")
    assert (again.files_indexed, again.files_skipped) == (0, 3)
    assert idx.db.execute("SELECT mtime FROM files WHERE path = ?", (str(one.resolve()),)).fetchone()[0] == later

def test_mail_is_indexed_per_message_with_ids(tmp_path, shared):
    idx = Index.open(tmp_path / "i.db")
    idx.add([shared / "maildir-notmuch" / "default" / "cur"], "mail")
    rows = idx.db.execute("SELECT message_id, thread_id, title FROM chunks").fetchall()
    assert rows and all(r[0] and r[1] for r in rows)
    hits = idx.search("notmuch", "mail", k=3)
    assert all(h.message_id for h in hits)


def test_model_mismatch_is_refused(tmp_path):
    idx = Index.open(tmp_path / "i.db")
    with idx.db:
        idx.db.execute("INSERT INTO collections VALUES ('old', 'some-other-model', 768, 0)")
    with pytest.raises(AssistantError, match="some-other-model"):
        idx.ensure_collection("old")


@pytest.mark.slow
def test_kill_during_index_then_rerun_matches_uninterrupted(tmp_path, shared):
    docs = faq_folder(shared, tmp_path / "docs")
    env_a = {**os.environ, "ASSISTANT_HOME": str(tmp_path / "a")}
    env_b = {**os.environ, "ASSISTANT_HOME": str(tmp_path / "b")}
    cmd = [sys.executable, "-c", "from assistant.cli import main; main()", "index", "add", str(docs), "--json"]
    subprocess.run(cmd, env=env_a, check=True, capture_output=True)
    proc = subprocess.Popen(cmd, env=env_b, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_b = tmp_path / "b" / "data" / "index.db"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if db_b.exists() and sqlite3.connect(db_b).execute("SELECT COUNT(*) FROM files").fetchone()[0] >= 20:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = sqlite3.connect(db_b).execute("SELECT COUNT(*) FROM files").fetchone()[0]
    assert 20 <= partial < 125
    subprocess.run(cmd, env=env_b, check=True, capture_output=True)

    def content(home):
        db = sqlite3.connect(tmp_path / home / "data" / "index.db")
        return sorted(db.execute("SELECT path, ord, text FROM chunks").fetchall())

    assert content("a") == content("b")
    queries = [json.loads(l)["text"] for l in list(open(shared / "stackfaq-retrieval" / "queries.jsonl"))[:10]]
    ia, ib = Index.open(tmp_path / "a" / "data" / "index.db"), Index.open(tmp_path / "b" / "data" / "index.db")
    for q in queries:
        assert [h.path for h in ia.search(q)] == [h.path for h in ib.search(q)]


def test_fusion_weighs_dense_more_for_longer_queries():
    from assistant.index import fts_query, fuse, query_alpha

    assert query_alpha("nymex margins") == 0.4
    assert query_alpha("how do I get a refund for an order that arrived damaged and late") == 0.9
    assert 0.4 < query_alpha("meeting about the gas contract renewal next week") < 0.9
    assert fts_query("gas contract renewal", phrases=True).count('"') == 10  # 3 words + 2 pairs
    # chunk 1 leads lexically, chunk 2 semantically: a short query keeps 1 first, a long one puts 2 first
    lex, dense = {1: 9.0, 2: 3.0, 3: 2.0}, {1: 0.30, 2: 0.80, 3: 0.25}
    short, long = fuse(lex, dense, query_alpha("gas")), fuse(lex, dense, query_alpha("a " * 20))
    assert max(short, key=short.get) == 1 and max(long, key=long.get) == 2
    assert set(fuse({}, dense, 0.5)) == {1, 2, 3}  # no lexical hit: dense alone still ranks


def test_fusion_keeps_a_lone_keyword_hit():
    from assistant.index import fuse

    # the only lexical hit must beat chunks that matched nothing but sit equally high on dense
    fused = fuse({7: 3.2}, {7: 0.5, 8: 0.5, 9: 0.1}, 0.4)
    assert fused[7] > fused[8] > fused[9]


def test_cached_vectors_follow_writes_from_this_and_other_connections(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("Our refund policy: refunds within 30 days of delivery.")
    idx = Index.open(tmp_path / "i.db")
    idx.add([tmp_path / "docs"], "kb")
    assert [h.path for h in idx.search("refund policy", "kb", k=5, mode="dense")] == [str((tmp_path / "docs" / "a.md").resolve())]
    (tmp_path / "docs" / "b.md").write_text("Password reset: use the link on the sign-in page.")
    idx.add([tmp_path / "docs"], "kb")  # a write on this connection
    assert any(h.path.endswith("b.md") for h in idx.search("reset my password", "kb", k=5, mode="dense"))
    other = Index.open(tmp_path / "i.db", embedder=idx.embedder)  # a write from another connection
    (tmp_path / "docs" / "c.md").write_text("Shipping to Norway takes five working days.")
    other.add([tmp_path / "docs"], "kb")
    assert any(h.path.endswith("c.md") for h in idx.search("delivery time to Norway", "kb", k=5, mode="dense"))
    # the last page edited: its new chunk gets back the old one's id, so the count and last id stay the same
    (tmp_path / "docs" / "c.md").write_text("Gift cards never expire and work in every shop.")
    other.add([tmp_path / "docs"], "kb")
    assert [h.path for h in idx.search("do gift cards expire", "kb", k=1, mode="dense")][0].endswith("c.md")


def test_query_vector_is_the_one_a_document_of_the_same_text_gets():
    from assistant.embed import get_embedder

    emb = get_embedder()
    assert emb._plain_mean  # else the short path is not exercised at all
    long = "refund " * 400  # past the 128-token limit: both truncate the same way
    for q in ["reset password", "Why was I charged twice for the Pro plan upgrade last month?", "ünïcode ✓ naïve", long]:
        ref = emb.encode_documents([q])[0]  # sentence-transformers' own encode, as documents are embedded
        got = emb.encode_query(q)
        assert got.dtype == np.float32 and got.shape == (384,)
        assert float(np.dot(ref, got)) > 0.9999 and abs(float(np.linalg.norm(got)) - 1) < 1e-5


def test_a_search_only_process_gets_the_same_query_vectors_without_sentence_transformers(tmp_path):
    """A fresh process that only searches embeds its queries in numpy (embed.QueryEncoder): it never imports
    sentence-transformers, and finds what the full embedder finds, with vectors equal up to rounding."""
    import subprocess
    import sys

    from assistant.embed import QueryEncoder, get_embedder

    emb, numpy_only = get_embedder(), QueryEncoder()
    for q in ["reset password", "Why was I charged twice for the Pro plan upgrade last month?", "ünïcode ✓ naïve", "refund " * 400]:
        got = numpy_only.encode_query(q)
        assert got.dtype == np.float32 and got.shape == (384,)
        assert float(np.dot(emb.encode_query(q), got)) > 0.9999 and abs(float(np.linalg.norm(got)) - 1) < 1e-5

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("To reset your password, open Settings and choose Security.")
    (docs / "b.md").write_text("Parcels to Norway take five working days to arrive.")
    Index.open(tmp_path / "i.db", embedder=emb).add([docs], "kb")
    code = ("import sys; from assistant.index import Index; idx = Index.open(sys.argv[1]); "
            "hits = idx.search('how long is delivery to Norway', 'kb', k=1, mode='dense'); "
            "print(hits[0].path, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "i.db")], capture_output=True, text=True, check=True)
    path, imported = out.stdout.split()
    assert path.endswith("b.md") and imported == "False"


def test_demo_kb_is_indexed_on_first_use_by_name(tmp_path):
    """`--kb demo-kb` / `-C demo-kb` on a fresh install: the built-in knowledge base, not an unknown name."""
    from assistant.demo import DEMO_KB, resolve_collection

    idx = Index.open(tmp_path / "fresh.db")
    assert not idx.collections()
    assert resolve_collection(DEMO_KB, idx) == DEMO_KB
    assert idx.search("return a damaged item", DEMO_KB, 3)
    assert resolve_collection("mine", idx) == "mine"  # any other name is left as it is


def test_a_page_is_found_by_the_questions_of_its_front_matter(tmp_path):
    """The demo KB's agent manuals say "the customer wants to check up on the status of their shipment";
    a customer writes "where is my package?". Front-matter questions bridge the two, unseen in the passage."""
    kb = tmp_path / "kb"
    kb.mkdir()
    body = "# {}\n\nAsk the customer for the Account ID with [Pull up Account], then {}.\n"
    (kb / "a.md").write_text(body.format("Flow A", "enter the order ID into [Validate Purchase] and read the Oracle"))
    (kb / "b.md").write_text(body.format("Flow B", "enter the order ID into [Validate Purchase] and read the log"))
    idx = Index.open(tmp_path / "i.db")
    idx.add([kb], "kb")
    query = "where is my package? it has not arrived"
    (kb / "b.md").write_text("---\nquestions:\n  - Where is my parcel?\n  - My package never arrived\n---\n"
                             + (kb / "b.md").read_text())
    idx.add([kb], "kb")
    hits = idx.passages(query, "kb", 2)
    assert hits[0].path.endswith("b.md") and hits[0].score > idx.passages(query, "kb", 2)[1].score
    assert "questions" not in hits[0].text and "parcel" not in hits[0].text
