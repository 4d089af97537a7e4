"""`distill answers`: a model's own answers to the training prompts, the rejected side of self-play DPO.

    distill answers experiments/summarize-v7.toml --model summarize-smollm2-135m-v4 --out data/summarize-student-v4.jsonl.gz

One round of self-play (as SPIN, Chen et al. 2024): the student answers the prompts the teacher
answered; `train.rejected` then pairs the teacher's answer (chosen) with the student's (rejected),
and `train.init` starts the next student from the current one. The model runs as the assistant
runs it (an installed student folded into its cached GGUF). Answers are cached in the run dir and
resumed after a kill; the output keeps only {id, output}, compressed.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from distill.config import Config
from distill.data import read_examples
from distill.layout import examples_path, require, teacher_file
from distill.systems import cache_file, generate, installed, write_prompts
from distill.teach import answered, load_done


def model_files(model: str, lora: str | None) -> tuple[str, str | None, str]:
    """(GGUF, LoRA or None, name): an installed model as the assistant runs it, or GGUF paths."""
    if Path(model).suffix == ".gguf":
        return model, lora, Path(lora or model).stem
    if lora:
        raise ValueError(f"--lora goes with a .gguf --model; {model!r} is an installed model with its own adapter")
    return *installed(model), model


def run(cfg: Config, model: str, out: Path, lora: str | None = None, tasks: tuple[str, ...] = ()) -> dict:
    teacher = load_done(teacher_file(cfg))
    rows = [e for e in read_examples(require(examples_path(cfg), "data")) if e["split"] == "train" and e["use"] == "teacher"
            and answered(teacher, e) and teacher[e["id"]].get("ok") and (not tasks or e["task"] in tasks)]
    if not rows:
        raise ValueError("no training prompts with a teacher answer" + (f" for {', '.join(tasks)}" if tasks else "")
                         + ": run `distill teach` first")
    gguf, adapter, name = model_files(model, lora)
    work = cfg.run_dir / "answers"
    work.mkdir(parents=True, exist_ok=True)
    prompts = write_prompts(rows, work / "prompts.jsonl")
    print(f"answers: {len(rows)} prompts → {name}", file=sys.stderr)
    speed = generate(name, gguf, adapter, prompts, work, progress=True)
    wanted = {ex["id"] for ex in rows}
    got = load_done(cache_file(work, name, gguf, adapter))  # by id: a prompt asked anew keeps its last answer
    kept = [{"id": i, "output": r["output"]} for i, r in got.items() if i in wanted and r.get("output")]
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    return {"model": name, "prompts": len(rows), "answers": len(kept), "failed": len(rows) - len(kept),
            "out": str(out), **speed}
