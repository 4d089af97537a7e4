"""Long threads, map-reduce on the distill side: a thread too long for one prompt gives one summary example per
message and a reduce example whose prompt `distill teach` builds from the teacher's summaries of them; training
reads that prompt back, and eval lets each system write its own summaries of the messages first."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import tasks
from assistant.tasks.summarize import fits_whole
from distill import data as data_stage
from distill.config import load_config
from distill.teach import load_done, reduce_examples

THREADS = Path(__file__).resolve().parents[2] / "data" / "threads" / "dev.jsonl.gz"


def real_threads() -> tuple[dict, dict]:
    """A real thread too long for one prompt (the fewest messages among such) and one that fits."""
    threads = [json.loads(l) for l in gzip.open(THREADS, "rt")]
    whole = lambda t: fits_whole([(m["sender"], m["date"], m["body"]) for m in t["messages"]])
    long = min((t for t in threads if not whole(t) and len(t["messages"]) > 1), key=lambda t: len(t["messages"]))
    short = next(t for t in threads if whole(t) and len(t["messages"]) > 1)
    return long, short


def config(tmp_path: Path, extra: str = "") -> Path:
    long, short = real_threads()
    src = tmp_path / "threads.jsonl.gz"
    with gzip.open(src, "wt") as f:
        f.writelines(json.dumps(t) + "\n" for t in (long, short))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
name = "t"
task = "summarize"
out_dir = "{tmp_path / 'run'}"
[data]
val_percent = 0.0
[[data.sources]]
kind = "threads"
path = "{src}"
task = "summarize-thread-short"
target = "teacher"
[[data.sources]]
kind = "threads"
path = "{src}"
task = "summarize-thread-long"
target = "teacher"
{extra}
""")
    return cfg


def test_a_long_thread_gives_map_examples_and_a_reduce_example(tmp_path):
    long, short = real_threads()
    rows = list(data_stage.build_examples(load_config(config(tmp_path))))
    maps = [r for r in rows if r.get("meta", {}).get("map_of")]
    reduces = [r for r in rows if "map" in r]
    # one summary per message, shared by the thread's short and long summaries
    assert len(maps) == len(long["messages"]) and {m["task"] for m in maps} == {"summarize-short"}
    assert [r["task"] for r in reduces] == ["summarize-thread-short", "summarize-thread-long"]
    assert all(r["map"] == [m["id"] for m in maps] and r["id"].endswith(":reduce") for r in reduces)
    assert reduces[0]["thread"]["messages"][-1]["body"] == long["messages"][-1]["body"]  # whole, not cut
    # each map prompt is the one the assistant builds for that message alone
    t = tasks.task("summarize-short")
    m0 = long["messages"][0]
    assert maps[0]["messages"] == t.prompt(t.text(tasks.Email(m0["body"], long["subject"], m0["sender"], m0["date"]))).messages
    # the thread that fits is one plain example per task, as before
    plain = [r for r in rows if r["id"].startswith(short["id"])]
    assert [r["task"] for r in plain] == ["summarize-thread-short", "summarize-thread-long"] and not any("map" in r for r in plain)


def test_a_held_out_long_thread_has_no_map_examples(tmp_path):
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace('target = "teacher"', 'split = "val"'))
    rows = list(data_stage.build_examples(load_config(cfg)))
    assert not [r for r in rows if r.get("meta", {}).get("map_of")]  # each system writes its own at eval
    assert len([r for r in rows if "thread" in r]) == 2


def test_the_reduce_prompt_is_built_from_the_teachers_summaries(tmp_path):
    rows = list(data_stage.build_examples(load_config(config(tmp_path))))
    maps = [r for r in rows if r.get("meta", {}).get("map_of")]
    done = {m["id"]: {"id": m["id"], "task": m["task"], "ok": True, "output": f"Summary number {k} of this message."}
            for k, m in enumerate(maps)}
    assert reduce_examples(rows, {k: v for k, v in list(done.items())[:-1]}) == []  # waits for every message
    done[maps[-1]["id"]].update(ok=False, output="")  # a rejected summary: that message stands as its opening words
    ready = reduce_examples(rows, done)
    assert len(ready) == 2
    user = ready[0]["messages"][-1]["content"]
    for k in range(len(maps) - 1):
        assert f"Summary number {k} of this message." in user
    last_words = " ".join(real_threads()[0]["messages"][-1]["body"].split()[:8])
    assert last_words in " ".join(user.split())
    assert "thread" in user.lower() and ready[0]["messages"][0]["role"] == "system"


@pytest.mark.slow
def test_teach_then_train_pairs_then_eval_prompts_take_the_map_reduce_path(tmp_path):
    """The 135M GGUF stands in as the teacher, and as the system under eval."""
    from assistant import paths
    from distill.systems import write_prompts
    from distill.targets import pairs

    cfg_path = config(tmp_path, f'[teach]\nteacher = "{paths.base_model_path()}"\nn_ctx = 2048\n')
    cfg = load_config(cfg_path)
    data_stage.run(cfg)
    subprocess.run([sys.executable, "-m", "distill.cli", "teach", str(cfg_path)], check=True, capture_output=True)
    done = load_done(tmp_path / "run" / "teach" / "teacher.jsonl")
    rows = data_stage.read_examples(tmp_path / "run" / "data" / "examples.jsonl")
    reduces = [r for r in rows if "map" in r]
    for r in reduces:
        rec = done[r["id"]]
        assert rec["messages"] != r["messages"]  # not the cut thread
        shown = [tasks.task("summarize-short").clean(done[m]["output"]) for m in r["map"] if done[m]["ok"]]
        assert shown and all(s in rec["messages"][-1]["content"] for s in shown if s)
    train, _ = pairs(cfg)
    trained = {ex["id"]: ex for ex, _, _ in train}
    for r in reduces:
        if done[r["id"]]["ok"]:
            assert trained[r["id"]]["messages"] == done[r["id"]]["messages"]
    # eval: a held-out long thread is summarized message by message first, by the system under test
    prompts = write_prompts([{**reduces[0], "split": "val"}], tmp_path / "prompts.jsonl")
    assert json.loads(prompts.read_text())["map"]["thread"] == reduces[0]["thread"]
    out = tmp_path / "answers.jsonl"
    subprocess.run([sys.executable, "-m", "distill.generate", str(paths.base_model_path()), str(prompts), str(out)],
                   check=True, capture_output=True)
    ans = json.loads(out.read_text().splitlines()[0])
    assert ans["map"] is True and ans["output"]
    cut = write_prompts([{**reduces[0], "split": "val"}], tmp_path / "cut.jsonl", "cut")
    assert "map" not in json.loads(cut.read_text())
