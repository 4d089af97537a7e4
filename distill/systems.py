"""The systems a report card compares, and their answers: model files as the assistant runs them,
answers generated in a subprocess and cached.

    systems(cfg)                  # {"student": (merged GGUF, None), "base": (...), "teacher": (...)}
    installed("summarize-smollm2-135m-v4")           # an installed model's (GGUF, LoRA or None)
    speed = generate(name, model, lora, write_prompts(rows, path), out_dir)   # decode tok/s, peak RSS

Each system generates in its own process (`distill.generate`), so its peak RSS and decode speed
are its own; answers are cached per exact model files and resumable (`distill eval`, `distill answers`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from assistant.tasks import summarize as summarize_task
from distill.config import Config
from distill.layout import MissingInput, export_dir
from distill.teach import max_tokens_for


def student_files(cfg: Config) -> tuple[str, str | None] | None:
    """The exported student as (model GGUF, LoRA GGUF or None); None before `distill export`."""
    from distill.student import resolve_base

    exp = export_dir(cfg) / "export.json"
    if not exp.exists():
        return None
    info = json.loads(exp.read_text())
    f = str(export_dir(cfg) / info["file"])
    return (str(resolve_base(cfg.train.base)), f) if info["kind"] == "adapter" else (f, None)


def as_run(model: str, lora: str | None, kind: str | None, name: str) -> tuple[str, str | None]:
    """(model, LoRA) as the assistant runs them: the adapter folded into a cached GGUF of `kind`
    (assistant.engine.gguf_tools.run_files), or left apart when `kind` is None or the merge fails."""
    if not lora or not kind:
        return model, lora
    from assistant.engine.gguf_tools import run_files

    m, a = run_files(Path(model), Path(lora), kind, name)
    return str(m), str(a) if a else None


def installed(name: str) -> tuple[str, str | None]:
    """(model, LoRA) of an installed model as the assistant runs it."""
    from assistant.engine import registry

    e = registry.all_models().get(name)
    if e is None:
        raise ValueError(f"no installed model named {name!r}")
    return as_run(e.path, e.lora_path, registry.merge_kind() if e.mergeable else None, e.name)


def systems(cfg: Config, extra: dict[str, tuple[str, str | None]] | None = None) -> dict[str, tuple[str, str | None]]:
    """name → (model GGUF, LoRA GGUF or None). The student runs as in the assistant (eval.merge)."""
    from distill.student import resolve_base
    from distill.teachers import ensure_teacher

    out: dict[str, tuple[str, str | None]] = {}
    student = student_files(cfg) if "student" in cfg.eval.compare else None
    if "student" in cfg.eval.compare and not student:
        raise MissingInput(export_dir(cfg) / "export.json", "export")
    if student:
        out["student"] = as_run(*student, None if cfg.eval.merge == "none" else cfg.eval.merge, cfg.name)
    if "base" in cfg.eval.compare:
        out["base"] = (str(resolve_base(cfg.train.base)), None)
    if "teacher" in cfg.eval.compare and not cfg.teach.teacher.startswith("openai:"):
        out["teacher"] = (str(ensure_teacher(cfg.teach.teacher)), None)
    out.update(extra or {})
    return out


def write_prompts(rows: list[dict], path: Path, long_threads: str = "map") -> Path:
    """The prompts file `distill.generate` reads: each example's messages and answer budget, a
    subject line's sample count (the assistant makes a line from the consensus of several), and a long
    thread's messages, which each system summarizes one by one before the thread (`long_threads` "map";
    "cut": the thread cut to fit instead)."""
    with open(path, "w") as f:
        for ex in rows:
            samples = summarize_task.LINE_SAMPLES if ex["task"].endswith("-line") else 0
            mapped = {"task": ex["task"], "thread": ex["thread"], "prompt_version": ex.get("prompt_version")} \
                if "thread" in ex and long_threads == "map" else {}
            f.write(json.dumps({"id": ex["id"], "messages": ex["messages"], "max_tokens": max_tokens_for(ex["task"]),
                                **({"samples": samples} if samples else {}), **({"map": mapped} if mapped else {})},
                               ensure_ascii=False) + "\n")
    return path


def cache_file(out_dir: Path, name: str, model: str, lora: str | None) -> Path:
    """Generations are cached per system and per exact model files: a re-exported student is generated anew."""
    import hashlib

    stamp = "|".join(f"{p}:{Path(p).stat().st_size}:{Path(p).stat().st_mtime}" for p in (model, lora) if p)
    return out_dir / f"{name}-{hashlib.sha1(stamp.encode()).hexdigest()[:8]}.jsonl"


def generate(name: str, model: str, lora: str | None, prompts: Path, out_dir: Path, progress: bool = False) -> dict:
    """One model's answers to `prompts` in a subprocess (cached, resumable); returns its speed and RSS.
    With `progress`, its progress bar and messages go to this process's stderr."""
    cmd = [sys.executable, "-m", "distill.generate", model, str(prompts), str(cache_file(out_dir, name, model, lora)), "--name", name]
    if lora:
        cmd += ["--lora", lora]
    show = progress and sys.stderr.isatty()  # else its stderr is kept, for the error line
    if show:
        cmd += ["--progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None if show else subprocess.PIPE, text=True)
    out, err = _wait(proc, name, prompts, cache_file(out_dir, name, model, lora), progress and not show)
    if proc.returncode != 0:
        why = (err or "").strip().splitlines()
        raise RuntimeError(f"{name}: generation failed: {why[-1] if why else f'exit code {proc.returncode}' + (', see above' if show else '')}")
    return json.loads(out.strip().splitlines()[-1])


STATUS_EVERY = 30.0  # seconds between status lines when stderr is not a terminal


def _wait(proc: subprocess.Popen, name: str, prompts: Path, cache: Path, status: bool) -> tuple[str, str]:
    """The subprocess's output once it ends; with `status`, a line on stderr every STATUS_EVERY seconds
    (`student: 40/120 answers (33%), 2:30`), counted from the answers file it appends to."""
    import time

    if not status:
        return proc.communicate()
    total, start = sum(1 for _ in open(prompts)), time.monotonic()
    while True:
        try:
            return proc.communicate(timeout=STATUS_EVERY)
        except subprocess.TimeoutExpired:
            done = min(total, sum(1 for _ in open(cache))) if cache.exists() else 0
            elapsed = int(time.monotonic() - start)
            print(f"{name}: {done}/{total} answers ({100 * done / max(total, 1):.0f}%), "
                  f"{elapsed // 60}:{elapsed % 60:02d}", file=sys.stderr, flush=True)
