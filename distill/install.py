"""Stage 6, `distill install`: register the exported student with the assistant.

    distill install configs/summarize.toml --default            # into the data dir, default for its task
    distill install configs/summarize.toml --to assets/summarize-smollm2-135m-v4   # ship it in the package

Copies the exported GGUF (adapter or merged), the report card, then writes `manifest.json`
last: base model and its sha256, adapter sha256, task, prompt version, data, teacher,
metrics. A folder without a manifest is an unfinished install and is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from assistant import paths
from assistant.engine import registry
from assistant.tasks import RUNTIME_TASKS, SERVES
from distill.config import Config
from distill.data import trained_prompt_version
from distill.layout import eval_dir, examples_path, export_dir, require
from distill.student import resolve_base



def _meta(cfg: Config) -> dict:
    f = cfg.run_dir / "train" / "meta.json"
    return json.loads(f.read_text()) if f.exists() else {}


def manifest(cfg: Config, artifact: Path, kind: str) -> dict:
    base, meta = resolve_base(cfg.train.base), _meta(cfg)
    report = eval_dir(cfg) / "report.json"
    metrics = json.loads(report.read_text()) if report.exists() else {}
    metrics.pop("samples", None)
    export_info = json.loads((export_dir(cfg) / "export.json").read_text())
    return {
        "name": cfg.name, "task": cfg.task, "kind": kind,
        "base": cfg.train.base, "base_file": base.name, "base_sha256": registry.sha256_file(base),
        "adapter" if kind == "adapter" else "model": artifact.name, "sha256": registry.sha256_file(artifact),
        "prompt_version": trained_prompt_version(examples_path(cfg), cfg.task),
        "tasks": trained_tasks(cfg),  # the assistant uses it by default only for these
        "training_data": [{"kind": s.kind, "path": Path(s.path).name, "target": s.target, "limit": s.limit,
                           "split": s.split, "inject": s.inject, "house_style": s.house_style, "task": s.task} for s in cfg.data.sources],
        "train_examples": meta.get("train_examples"),
        "teacher": cfg.teach.teacher, "train": {"method": cfg.train.method, "lora_r": meta.get("lora_r", cfg.train.lora_r),
                                                **{k: getattr(cfg.train, k) for k in ("lr", "max_steps", "kd")}},
        # the student this one was trained on from (train.init): the folder its adapter sits in
        **({"started_from": Path(cfg.train.init).parent.name if Path(cfg.train.init).suffix else cfg.train.init}
           if cfg.train.init else {}),
        "export": export_info, "metrics": metrics, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def trained_tasks(cfg: Config) -> list[str]:
    """The tasks (summarize-line, summarize-short, reply, chat, ...) the student has training examples for."""
    found: set[str] = set()
    path = examples_path(cfg)
    if path.exists():
        with open(path) as f:
            for line in f:
                ex = json.loads(line)
                if ex.get("split") == "train":
                    found.add(ex["task"])
    return sorted(found)


def current_default(task: str) -> registry.ModelEntry | None:
    """The model the assistant uses for a runtime task today (the user's choice, else a shipped student)."""
    return registry.all_models().get(registry.default_for(task, lambda e: task in SERVES.get(e.task or "", ())))


def student_scores(report: dict, tasks: list[str]) -> dict[str, float]:
    """The student's ROUGE-L per task of a report card (`tasks` headline first: a one-task card keeps its
    scores under "systems" only)."""
    if report.get("tasks"):
        return {t: s["student"]["rougeL"] for t, s in report["tasks"].items() if "rougeL" in s.get("student", {})}
    student = report.get("systems", {}).get("student", {})
    return {tasks[0]: student["rougeL"]} if tasks and "rougeL" in student else {}


def worse_than_current(cfg: Config, current: registry.ModelEntry | None, margin: float = 0.5) -> list[str]:
    """Why this run's student should not replace `current` as the default: the tasks where `current`, asked
    the same held-out items as the assistant would ask it, scores better than the student's report card.
    The current default's answers are generated here (cached in <run>/eval beside the other systems')."""
    from distill.evaluate import items, score_system, task_order
    from distill.systems import installed, write_prompts

    if current is None or current.name == cfg.name:
        return []
    report = json.loads(require(eval_dir(cfg) / "report.json", "eval").read_text())
    rows = items(cfg, cfg.eval.eval_file)
    tasks = task_order(rows)
    new = student_scores(report, tasks)
    prompts = write_prompts(rows, eval_dir(cfg) / "prompts.jsonl", cfg.eval.long_threads)
    theirs: dict = {"systems": {}}
    score_system(cfg, theirs, "default", *installed(current.name), rows, tasks, prompts)
    old = {t: s["default"]["rougeL"] for t, s in theirs["tasks"].items() if "rougeL" in s["default"]}
    return [f"{t}: {current.name} {old[t]:.2f} ROUGE-L, {cfg.name} {new[t]:.2f} on the same {len(rows)} items"
            for t in tasks if t in old and t in new and old[t] > new[t] + margin]


class WorseThanDefault(ValueError):
    pass


def run(cfg: Config, dest: Path | None = None, make_default: bool = False, force: bool = False) -> Path:
    info = json.loads(require(export_dir(cfg) / "export.json", "export").read_text())
    src = export_dir(cfg) / info["file"]
    dest = dest or paths.data_dir() / "models" / cfg.name
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "manifest.json").unlink(missing_ok=True)  # unfinished until the manifest is back
    shutil.copyfile(src, dest / src.name)
    for f in ("report.md", "loss.png", "score_speed.png"):
        if (eval_dir(cfg) / f).exists():
            shutil.copyfile(eval_dir(cfg) / f, dest / f)
    m = manifest(cfg, dest / src.name, info["kind"])
    if info["kind"] != "adapter":
        m["base_path"] = src.name  # a merged model is its own base
    elif cfg.train.base != "smollm2-135m":
        m["base_path"] = str(resolve_base(cfg.train.base))
    from distill.card import render

    report_md = (eval_dir(cfg) / "report.md").read_text() if (eval_dir(cfg) / "report.md").exists() else ""
    notes = (dest / "notes.md").read_text() if (dest / "notes.md").exists() else ""  # the author's, kept across installs
    (dest / "README.md").write_text(render(m, report_md, notes))
    tmp = dest / "manifest.tmp"
    tmp.write_text(json.dumps(m, indent=2))
    os.replace(tmp, dest / "manifest.json")
    if not str(dest.resolve()).startswith(str(paths.assets_dir().resolve())):
        e = registry.entry_from_manifest(dest / "manifest.json", "distill")
        registry.add_model(e.path, e.name, e.lora_path, e.task, source="distill", manifest=e.manifest)
        if make_default:
            _make_default(cfg, force)
    return dest


def _make_default(cfg: Config, force: bool) -> None:
    for task in SERVES[cfg.task]:
        current = current_default(task)
        worse = [] if force else worse_than_current(cfg, current)
        if worse:
            raise WorseThanDefault(
                f"{cfg.name} is installed but not made the default for {task}: {current.name} scores better on its "
                f"held-out items ({'; '.join(worse)}). Use it with --model {cfg.name}, or pass --force to make it the default "
                f"anyway (roll back with `assistant models default {task} {current.name}`)")
        registry.set_default(task, cfg.name, RUNTIME_TASKS)
