"""`distill eval` and `distill answers`: the rubric judge and a model's own answers, with the 135M GGUF."""

import json
import subprocess
import sys

import pytest

from distill import data as data_stage
from distill.config import load_config
from distill.layout import teacher_file
from tests.distill.helpers import write_config


@pytest.mark.slow
def test_rubric_judge_scores_each_answer_once_and_reuses_the_prefix(tmp_path, shared):
    import llama_cpp
    import numpy as np

    from distill.judge import _eval_reusing, judge
    from distill.student import resolve_base

    gguf = resolve_base("smollm2-135m")
    # the shared-prefix evaluation gives the logits a fresh evaluation gives
    llm = llama_cpp.Llama(str(gguf), n_ctx=512, verbose=False)
    a = llm.tokenize(b"The parcel arrived broken. Is the reply polite? Answer Yes or No.")
    b = a[:-6] + llm.tokenize(b" Is it short?", add_bos=False)
    _eval_reusing(llm, a)
    _eval_reusing(llm, b)
    reused = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()
    llm.reset()
    llm.eval(b)
    fresh = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
    assert np.abs(reused - fresh).max() < 1e-2
    llm.close()

    cfg = load_config(write_config(tmp_path, shared, extra=f'[teach]\nteacher = "{gguf}"'))
    rows = [{"id": f"x{i}", "messages": [{"role": "user", "content": f'Email:\n"""\n{t}\n"""\n\nSummarize it.'}]}
            for i, t in enumerate(["Lunch moved to noon on Friday.", "The server is down until Monday."])]
    outputs = {"s": {"x0": "Lunch moved to Friday noon", "x1": "Server down until Monday"}, "b": {"x0": "", "x1": "Hello"}}
    res = judge(cfg, rows, outputs, "s", "b", 2)
    assert res["items"] == 2 and res["wins"] + res["ties"] + res["losses"] == 2
    lines = lambda n: [json.loads(l) for l in open(tmp_path / "run" / "eval" / f"rubric-{n}.jsonl")]  # noqa: E731
    assert len(lines("s")) == 2 and all(len(d["answers"]) == 3 and 0 <= d["score"] <= 1 for d in lines("s"))
    outputs["b"]["x1"] = "The server is down"  # only the changed answer is judged again
    judge(cfg, rows, outputs, "s", "b", 2)
    assert len(lines("s")) == 2 and len(lines("b")) == 3


@pytest.mark.slow
def test_answers_writes_the_models_own_answers_to_teacher_prompts(tmp_path, shared):
    """`distill answers` with the 135M GGUF: one compressed line per training prompt the teacher answers,
    keyed by example id, and a rerun after it resumes from the cache instead of generating again."""
    import gzip

    from assistant import paths

    c = write_config(tmp_path, shared)
    c.write_text(c.read_text().replace("limit = 40", 'limit = 3\ntarget = "teacher"'))
    cfg = load_config(c)
    data_stage.run(cfg)
    ids = [e["id"] for e in map(json.loads, open(data_stage.examples_path(cfg))) if e["use"] == "teacher"]
    teacher_file(cfg).parent.mkdir(parents=True)  # the teacher answered two of the three
    teacher_file(cfg).write_text("".join(json.dumps({"id": i, "output": "Lunch", "ok": True}) + "\n" for i in ids[:2]))
    out = tmp_path / "own.jsonl.gz"
    cmd = [sys.executable, "-m", "distill.cli", "answers", str(c), "--model", str(paths.base_model_path()),
           "--out", str(out), "--json"]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    rows = [json.loads(l) for l in gzip.open(out, "rt")]
    assert len(ids) == 3 and res["answers"] == len(rows) == 2 and sorted(r["id"] for r in rows) == sorted(ids[:2])
    assert all(r["output"].strip() and set(r) == {"id", "output"} for r in rows)
    cache = next((tmp_path / "run" / "answers").glob("*-*.jsonl"))
    before = cache.read_text()
    subprocess.run(cmd, check=True, capture_output=True)
    assert cache.read_text() == before
