"""The summary cache (real SQLite): what makes a key, stale content, and summaries() reusing it."""

from __future__ import annotations

import os
import time

from assistant.services import inbox
from assistant.services.summarize import cached, summaries
from assistant.services.summary_cache import Key, SummaryCache, model_key
from tests.fakes import FakeModel


def _box(tmp_path, n: int):
    box = tmp_path / "box"
    box.mkdir(exist_ok=True)
    for i in range(n):
        (box / f"{i:03d}.eml").write_text(f"Subject: Note {i}\nMessage-ID: <n{i}@example.com>\n\nBody {i}.\n")
    return box


def test_a_summary_is_found_by_its_key_and_only_for_the_same_content(tmp_path):
    cache = SummaryCache(tmp_path / "s.db")
    key = Key("m:<a@b>", "m@1", "line", "summarize-v3", 8)
    assert cache.get(key, "c1") is None
    cache.put(key, "c1", "Budget review")
    assert cache.get(key, "c1") == "Budget review" and cache.get(key, "c2") is None
    assert cache.get(Key("m:<a@b>", "m@1", "line", "summarize-v3", 0), "c1") is None  # other samples
    cache.put(key, "c2", "Budget review moved")  # the message changed: its row is replaced
    assert cache.get(key, "c2") == "Budget review moved" and cache.count() == 1
    assert SummaryCache(tmp_path / "s.db").get(key, "c2") == "Budget review moved"  # committed


def test_a_model_file_replaced_under_the_same_name_is_another_model(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF one")
    model = type("M", (), {"name": "mine", "path": f, "lora_path": None})()
    before = model_key(model)
    assert before.startswith("mine@") and model_key(model) == before
    f.write_bytes(b"GGUF two, longer")
    os.utime(f, (time.time() + 5, time.time() + 5))
    assert model_key(model) != before


def test_summaries_reuse_the_cache_and_do_only_new_or_changed_mail(tmp_path):
    box, cache = _box(tmp_path, 5), SummaryCache(tmp_path / "s.db")
    model = FakeModel()
    first = list(summaries(model, inbox.scan(box), "short", cache=cache))
    assert len(model.calls) == 5 and not any(s.cached for s in first)
    again = list(summaries(model, inbox.scan(box), "short", cache=cache))
    assert len(model.calls) == 5 and all(s.cached for s in again)
    assert [s.to_json() for s in again] == [s.to_json() for s in first]
    (box / "001.eml").write_text("Subject: Note 1\nMessage-ID: <n1@example.com>\n\nBody 1, edited.\n")
    (box / "009.eml").write_text("Subject: New\nMessage-ID: <new@example.com>\n\nA new one.\n")
    third = list(summaries(model, inbox.scan(box), "short", cache=cache))
    assert len(model.calls) == 7 and [s.cached for s in third] == [True, False, True, True, True, False]
    list(summaries(model, inbox.scan(box), "short", cache=cache, refresh=True))
    assert len(model.calls) == 13 and cache.count() == 6


def test_thread_lines_are_looked_up_without_the_model(tmp_path):
    box, cache = _box(tmp_path, 3), SummaryCache(tmp_path / "s.db")
    threads = inbox.group(inbox.scan(box))
    model = FakeModel()
    assert cached(model, threads, "line", cache) == [None, None, None]
    list(summaries(model, threads[:2], "line", samples=0, cache=cache))
    assert [bool(s) for s in cached(model, threads, "line", cache, samples=0)] == [True, True, False]
    assert len(model.calls) == 2
