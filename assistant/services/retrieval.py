"""Collections of the user's mail and documents: indexing, search, and the passages a grounded answer reads.

    idx = open_index()                                  # the SQLite index (embedder loaded on first use)
    name, hits = passages("How do I reset a password?", "demo-kb", k=4)

`default` on a fresh install (nothing indexed yet) and `demo-kb` mean the shipped demo knowledge
base, indexed on first use.
"""

from __future__ import annotations

import re
from dataclasses import replace

from assistant.demo import DEMO_KB, resolve_collection
from assistant.index import Hit, Index


def open_index() -> Index:
    return Index.open()


def collection(name: str, idx: Index | None = None, progress=None) -> str:
    """The collection to search for `name` (see the module doc); `progress(stats, total)` while the demo
    knowledge base is indexed on first use."""
    return resolve_collection(name, idx or open_index(), progress)


def passages(query: str, name: str = "default", k: int = 4, idx: Index | None = None,
             progress=None) -> tuple[str, list[Hit]]:
    """The collection actually searched and the top `k` passages for `query`, one per source (see `by_source`)."""
    idx = idx or open_index()
    resolved = resolve_collection(name, idx, progress)
    return resolved, by_source(idx.search(query, resolved, k * SEARCH_DEPTH), k)


def sources_json(hits: list[Hit]) -> list[dict]:
    """The passages an answer cites, numbered as its [n] marks number them."""
    return [{"n": i, "path": h.path, "message_id": h.message_id, "title": h.title} for i, h in enumerate(hits, 1)]


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


__all__ = ["DEMO_KB", "Hit", "Index", "by_source", "collection", "open_index", "passages", "sources_json"]
