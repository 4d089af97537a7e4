"""Collections of the user's mail and documents: indexing, search, and the passages a grounded answer reads.

    idx = open_index()                                  # the SQLite index (embedder loaded on first use)
    name, hits = passages("How do I reset a password?", "demo-kb", k=4)

`default` on a fresh install (nothing indexed yet) and `demo-kb` mean the shipped demo knowledge
base, indexed on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.demo import DEMO_KB, resolve_collection
from assistant.index import Hit, Index, by_source


def open_index() -> Index:
    return Index.open()


def collection(name: str, idx: Index | None = None, progress=None) -> str:
    """The collection to search for `name` (see the module doc); `progress(stats, total)` while the demo
    knowledge base is indexed on first use."""
    return resolve_collection(name, idx or open_index(), progress)


def passages(query: str, name: str = "default", k: int = 4, idx: Index | None = None,
             progress=None) -> tuple[str, list[Hit]]:
    """The collection actually searched and the top `k` passages for `query`, one per source (Index.passages)."""
    idx = idx or open_index()
    resolved = resolve_collection(name, idx, progress)
    return resolved, idx.passages(query, resolved, k)


def sources_json(hits: list[Hit]) -> list[dict]:
    """The passages an answer cites, numbered as its [n] marks number them."""
    return [{"n": i, "path": h.path, "message_id": h.message_id, "title": h.title} for i, h in enumerate(hits, 1)]


@dataclass
class Grounded:
    """A text written from retrieved passages (an `ask` answer, a `reply --kb` draft) with what it cites."""
    text: str
    sources: list[Hit]  # numbered from 1 in the text's [n] marks
    collection: str  # the one searched: the built-in demo one when the asked one was empty
    model: str

    def to_json(self, field: str = "text") -> dict:
        return {field: self.text, "model": self.model, "collection": self.collection, "sources": sources_json(self.sources)}


__all__ = ["DEMO_KB", "Grounded", "Hit", "Index", "by_source", "collection", "open_index", "passages", "sources_json"]
