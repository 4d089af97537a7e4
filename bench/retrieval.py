"""Retrieval benchmark: mail search (AESLC), FAQ search (StackFAQ), indexing throughput, query latency.

    python bench/retrieval.py [--mail-docs 4000] [--skip-scale]

(a) Each AESLC dev email becomes an .eml without a Subject header, train emails are added as
distractors; the query is the dev email's first human subject line (ann0) and its own email is
the one relevant document. (b) The StackFAQ corpus as a folder of Markdown pages with its 400
dev queries. Both report recall@5 and MRR@10 for hybrid, lexical and dense in one run. (c) Indexing chunks/s on the real mail, and in-process hybrid query
latency p50/p95 at 10k and 100k chunks (synthetic text and vectors).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, report  # noqa: E402


def doc_ranking(scores: dict[int, float], chunk_path: dict[int, str]) -> list[str]:
    best: dict[str, float] = {}
    for cid, s in scores.items():
        p = chunk_path[cid]
        best[p] = max(best.get(p, -1e9), s)
    return [p for p, _ in sorted(best.items(), key=lambda kv: -kv[1])]


def measure(idx, collection: str, queries: list[tuple[str, str]]) -> dict:
    """recall@5 and MRR@10 for the three search modes, ranking documents by their best chunk."""
    from assistant.index import CANDIDATES

    chunk_path = {r[0]: r[1] for r in idx.db.execute("SELECT id, path FROM chunks WHERE collection = ?", (collection,))}
    modes = {"hybrid": lambda q: idx.hybrid(q, collection),
             "lexical": lambda q: idx.lexical(q, collection, CANDIDATES),
             "dense": lambda q: idx.dense(q, collection, CANDIDATES)}
    out = {}
    for mode, fn in modes.items():
        r5 = mrr = 0.0
        for q, rel in queries:
            ranking = doc_ranking(fn(q), chunk_path)
            r5 += rel in ranking[:5]
            mrr += next((1 / (i + 1) for i, p in enumerate(ranking[:10]) if p == rel), 0.0)
        out[mode] = {"recall@5": round(r5 / len(queries), 4), "mrr@10": round(mrr / len(queries), 4)}
    return out


def mail_set(folder: Path, n_docs: int) -> list[tuple[str, str]]:
    dev = [json.loads(l) for l in open(SHARED / "aeslc" / "dev.jsonl")]
    train = [json.loads(l) for l in open(SHARED / "aeslc" / "train.jsonl")]
    random.Random(0).shuffle(train)
    queries = []
    for i, r in enumerate(dev):
        p = folder / f"dev-{i:05d}.eml"
        p.write_text(f"From: {r['id'].split('_')[0]}@enron.example\nMessage-ID: <dev{i}@aeslc>\n\n{r['email_body']}\n")
        queries.append((r["ann0"], str(p.resolve())))
    for i, r in enumerate(train[: max(0, n_docs - len(dev))]):
        (folder / f"train-{i:05d}.eml").write_text(f"From: x@enron.example\nMessage-ID: <tr{i}@aeslc>\n\n{r['email_body']}\n")
    return queries


def faq_set(folder: Path) -> list[tuple[str, str]]:
    docs = {}
    for line in open(SHARED / "stackfaq-retrieval" / "corpus.jsonl"):
        d = json.loads(line)
        p = folder / f"{d['doc_id']}.md"
        p.write_text(f"# {d['title']}\n\n{d['text']}\n")
        docs[d["doc_id"]] = str(p.resolve())
    rel = {}
    for line in list(open(SHARED / "stackfaq-retrieval" / "qrels.tsv"))[1:]:
        q, d, _ = line.split("\t")
        rel[q] = docs[d]
    return [(json.loads(l)["text"], rel[json.loads(l)["query_id"]]) for l in open(SHARED / "stackfaq-retrieval" / "queries.jsonl")]


def latency(idx, n_chunks: int, collection: str) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20000)] + "refund order password invoice shipping account delivery".split()
    have = idx.db.execute("SELECT COUNT(*) FROM chunks WHERE collection = ?", (collection,)).fetchone()[0]
    with idx.db:
        idx.db.execute("INSERT OR IGNORE INTO collections VALUES (?, ?, 384, 0)", (collection, idx.embedder.model_id))
        batch = []
        for i in range(have, n_chunks):
            v = rng.standard_normal(384).astype(np.float32)
            v /= np.linalg.norm(v)
            text = " ".join(random.choice(words) for _ in range(150))
            batch.append((collection, 0, f"synthetic/{i}", "", None, None, 0, text, v.tobytes()))
        idx.db.executemany("INSERT INTO chunks (collection, file_id, path, title, message_id, thread_id, ord, text, vector)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    queries = ["refund for a damaged order", "reset my account password", "invoice shipping delay w12 w400"] * 10
    idx.search(queries[0], collection, 10)  # warm: loads the vector matrix once
    times = []
    for q in queries:
        t0 = time.perf_counter()
        idx.search(q, collection, 10)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mail-docs", type=int, default=4000)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--keep", type=Path, help="build the index in this folder and keep it (re-runs reuse it)")
    ap.add_argument("--embedder", default="all-MiniLM-L6-v2", help="embedding model id")
    args = ap.parse_args()
    import os

    os.environ["ASSISTANT_EMBEDDER"] = args.embedder
    from assistant.index import Index

    rows, extra = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        idx = Index.open(tmp / "bench.db")
        t0 = time.perf_counter()
        idx.embedder  # loaded once up front: indexing rates are throughput, the load is its own row
        extra["embedder_load_seconds"] = round(time.perf_counter() - t0, 2)
        rows.append({"set": "embedder", "mode": "load", "seconds": extra["embedder_load_seconds"]})
        for name, build in (("faq", faq_set), ("mail", lambda f: mail_set(f, args.mail_docs))):
            folder = tmp / name
            folder.mkdir(parents=True, exist_ok=True)
            queries = build(folder)
            stats = idx.add([folder], name)
            res = measure(idx, name, queries)
            extra[name] = {"docs": stats.files_indexed, "chunks": stats.chunks, "index_seconds": round(stats.seconds, 1),
                           "chunks_per_s": round(stats.chunks / max(stats.seconds, 1e-9), 1), "queries": len(queries)}
            for mode, m in res.items():
                rows.append({"set": name, "mode": mode, **m})
            rows.append({"set": name, "mode": "indexing", "recall@5": "", "mrr@10": "",
                         "chunks/s": extra[name]["chunks_per_s"], "chunks": stats.chunks})
        if not args.skip_scale:
            for n in (10_000, 100_000):
                p50, p95 = latency(idx, n, "scale")
                rows.append({"set": f"{n} chunks", "mode": "hybrid query latency", "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)})
    report(f"retrieval-{args.embedder}", rows, extra)


if __name__ == "__main__":
    main()
