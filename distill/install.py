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
from assistant.tasks import COVERS, RUNTIME_TASKS, SERVES
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
        "tasks": list(cfg.export.tasks) or trained_tasks(cfg),  # the assistant uses it by default only for these
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
    """The tasks (summarize-line, summarize-short, reply, reply+kb, ask, chat, ...) the student has training
    examples for."""
    from distill.evaluate import group_of

    found: set[str] = set()
    path = examples_path(cfg)
    if path.exists():
        with open(path) as f:
            for line in f:
                ex = json.loads(line)
                if ex.get("split") == "train":
                    found.add(group_of(ex))
    return sorted(found)


def runtime_task(report_task: str) -> str:
    """The assistant's task whose default answers a report card's task: summarize-line → summarize,
    reply+kb → reply (`reply --kb` takes the reply default trained for reply+kb), ask → ask."""
    return report_task.split("+")[0].split("-")[0]


def current_default(task: str, covers: str | None = None) -> registry.ModelEntry | None:
    """The model the assistant uses for a runtime task today (the user's choice, else a shipped student),
    for the exact task `covers` (a subject-line student is not the one used for paragraphs); without it, the
    task's own (COVERS), as the assistant's services.models.default_for asks."""
    serves = lambda e: task in SERVES.get(e.task or "", ())
    return registry.all_models().get(registry.default_for(task, serves, covers or COVERS.get(task)))


def worse_than_current(cfg: Config, task: str, margin: float = 0.5) -> list[str]:
    """Why this run's student should not become the default for the runtime `task`: each held-out task where
    the model the assistant uses for it today, asked the same items, scores better (ROUGE-L), or why the
    two cannot be compared. The student's answers are its report card's; the current model's are generated
    here, cached in <run>/eval beside them. (Both are asked the run's prompts: a current default trained on
    an older prompt version meets the new one.)"""
    from distill.evaluate import group_of, items, score_system, task_order
    from distill.metrics import score_rows
    from distill.systems import installed, write_prompts

    rows = items(cfg, cfg.eval.eval_file)
    mine = [t for t in task_order(rows) if runtime_task(t) == task]
    if not mine:
        return []
    with open(require(eval_dir(cfg) / "outputs.jsonl", "eval")) as f:
        answers = {r["id"]: r.get("student") for r in map(json.loads, f)}
    asked = [ex for ex in rows if group_of(ex) in mine]
    if any(answers.get(ex["id"]) is None for ex in asked):
        return [f"its report card has no answer of its own to some of its {len(asked)} held-out items "
                "(run `distill eval` again)"]
    by_current: dict[str, list[str]] = {}
    for t in mine:
        current = current_default(task, t)
        if current is not None and current.name != cfg.name:
            by_current.setdefault(current.name, []).append(t)
    reasons = []
    for name, its_tasks in by_current.items():
        its_rows = [ex for ex in asked if group_of(ex) in its_tasks]
        prompts = write_prompts(its_rows, eval_dir(cfg) / "prompts-default.jsonl", cfg.eval.long_threads)
        theirs: dict = {"systems": {}}
        score_system(cfg, theirs, "default", *installed(name), its_rows, its_tasks, prompts)
        for t in its_tasks:
            t_rows = [ex for ex in its_rows if group_of(ex) == t]
            old, new = theirs["tasks"][t]["default"].get("rougeL"), score_rows(cfg, t_rows, answers).get("rougeL")
            if old is not None and new is not None and old > new + margin:
                reasons.append(f"{t}: {name} scores {old:.2f} ROUGE-L on the same {len(t_rows)} items, {cfg.name} {new:.2f}")
    return reasons


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
            _make_default(cfg, force, m["tasks"])
    return dest


def _make_default(cfg: Config, force: bool, tasks: list[str] | tuple = ()) -> None:
    """The student becomes the default for each runtime task it serves that its manifest's `tasks` name
    (a grounded student, ask and reply+kb, for `ask`: plain replies keep theirs)."""
    named = {runtime_task(t) for t in tasks if "+" not in t}
    for task in (t for t in SERVES[cfg.task] if not tasks or t in named):
        worse = [] if force else worse_than_current(cfg, task)
        if worse:
            previous = current_default(task)
            raise WorseThanDefault(
                f"{cfg.name} is installed but not made the default for {task}: {'; '.join(worse)}. Use it with "
                f"--model {cfg.name}, or pass --force to make it the default anyway"
                + (f" (roll back with `assistant models default {task} {previous.name}`)" if previous else ""))
        registry.set_default(task, cfg.name, RUNTIME_TASKS)
