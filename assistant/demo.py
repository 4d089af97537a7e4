"""The built-in demo: a support knowledge base and a sample mailbox shipped in `assets/demo`,
indexed on first use so that a fresh install has something to search and show."""

from __future__ import annotations

from pathlib import Path

from assistant import paths

DEMO_KB = "demo-kb"


def demo_dir() -> Path:
    return paths.assets_dir() / "demo"


def ensure_demo_kb(index=None, progress=None) -> str:
    """Index the demo knowledge base once (`progress(stats, total)` as in Index.add); returns its collection name."""
    from assistant.index import Index

    idx = index or Index.open()
    idx.add([demo_dir() / "kb"], DEMO_KB, progress)  # unchanged pages are skipped by size and mtime; a killed first run completes
    return DEMO_KB


def resolve_collection(name: str, index=None, progress=None) -> str:
    """The collection to search for `name`: `demo-kb` is indexed on first use, and `default` on a
    fresh install (nothing indexed yet) means the demo knowledge base."""
    from assistant.index import Index

    idx = index or Index.open()
    if name == DEMO_KB or (name == "default" and not any(c["name"] == "default" for c in idx.collections())):
        return ensure_demo_kb(idx, progress)
    return name
