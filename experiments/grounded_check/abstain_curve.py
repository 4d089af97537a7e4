"""Can a cut-off, rather than training, make a grounded student say "not covered" to more unanswerable questions?

    python experiments/grounded_check/abstain_curve.py configs/support-grounded.toml grounded-smollm2-135m-v2

For each held-out `ask` question of the config's data (run `distill data` and `distill eval` first; SYSTEM is a
column of the eval's outputs.jsonl and an installed model): the best dense cosine of its KB (a retrieval floor)
and the model's teacher-forced log-probability of answering exactly "The passages do not cover this.". Prints the
grounded report card's recall, abstention and false abstention as either cut-off moves, and both together.
At stop 36 (v2): no cut-off reached 70% abstention without source recall falling under 67.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from assistant import paths
from assistant.engine.models import LlamaCppModel
from assistant.index import Index
from assistant.tasks.ask import NOT_COVERED
from distill import grounded
from distill.config import load_config
from distill.layout import eval_dir, examples_path
from distill.metrics import grounded_scores
from distill.systems import installed


def abstain_logprob(model: LlamaCppModel, messages: list[dict]) -> float:
    import llama_cpp

    llm = model.load()
    phrase = llm.tokenize(NOT_COVERED.encode(), add_bos=False, special=False)
    llm.reset()
    llm.eval(model.tokens(messages))
    total = 0.0
    for t in phrase:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(llm.n_vocab(),)).astype(np.float64)
        top = logits.max()
        total += logits[t] - top - math.log(np.exp(logits - top).sum())
        llm.eval([t])
    return total


def main(config: str, system: str, limit: str = "0") -> None:
    cfg = load_config(config)
    rows = [r for r in map(json.loads, open(examples_path(cfg)))
            if r["split"] == "val" and r["task"] == "ask" and "passage_texts" in r.get("meta", {})]
    ids = {r["id"] for r in rows}
    outputs = {o["id"]: o[system] for o in map(json.loads, open(eval_dir(cfg) / "outputs.jsonl")) if o["id"] in ids}
    rows = [r for r in rows if r["id"] in outputs][: int(limit) or None]
    idx = Index.open(paths.data_dir() / "grounded" / "index.db")  # the one `distill data` built, every KB in it
    cosine = {r["id"]: max(idx.dense(r["meta"]["question"], grounded.collection(r["meta"]["kb"]), 5).values(),
                           default=0.0) for r in rows}
    path, lora = installed(system)
    model = LlamaCppModel(system, Path(path), Path(lora) if lora else None, n_ctx=3072)
    lp = {}
    for i, r in enumerate(rows):
        lp[r["id"]] = abstain_logprob(model, r["messages"])
        print(f"\r{i + 1}/{len(rows)}", end="", file=sys.stderr)
    print(file=sys.stderr)

    def show(label: str, cut) -> None:
        s = grounded_scores(rows, {r["id"]: NOT_COVERED if cut(r["id"]) else outputs[r["id"]] for r in rows})
        print(f"{label:<24} recall {s['source_recall']:5}  abstention {s['abstention']:5}  "
              f"false abstention {s['false_abstention']:5}")

    show("as generated", lambda k: False)
    for floor in (0.25, 0.30, 0.35):
        show(f"cosine < {floor}", lambda k: cosine[k] < floor)
    for t in (-1.1, -1.5, -1.8):
        show(f"log-prob > {t}", lambda k: lp[k] > t)
        show("  and cosine < 0.30", lambda k: lp[k] > t or cosine[k] < 0.30)


if __name__ == "__main__":
    main(*sys.argv[1:4])  # a third argument: only the first N questions (a quick look)
