"""`assistant retrain TASK`: a new student from your accepted and edited drafts.

The assistant never imports training code: this writes a `distill` config and runs
`distill run` as a subprocess, reading its JSON-lines progress. The new student starts from the
current one (its LoRA adapter) when that is a student of the base model. It is compared
with the current default on your own held-out drafts and becomes the default only if it
wins; `assistant models default TASK PREVIOUS` rolls back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from assistant import AssistantError, paths
from assistant.services import models as registry
from assistant.services import store

STUDENT_TASK = {"reply": "support", "summarize": "summarize"}


@dataclass
class Plan:
    task: str
    name: str
    run_dir: Path
    config: Path
    drafts: int
    replay: int
    start: str  # the student the new one starts from (its adapter), or the base
    steps: int
    minutes: float
    ram_gb: float


def plan(task: str, steps: int = 60, replay: str | None = None, replay_limit: int = 200) -> Plan:
    import tomli_w

    if task not in STUDENT_TASK:
        raise AssistantError(f"retrain works for {', '.join(STUDENT_TASK)}, not {task!r}")
    rows = store.list_feedback(store.connect(), task)
    if len(rows) < 3:
        raise AssistantError(f"only {len(rows)} {task} draft(s) in the feedback store; keep or edit at least 3 "
                             "(`assistant reply --edit`, or `a` in the mail screen)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{STUDENT_TASK[task]}-retrained-{stamp}"
    run_dir = paths.data_dir() / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    # every third draft is held out (at least one), to judge the new student against the current one
    held = {r["id"] for i, r in enumerate(rows) if i % 3 == 2} or {rows[-1]["id"]}
    for split in ("train", "val"):
        with open(run_dir / f"feedback-{split}.jsonl", "w") as f:
            for r in rows:
                if (r["id"] in held) == (split == "val"):
                    f.write(json.dumps({k: r[k] for k in ("id", "input", "draft", "final")}, ensure_ascii=False) + "\n")
    sources = [{"kind": "feedback", "path": str(run_dir / "feedback-train.jsonl"), "weight": 3.0, "split": "train"},
               {"kind": "feedback", "path": str(run_dir / "feedback-val.jsonl"), "split": "val"}]
    if replay:
        sources.append({"kind": "bitext" if replay.endswith(".csv") else "jsonl", "path": str(Path(replay).resolve()),
                        "limit": replay_limit, "split": "train"})
    # start from the current student when it is a LoRA on the base: the drafts refine it, and DPO's
    # reference is that student, not the untrained base
    current = registry.all_models().get(registry.default_for(task))
    start = current if (current and current.mergeable and Path(current.lora_path).exists()  # a student distill made
                        and Path(current.path).resolve() == paths.base_model_path().resolve()) else None
    cfg = {"name": name, "task": STUDENT_TASK[task], "out_dir": str(run_dir),
           "data": {"sources": sources},
           "train": {"max_steps": steps, "dpo_weight": 0.5, "eval_every": max(10, steps // 3), "save_every": 10, "batch_tokens": 1024,
                     "eval_examples": 16, "warmup_steps": 5, **({"init": str(start.lora_path)} if start else {})},
           "eval": {"examples": 20, "compare": ["student"]}}
    config = run_dir / "config.toml"
    config.write_text(tomli_w.dumps(cfg))
    # measured here (2-core EPYC): about 115 packed tokens/s for LoRA on the 135M with the DPO pass, whose
    # reference model doubles the forward work; 60 steps on 9 drafts took 8.7 min in all, eval included
    tokens = steps * 1024
    return Plan(task, name, run_dir, config, len(rows), replay_limit if replay else 0, start.name if start else registry.BASE_NAME, steps,
                round(tokens / 120 / 60 + 1.5, 1), 5.0)


def run(p: Plan, on_event: Callable[[dict], None] = lambda e: None) -> dict:
    """Train, evaluate against the current default, and switch only if the new student wins."""
    current = registry.default_for(p.task)
    cmd = [sys.executable, "-m", "distill.cli", "run", str(p.config), "--json-progress", "--skip-eval"]
    for event in _events(cmd, p.run_dir / "distill.log"):
        on_event(event)
    cmd = [sys.executable, "-m", "distill.cli", "eval", str(p.config), "--against", current]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssistantError(f"evaluation failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    report = json.loads((p.run_dir / "eval" / "report.json").read_text())
    edits = {f"feedback:{r['id']}": r for r in map(json.loads, open(p.run_dir / "feedback-val.jsonl"))}
    outputs = [json.loads(line) for line in open(p.run_dir / "eval" / "outputs.jsonl")]
    scored = [(edit_score(o["student"], edits[o["id"]]["draft"], edits[o["id"]]["final"]),
               edit_score(o[current], edits[o["id"]]["draft"], edits[o["id"]]["final"])) for o in outputs if o["id"] in edits]
    new, old = (round(100 * sum(s[i] for s in scored) / max(1, len(scored)), 2) for i in (0, 1))
    won = new > old
    if won:
        registry.set_default(p.task, p.name)
    else:  # a losing student is not kept: its run folder and registration go
        discard(p)
    return {"new": p.name, "previous": current, "new_edit_score": new, "previous_edit_score": old, "switched": won,
            "new_rougeL": report["systems"]["student"]["rougeL"], "previous_rougeL": report["systems"][current]["rougeL"],
            "items": len(scored)}


def _words(text: str) -> list[str]:
    return text.lower().split()


def edit_score(output: str, draft: str, final: str) -> float:
    """How well `output` makes the user's own changes to `draft` (0..1): the share of the words the user
    added that it has, and of the words the user deleted that it leaves out. A model that repeats the
    draft scores 0 however close the draft was to the final text (ROUGE against the final text gave the
    current model 93 on a draft that was its own text plus one line, so light edits could never win)."""
    from collections import Counter
    from difflib import SequenceMatcher

    d, f = _words(draft), _words(final)
    added, deleted = Counter(), Counter()
    for op, i1, i2, j1, j2 in SequenceMatcher(None, d, f, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            deleted.update(d[i1:i2])
        if op in ("replace", "insert"):
            added.update(f[j1:j2])
    if not added and not deleted:
        return 1.0  # kept as it was: nothing to learn from this one
    have = Counter(_words(output))
    hits = sum(min(n, have[w]) for w, n in added.items()) + sum(n for w, n in deleted.items() if have[w] == 0)
    return hits / (sum(added.values()) + sum(deleted.values()))


def discard(p: Plan) -> None:
    """Forget a retrained student that lost or was not started: its registration and run folder."""
    import shutil

    try:
        registry.remove_model(p.name)
    except AssistantError:
        pass  # never registered
    shutil.rmtree(p.run_dir, ignore_errors=True)
    shutil.rmtree(paths.data_dir() / "models" / p.name, ignore_errors=True)


def _events(cmd: list[str], log: Path) -> Iterator[dict]:
    """JSON lines from the child's stdout; its stderr goes to a log file (a pipe could fill up and block it)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        for line in proc.stdout:
            try:
                yield json.loads(line)
            except ValueError:
                continue
        proc.wait()
    if proc.returncode != 0:
        lines = log.read_text().strip().splitlines()
        raise AssistantError(f"training failed: {lines[-1] if lines else proc.returncode} (log: {log})")
