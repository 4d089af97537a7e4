"""Stage 4, `distill eval`: the report card, student vs teacher vs untrained base on held-out items.

    distill eval configs/summarize.toml                 # ROUGE, lengths, format, speed, RSS
    distill eval configs/support.toml eval.judge=true   # plus win rates, the teacher judging by a rubric

The systems and their answers come from `distill.systems` (each generates in its own process,
cached and resumable), the scores from `distill.metrics`, win rates from `distill.judge`; writes
`report.json`, then `report.md` and PNG plots (`distill.report`) in `<run>/eval/`.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

from distill.config import Config
from distill.data import read_examples
from distill.judge import judge
from distill.layout import eval_dir, examples_path, require
from distill.metrics import clean, score_rows
from distill.report import plots, render_markdown
from distill.systems import cache_file, generate, systems, write_prompts


def items(cfg: Config, eval_file: str = "") -> list[dict]:
    """Held-out items: up to `eval.examples` of each task, tasks in the order they first appear."""
    if eval_file:
        src = cfg.resolve(eval_file)
        if not src.exists():
            raise ValueError(f"eval.eval_file: {src} does not exist")
    else:
        src = require(examples_path(cfg), "data")
    rows = [e for e in read_examples(src) if e.get("split", "val") == "val"]
    by_task: dict[str, list[dict]] = {}
    for e in rows:
        by_task.setdefault(group_of(e, cfg.task), []).append(e)
    return [e for group in by_task.values() for e in group[: cfg.eval.examples]]


def group_of(ex: dict, default: str = "") -> str:
    """The report card's task for an item: its task, with "+kb" for a reply asked with knowledge-base passages
    (scored apart from replies without, and for how it uses them)."""
    task = ex.get("task") or default
    return f"{task}+kb" if task == "reply" and "passage_texts" in ex.get("meta", {}) else task


def task_order(rows: list[dict]) -> list[str]:
    """The tasks of the report card, the headline first: the task with the most held-out items (the
    first seen among equals). A summarize student's 100 subject lines, not the 6 threads that came first."""
    counts = collections.Counter(group_of(ex) for ex in rows)
    return sorted(counts, key=lambda t: -counts[t])


def run(cfg: Config, extra_systems: dict | None = None) -> Path:
    """The report card in <run>/eval/: each system's answers scored per task, judged when asked, rendered."""
    rows = items(cfg, cfg.eval.eval_file)
    compared = systems(cfg, extra_systems)
    out = eval_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    prompts = write_prompts(rows, out / "prompts.jsonl", cfg.eval.long_threads)
    report = {"name": cfg.name, "task": cfg.task, "items": len(rows), "systems": {}}
    tasks = task_order(rows)
    outputs = {name: score_system(cfg, report, name, model, lora, rows, tasks, prompts)
               for name, (model, lora) in compared.items()}
    if len(tasks) == 1:  # its scores are the systems'; the task named, which may not be the config's
        report.pop("tasks", None)
        report["scored_task"] = tasks[0]
    if cfg.eval.judge and "student" in outputs:
        judge_student(cfg, report, rows, tasks, outputs)
    if "teacher" in report["systems"] and "student" in report["systems"]:
        report["speedup_vs_teacher"] = round(report["systems"]["student"]["decode_tok_s"] / report["systems"]["teacher"]["decode_tok_s"], 2)
    with open(out / "outputs.jsonl", "w") as f:  # every system's answer to every item (retrain compares edits with them)
        for ex in rows:
            f.write(json.dumps({"id": ex["id"], **{n: outputs[n].get(ex["id"], "") for n in outputs}}, ensure_ascii=False) + "\n")
    samples = samples_of(rows, tasks, outputs)
    (out / "report.json").write_text(json.dumps({**report, "samples": samples}, indent=2, ensure_ascii=False))
    (out / "report.md").write_text(render_markdown(report, samples))
    plots(cfg, report)
    return out


def score_system(cfg: Config, report: dict, name: str, model: str, lora: str | None, rows: list[dict],
                 tasks: list[str], prompts: Path) -> dict[str, str]:
    """One system's answers (cleaned as the assistant shows them), scored per task into `report`."""
    out = eval_dir(cfg)
    speed = generate(name, model, lora, prompts, out, progress=True)
    gens = {json.loads(l)["id"]: json.loads(l)["output"] for l in open(cache_file(out, name, model, lora))}
    answers = {ex["id"]: clean(ex["task"], gens.get(ex["id"], "")) for ex in rows}
    for task in tasks:
        scored = score_rows(cfg, [ex for ex in rows if group_of(ex) == task], answers)
        report.setdefault("tasks", {}).setdefault(task, {})[name] = scored
    report["systems"][name] = {**report["tasks"][tasks[0]][name], **speed, "model": Path(model).name,
                               "lora": Path(lora).name if lora else None}
    return answers


def judge_student(cfg: Config, report: dict, rows: list[dict], tasks: list[str], outputs: dict[str, dict]) -> None:
    """Win rates of the student over every other system (not its own other forms), per judged task."""
    for task in [t for t in tasks if not cfg.eval.judge_tasks or t in cfg.eval.judge_tasks]:
        key = "" if task == tasks[0] else f"{task}: "
        task_rows = [ex for ex in rows if group_of(ex) == task]
        report.setdefault("judge", {}).update(
            {f"{key}student_vs_{o}": judge(cfg, task_rows, outputs, "student", o, cfg.eval.judge_examples)
             for o in outputs if o != "student" and not o.startswith("student-")})


def samples_of(rows: list[dict], tasks: list[str], outputs: dict[str, dict]) -> list[dict]:
    """A few items with every system's answer: 5 of the headline task, 2 of each other."""
    shown = [ex for t in tasks for ex in [r for r in rows if group_of(r) == t][: 5 if t == tasks[0] else 2]]
    return [{"id": ex["id"], "reference": ex["reference"], **{n: outputs[n][ex["id"]] for n in outputs}} for ex in shown]
