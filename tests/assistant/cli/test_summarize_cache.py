"""`assistant summarize` with its summary cache, in subprocesses: a second run summarizes only new
mail, --refresh all of it, kill -9 loses only what was in flight, two runs at once share one cache."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# the CLI with a scripted model (FAKE_DELAY seconds a word); prints how many prompts it was sent
FAKE_CLI = """
import atexit, os, sys
from tests.fakes import FakeModel
model = FakeModel(delay=float(os.environ.get("FAKE_DELAY", "0")))
import assistant.services.models
assistant.services.models.resolve = lambda *a, **k: model
atexit.register(lambda: print(f"calls: {len(model.calls)}", file=sys.stderr))
sys.argv = ["assistant"] + sys.argv[1:]
from assistant.cli import main
main()
"""


def _box(tmp_path, n: int, start: int = 0) -> Path:
    box = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (box / "new" / f"{i:04d}.host").write_text(
            f"From: Ana <ana@example.com>\nSubject: Note {i}\nMessage-ID: <n{i}@example.com>\n\nBody of note {i}.\n")
    return box


def _start(home: Path, *args: str, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "ASSISTANT_HOME": str(home), "FAKE_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, "-c", FAKE_CLI, "summarize", "--no-log", "--json", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(home: Path, *args: str) -> tuple[list[dict], int]:
    p = _start(home, *args)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()], int(err.split("calls: ")[-1].split()[0])


def _rows(home: Path) -> int:
    with sqlite3.connect(home / "data" / "summaries.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT count(*) FROM summaries").fetchone()[0]


def test_a_second_run_reads_the_cache_and_does_only_new_mail(tmp_path):
    home, box = tmp_path / "home", _box(tmp_path, 6)
    first, calls = _run(home, str(box), "--length", "short")
    assert calls == 6 and len(first) == 6
    again, calls = _run(home, str(box), "--length", "short")
    assert calls == 0 and again == first  # the same JSON lines, from the cache
    _box(tmp_path, 2, start=6)
    third, calls = _run(home, str(box), "--length", "short")
    assert calls == 2 and third[:6] == first and len(third) == 8
    _, calls = _run(home, str(box), "--length", "line", "--samples", "0")
    assert calls == 8  # another length is another summary
    _, calls = _run(home, str(box), "--length", "short", "--refresh")
    assert calls == 8 and _rows(home) == 16


def test_kill_9_loses_only_the_message_in_flight(tmp_path):
    home, box = tmp_path / "home", _box(tmp_path, 12)
    p = _start(home, str(box), "--length", "short", delay=0.15)
    printed = [json.loads(p.stdout.readline()) for _ in range(4)]
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    kept = _rows(home)
    assert 4 <= kept <= 5  # every summary printed was stored first; at most the next one besides
    with sqlite3.connect(home / "data" / "summaries.db") as db:
        stored = {r[0] for r in db.execute("SELECT item FROM summaries")}
    assert {f"m:{s['message_id']}" for s in printed} <= stored
    rest, calls = _run(home, str(box), "--length", "short")
    assert calls == 12 - kept and len(rest) == 12


def test_two_runs_at_once_share_the_cache_without_doubling_it(tmp_path):
    home, box = tmp_path / "home", _box(tmp_path, 10)
    runs = [_start(home, str(box), "--length", "short", delay=0.02) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in runs]
    assert all(p.returncode == 0 for p in runs), outs
    assert all(len(out.splitlines()) == 10 for out, _ in outs)
    assert _rows(home) == 10


@pytest.mark.slow
def test_kill_9_of_a_batched_run_keeps_what_it_printed(tmp_path):
    """The real model decodes several messages at once; each summary is stored as it ends. (80 messages: on a
    fast CPU 10 were all done before the kill landed.)"""
    home, box = tmp_path / "home", _box(tmp_path, 80)
    env = {**os.environ, "ASSISTANT_HOME": str(home)}
    p = subprocess.Popen([sys.executable, "-m", "assistant.cli", "summarize", "--no-log", "--json", "--length", "line",
                          "--samples", "2", str(box)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    printed = [json.loads(p.stdout.readline()) for _ in range(3)]
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with sqlite3.connect(home / "data" / "summaries.db") as db:
        stored = {r[0]: r[1] for r in db.execute("SELECT item, summary FROM summaries")}
    assert all(stored[f"m:{s['message_id']}"] == s["summary"] for s in printed) and len(stored) < 80


def test_threads_are_labelled_by_subject_and_size(tmp_path):
    box = _box(tmp_path, 2)
    (box / "new" / "0002.host").write_text(
        "From: Bo <bo@example.com>\nSubject: Re: Note 0\nMessage-ID: <r0@example.com>\n"
        "In-Reply-To: <n0@example.com>\nReferences: <n0@example.com>\n\nThanks, noted.\n")
    env = {**os.environ, "ASSISTANT_HOME": str(tmp_path / "home")}
    p = subprocess.run([sys.executable, "-c", FAKE_CLI, "summarize", "--no-log", "--threads", str(box)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    labels = sorted(line.split(":")[0] for line in p.stdout.splitlines())
    assert labels == ["Note 0 (2 messages)", "Note 1 (1 message)"]
    rows, _ = _run(tmp_path / "home2", "--threads", str(box))
    assert sorted((r["subject"], r["messages"]) for r in rows) == [("Note 0", 2), ("Note 1", 1)]
