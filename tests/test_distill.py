"""The distill pipeline on small real parts: AESLC rows, a tiny llama built here, the 135M GGUF."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill.config import load_config
from distill import data as data_stage
from distill.teach import load_done, reject_reason, teacher_file

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path, shared, base="smollm2-135m", extra=""):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
name = "t"
task = "summarize"
out_dir = "{tmp_path / 'run'}"
[data]
val_percent = 0.0
[[data.sources]]
kind = "aeslc"
path = "{shared / 'aeslc' / 'train.jsonl'}"
limit = 40
[[data.sources]]
kind = "aeslc"
path = "{shared / 'aeslc' / 'dev.jsonl'}"
split = "val"
limit = 8
[train]
base = "{base}"
max_steps = 6
eval_every = 3
save_every = 1
batch_tokens = 1024
eval_examples = 4
warmup_steps = 2
autocast = "none"
{extra}
""")
    return cfg


def test_data_split_is_fixed_and_prompts_match_the_assistant(tmp_path, shared):
    cfg = load_config(write_config(tmp_path, shared))
    rows = data_stage.read_examples(data_stage.run(cfg))
    again = data_stage.read_examples(data_stage.run(cfg))
    assert [(r["id"], r["split"]) for r in rows] == [(r["id"], r["split"]) for r in again]
    assert sum(r["split"] == "val" for r in rows) == 8
    from assistant.tasks.summarize import build_messages

    first = rows[0]
    body = json.loads(next(l for l in open(shared / "aeslc" / "train.jsonl") if first["id"].split(":")[1] in l))["email_body"]
    assert first["messages"] == build_messages(body.strip(), "line")[0]


def test_manifest_names_the_prompt_version_the_examples_were_built_with(tmp_path):
    from assistant.tasks import reply, summarize

    for task, module in (("summarize", summarize), ("support", reply)):
        for version in module.VERSIONS:
            build = (lambda v: summarize.build_messages("Lunch moved to noon.", "short", version=v)) if module is summarize \
                else (lambda v: reply.build_messages("Where is my parcel?", version=v))
            messages = build(version)[0]
            assert data_stage.prompt_version_of(messages) == version
            f = tmp_path / f"{version}.jsonl"
            chat = {"task": "chat", "messages": [{"role": "system", "content": reply.SYSTEM_V2}, {"role": "user", "content": "hi"}]}
            f.write_text(json.dumps(chat) + "\n" + json.dumps({"messages": messages}) + "\n")
            assert data_stage.trained_prompt_version(f, task) == version  # a chat turn first says nothing
    assert data_stage.trained_prompt_version(tmp_path / "none.jsonl", "support") == reply.PROMPT_VERSION


def test_one_email_gives_one_example_per_task_and_eval_takes_each_task(tmp_path, shared):
    """A line and a short summary of the same emails are two examples with their own ids (the
    teacher's answers are keyed by id), and the report card draws items from every task."""
    from distill.evaluate import items, task_order

    extra_sources = "".join(f"""
[[data.sources]]
kind = "aeslc"
path = "{shared / 'aeslc' / f}"
task = "summarize-short"
limit = {n}
{'split = "val"' if f == 'dev.jsonl' else ''}
""" for f, n in (("train.jsonl", 5), ("dev.jsonl", 3)))
    cfg_file = write_config(tmp_path, shared)
    text = cfg_file.read_text()
    cfg_file.write_text(text.replace("[train]", extra_sources + "[eval]\nexamples = 2\n[train]"))
    cfg = load_config(cfg_file)
    rows = data_stage.read_examples(data_stage.run(cfg))
    short = [r for r in rows if r["task"] == "summarize-short"]
    assert len(short) == 8 and all(r["id"].endswith(":summarize-short") for r in short)
    line_ids = {r["id"] for r in rows if r["task"] == "summarize-line"}
    assert {r["id"].rsplit(":", 1)[0] for r in short if r["split"] == "train"} <= line_ids
    assert len({r["id"] for r in rows}) == len(rows)
    picked = items(cfg)
    assert [r["task"] for r in picked] == ["summarize-line"] * 2 + ["summarize-short"] * 2
    threads_first = [{"task": "summarize-thread-short"}] + [{"task": "summarize-line"}] * 3 + [{"task": "summarize-short"}] * 3
    assert task_order(threads_first) == ["summarize-line", "summarize-short", "summarize-thread-short"]


def test_house_style_wraps_train_replies_in_the_customers_language(tmp_path, shared):
    from distill.evaluate import house_style_ok

    cfg = tmp_path / "s.toml"
    cfg.write_text(f"""
name = "s"
task = "support"
out_dir = "{tmp_path / 'run'}"
[data]
val_percent = 20.0
[[data.sources]]
kind = "bitext"
path = "{shared / 'bitext-customer-support' / 'bitext_v2_train.csv'}"
limit = 30
house_style = true
[[data.sources]]
kind = "tickets"
path = "{shared / 'support-tickets-synthetic' / 'tickets_v4_20k_prefix_train.csv'}"
limit = 60
house_style = true
""")
    rows = data_stage.read_examples(data_stage.run(load_config(cfg)))
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert train and val
    assert all(house_style_ok(r["reference"]) for r in train), [r["reference"][:80] for r in train if not house_style_ok(r["reference"])]
    assert not any(n in r["reference"] for r in train for n in ("<name>", "[Name]", "[Your Name]"))
    from assistant.tasks.reply import guess_language

    for r in train:  # greeting and sign-off in the answer's language, whatever the data set's label says
        lang = guess_language(r["reference"])
        if r["reference"].startswith(("Hello,", "Guten Tag,")):
            assert r["reference"].startswith("Guten Tag," if lang == "de" else "Hello,"), r["reference"][:200]
    assert any(r["reference"].startswith("Guten Tag,") for r in train)
    # held-out references stay the data set's own, so scores compare with other systems
    raw = [r for r in val if r["source"] == "bitext"]
    assert raw and not any(house_style_ok(r["reference"]) for r in raw)


def test_unknown_config_key_is_rejected(tmp_path, shared):
    cfg = write_config(tmp_path, shared, extra="warmup_stepz = 3")
    with pytest.raises(ValueError, match="warmup_stepz"):
        load_config(cfg)


def test_keep_chooses_the_exported_weights(tmp_path, shared):
    from distill.train import weights_dir

    assert weights_dir(load_config(write_config(tmp_path, shared))).name == "best"
    assert weights_dir(load_config(write_config(tmp_path, shared), ["train.keep=last"])).name == "final"
    with pytest.raises(ValueError, match="train.keep"):
        load_config(write_config(tmp_path, shared), ["train.keep=newest"])


def test_teacher_filters():
    assert reject_reason("summarize-line", "") == "empty"
    assert reject_reason("reply", "I'm sorry, but I can't help with that.") == "refusal"
    assert reject_reason("summarize-line", "one two three\nfour") .startswith("off-format")
    assert reject_reason("reply", " ".join(["the same words again"] * 10)) == "looping"
    assert reject_reason("summarize-line", "Budget meeting moved to Thursday") is None


def _train_cmd(cfg, *extra):
    return [sys.executable, "-m", "distill.cli", "train", str(cfg), *extra]


def _log(tmp_path):
    return [json.loads(l) for l in open(tmp_path / "run" / "train" / "log.jsonl")]


@pytest.mark.slow
def test_packed_examples_do_not_see_each_other(tiny_model):
    """A packed row must give each example the logits it gets alone (no attention across examples)."""
    import torch

    from distill.student import load_model
    from distill.train import Item, collate, row_loss

    model = load_model(str(tiny_model)).eval()
    a, b = Item(list(range(100, 140)), 30), Item(list(range(500, 520)), 12)
    with torch.no_grad():
        alone = row_loss(model, collate([b]), "none", 0)[0]
        packed_after_a = row_loss(model, collate([a, b]), "none", 0)[0]
        both = row_loss(model, collate([a]), "none", 0)[0]
    # the packed loss is the mean over both answers' tokens: (10 * loss_a + 8 * loss_b) / 18
    assert torch.allclose(packed_after_a, (10 * both + 8 * alone) / 18, atol=1e-5)
    # several rows in one micro-batch: the short row is padded, and padding changes nothing
    c = Item(list(range(900, 960)), 40)
    with torch.no_grad():
        alone_c = row_loss(model, collate([c]), "none", 0)[0]
        rows = row_loss(model, collate([[a, b], [c]]), "none", 0)[0]
    assert torch.allclose(rows, (10 * both + 8 * alone + 20 * alone_c) / 38, atol=1e-5)


def test_pack_fills_rows_and_batches_within_budget():
    from distill.train import Item, pack

    items = [Item([1] * n, 1) for n in (300, 200, 250, 100, 60, 500, 480, 30, 20, 10) * 5]
    batches = pack(items, budget=1024, seed=0, row_len=512)
    got = sorted(id(it) for b in batches for row in b for it in row)
    assert got == sorted(id(it) for it in items)  # every example once
    for b in batches:
        width = max(sum(len(i.ids) for i in row) for row in b)
        assert width <= 512 and len(b) * width <= 1024
    real = sum(len(i.ids) for i in items)
    padded = sum(len(b) * max(sum(len(i.ids) for i in row) for row in b) for b in batches)
    assert real / padded > 0.9  # rows of similar length share a batch: little padding
    assert pack(items, 1024, 0, 512) == batches and pack(items, 1024, 1, 512) != batches


def test_train_kill_and_resume_matches_uninterrupted(tmp_path, shared, tiny_model):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    ca, cb = write_config(a, shared, tiny_model), write_config(b, shared, tiny_model)
    for c in (ca, cb):
        data_stage.run(load_config(c))
    subprocess.run(_train_cmd(ca), check=True, capture_output=True)
    # kill -9 once the third checkpoint has landed, then resume
    proc = subprocess.Popen(_train_cmd(cb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = b / "run" / "train" / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    assert 3 <= killed_at < 6
    subprocess.run(_train_cmd(cb, "--resume"), check=True, capture_output=True)
    full, resumed = _log(a), _log(b)
    assert full[-1]["step"] == 6
    resumed_by_step = {r["step"]: r for r in resumed}
    assert sorted(resumed_by_step) == list(range(1, 7))
    assert abs(full[-1]["loss"] - resumed_by_step[6]["loss"]) < 1e-3


@pytest.mark.slow
def test_teach_kill_and_rerun_loses_and_duplicates_nothing(tmp_path, shared):
    """The 135M GGUF stands in as the teacher: greedy answers make the two runs comparable."""
    from assistant import paths

    def cfg_for(d):
        d.mkdir()
        c = write_config(d, shared, extra="")
        text = c.read_text().replace('limit = 40', 'limit = 6\ntarget = "teacher"')
        c.write_text(text + f'\n[teach]\nteacher = "{paths.base_model_path()}"\nn_ctx = 1024\n')
        data_stage.run(load_config(c))
        return c

    ca, cb = cfg_for(tmp_path / "a"), cfg_for(tmp_path / "b")
    cmd = lambda c: [sys.executable, "-m", "distill.cli", "teach", str(c)]
    subprocess.run(cmd(ca), check=True, capture_output=True)
    out_b = tmp_path / "b" / "run" / "teach" / "teacher.jsonl"
    proc = subprocess.Popen(cmd(cb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out_b.exists() and len(out_b.read_text().splitlines()) >= 2):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(out_b, "a") as f:
        f.write('{"id": "torn')  # what a kill in the middle of a write leaves behind
    subprocess.run(cmd(cb), check=True, capture_output=True)
    a = load_done(tmp_path / "a" / "run" / "teach" / "teacher.jsonl")
    lines = out_b.read_text().splitlines()
    b = load_done(out_b)
    assert len(lines) == len(b) == len(a) == 6
    assert {k: v["output"] for k, v in a.items()} == {k: v["output"] for k, v in b.items()}


@pytest.mark.slow
def test_lora_export_runs_in_llama_cpp(tmp_path, shared):
    """Two LoRA steps on the real 135M, exported as a GGUF adapter, checked against torch."""
    from distill import export, train

    c = write_config(tmp_path, shared, extra="").read_text().replace("max_steps = 6", "max_steps = 2")
    (tmp_path / "c.toml").write_text(c)
    cfg = load_config(tmp_path / "c.toml")
    data_stage.run(cfg)
    train.run(cfg)
    out = export.run(cfg)
    info = json.loads((out / "export.json").read_text())
    assert info["kind"] == "adapter" and info["agreement"] >= 0.9


def test_training_starts_from_a_gguf_adapter_and_pairs_targets_over_own_answers(tmp_path, shared, tiny_model):
    """A LoRA written as GGUF (q/k rows permuted for llama.cpp) comes back as the same peft weights, and
    `train.rejected` answers become DPO pairs against the example's training target."""
    import torch
    from peft import LoraConfig, get_peft_model

    from distill import train
    from distill.export import write_adapter
    from distill.student import load_model

    torch.manual_seed(1)
    trained = get_peft_model(load_model(str(tiny_model)), LoraConfig(r=4, lora_alpha=8, target_modules=train.LORA_TARGETS,
                                                                      task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if "lora_" in name:
                p.normal_()
    trained.save_pretrained(tmp_path / "peft")
    write_adapter(tmp_path / "peft", trained.get_base_model().config, tmp_path / "adapter.gguf")

    cfg_path = write_config(tmp_path, shared, tiny_model,
                            extra=f'init = "{tmp_path / "adapter.gguf"}"\nrejected = ["{tmp_path / "own.jsonl"}"]\ndpo_weight = 1.0')
    cfg = load_config(cfg_path)
    model = train.lora_model(load_model(str(tiny_model)), cfg)
    want = dict(trained.named_parameters())
    got = {k: v for k, v in model.named_parameters() if "lora_" in k}
    assert len(got) == 2 * 7 * 2 and model.peft_config["default"].r == 4
    for k, v in got.items():  # f16 in the GGUF
        assert torch.allclose(v, want[k], atol=2e-3 * float(want[k].detach().abs().max())), k
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    model.eval(), trained.eval()  # no LoRA dropout
    assert torch.allclose(model(input_ids=ids).logits, trained(input_ids=ids).logits, atol=1e-2)

    data_stage.run(cfg)
    ex = [json.loads(l) for l in open(data_stage.examples_path(cfg))]
    first, second = [e for e in ex if e["split"] == "train"][:2]
    (tmp_path / "own.jsonl").write_text(json.dumps({"id": first["id"], "output": "Re: something else"}) + "\n"
                                        + json.dumps({"id": second["id"], "output": "same"}) + "\n")
    pairs = train.preference_pairs(cfg, {first["id"]: "Budget meeting", second["id"]: "same"})
    assert [(e["id"], c, r) for e, c, r in pairs] == [(first["id"], "Budget meeting", "Re: something else")]
    with pytest.raises(ValueError, match="no answer in"):  # answers to other prompts are refused, not ignored
        train.preference_pairs(cfg, {})

    # a run: the reference is the model it starts from, so its first DPO loss is log 2 whatever the init
    (tmp_path / "own.jsonl").write_text("".join(json.dumps({"id": e["id"], "output": "Re: something else"}) + "\n"
                                                for e in ex if e["split"] == "train"))
    cfg = load_config(cfg_path, ["train.max_steps=3", "train.dpo_pairs=2", "train.lora_dropout=0"])
    train.run(cfg)
    log = [json.loads(l) for l in open(train.train_dir(cfg) / "log.jsonl")]
    meta = json.loads((train.train_dir(cfg) / "meta.json").read_text())
    assert meta["preference_pairs"] == 6 and meta["lora_r"] == 4
    assert abs(log[0]["dpo"] - math.log(2)) < 1e-3 and log[-1]["dpo"] != log[0]["dpo"]


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


@pytest.fixture(scope="session")
def other_vocab(tmp_path_factory):
    """A folder whose tokenizer is not SmolLM2's (a small word-level vocabulary)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("othervocab")
    vocab = {w: i for i, w in enumerate(["<unk>", "hello", "world", "order", "refund"])}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>").save_pretrained(out)
    return out


def test_kd_refused_for_different_tokenizers(tmp_path, shared, other_vocab, tiny_model):
    from distill.train import check_vocab

    c = write_config(tmp_path, shared, extra='kd = "forward_kl"')
    with pytest.raises(ValueError, match="shared tokenizer"):
        check_vocab(load_config(c, [f"teach.teacher={json.dumps(str(other_vocab))}"]))
    check_vocab(load_config(c, [f"teach.teacher={json.dumps(str(tiny_model))}"]))  # same vocabulary: allowed


@pytest.mark.slow
def test_logit_kd_trains_from_stored_topk(tmp_path, shared, tiny_model):
    """Teacher top-k from the 135M GGUF (llama.cpp), a tiny student with the same vocabulary learns with JSD."""
    from assistant import paths
    from distill import teach, train
    from distill.teach import unpack_topk

    c = write_config(tmp_path, shared, tiny_model, extra='kd = "jsd"\nkd_weight = 0.5')
    text = c.read_text().replace("limit = 40", 'limit = 4\ntarget = "teacher"\ntask = "summarize-short"')
    text = text.replace("max_steps = 6", "max_steps = 2")
    c.write_text(text + f'\n[teach]\nteacher = "{paths.base_model_path()}"\ntop_k_logits = 8\nn_ctx = 1024\n')
    cfg = load_config(c, [f"teach.teacher={json.dumps(str(paths.base_model_path()))}"])
    data_stage.run(cfg)
    teach.run(cfg)
    recs = [r for r in load_done(teach.teacher_file(cfg)).values() if r["ok"]]
    assert recs and all("topk" in r for r in recs)
    ids, lp = unpack_topk(recs[0]["topk"])
    assert ids.shape[1] == 8 and (lp <= 0).all()
    # the student side: the vocabularies match (SmolLM2's), then two steps of SFT + JSD
    train.run(cfg)
    log = [json.loads(l) for l in open(train.train_dir(cfg) / "log.jsonl")]
    assert len(log) == 2 and all(r["loss"] > 0 for r in log)


@pytest.mark.slow
def test_training_runs_under_torchrun_ddp(tmp_path, shared, tiny_model):
    c = write_config(tmp_path, shared, tiny_model)
    c.write_text(c.read_text().replace("max_steps = 6", "max_steps = 2"))
    data_stage.run(load_config(c))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                        "-m", "distill.cli", "train", str(c)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    log = _log(tmp_path)
    assert [x["step"] for x in log] == [1, 2]


@pytest.mark.slow
def test_rubric_judge_scores_each_answer_once_and_reuses_the_prefix(tmp_path, shared):
    import llama_cpp
    import numpy as np

    from distill.evaluate import _eval_reusing, judge
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
def test_continuous_batching_gives_the_greedy_answers():
    """Five prompts through two slots: answers end at different steps and later prompts take the
    freed slot mid-batch. Re-read alone, every token of every answer must be the model's top
    choice at its position. Batched kernels add rounding of a few tenths of a logit (so the
    text may differ from one-at-a-time after a near tie); a sequence reading another one's
    cache or the wrong positions would pick tokens many logits below the top."""
    import llama_cpp

    from assistant.engine.batched import BatchedGenerator
    from distill.student import resolve_base

    llm = llama_cpp.Llama(str(resolve_base("smollm2-135m")), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    head = "<|im_start|>system\nYou write short subject lines.<|im_end|>\n<|im_start|>user\n"
    asks = ["Lunch moved to noon on Friday.", "The server is down until Monday morning, sorry.",
            "Please send the Q3 budget by Tuesday.", "Welcome to the team, Ana!", "Invoice 42 is overdue."]
    prompts = [llm.tokenize((head + a + "<|im_end|>\n<|im_start|>assistant\n").encode(), special=True) for a in asks]
    gen = BatchedGenerator(llm, n_seq=2, n_ctx_per_seq=256, n_threads=2)
    got = dict(gen.stream(prompts, max_tokens=24))
    gen.close()
    assert sorted(got) == list(range(5)) and len({len(t) for t in got.values()}) > 1
    for i, p in enumerate(prompts):
        llm.reset()
        llm.eval(p + got[i])
        scores = llm.scores[len(p) - 1 : len(p) - 1 + len(got[i])]
        assert max((float(s.max() - s[t]) for s, t in zip(scores, got[i])), default=0.0) < 1.0, asks[i]


def test_sampled_batches_reuse_a_repeated_prompt_and_stay_in_the_nucleus():
    """Two prompts, four samples each, through three slots: the repeated prompt's samples copy
    the KV cells of the slot that evaluated it. Each sampled token, re-read alone, must lie in
    that position's nucleus (within 1 logit for batched rounding); a slot reading the wrong
    cells would sample tokens far outside it. Same seed, same samples; samples differ."""
    import llama_cpp
    import numpy as np

    from assistant.engine.batched import BatchedGenerator
    from distill.student import resolve_base

    llm = llama_cpp.Llama(str(resolve_base("smollm2-135m")), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    head = "<|im_start|>system\nYou write short subject lines.<|im_end|>\n<|im_start|>user\n"
    asks = ["The quarterly review meeting moved from Tuesday to Thursday at 3pm in room 4.",
            "Your refund for order 1182 was approved and will arrive within five business days."]
    prompts = [llm.tokenize((head + a + "<|im_end|>\n<|im_start|>assistant\n").encode(), special=True)
               for a in asks for _ in range(4)]
    gen = BatchedGenerator(llm, n_seq=3, n_ctx_per_seq=256, n_threads=2)
    got = dict(gen.stream(prompts, max_tokens=12, temperature=1.0, top_p=0.9, seed=7))
    again = dict(gen.stream(prompts, max_tokens=12, temperature=1.0, top_p=0.9, seed=7))
    gen.close()
    assert got == again and sorted(got) == list(range(8))
    assert len({tuple(got[i]) for i in range(4)}) > 1 and len({tuple(got[i]) for i in range(4, 8)}) > 1
    for i, p in enumerate(prompts):
        llm.reset()
        llm.eval(p + got[i])
        for s, t in zip(llm.scores[len(p) - 1 : len(p) - 1 + len(got[i])], got[i]):
            probs = np.exp(s - s.max())
            probs /= probs.sum()
            order = np.argsort(-s)
            nucleus = order[: int(np.searchsorted(np.cumsum(probs[order]), 0.9)) + 1]
            assert s[t] >= s[nucleus].min() - 1.0, (i, t)


def test_teacher_chunks_hold_each_answer_once_across_kills(tmp_path):
    """Finished answers go into numbered chunks of fixed size; a rerun (as after a kill) adds only what no
    chunk holds, the shipped file's answers are never copied, and the chunks read back as pregenerated."""
    from distill.teach import chunk_files, read_pregenerated, write_chunks

    out, folder = tmp_path / "teacher.jsonl", tmp_path / "chunks"
    recs = [{"id": f"e{i}", "task": "summarize-short", "output": f"answer {i}", "ok": True} for i in range(7)]
    out.write_text("".join(json.dumps(r) + "\n" for r in recs[:5]) + '{"id": "torn')
    assert write_chunks(out, folder, 2, skip=frozenset({"e0"})) == 2  # e1..e4; e0 was shipped elsewhere
    assert write_chunks(out, folder, 2) == 0  # nothing new: no empty or repeated chunk
    with open(out, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs[5:])
    assert write_chunks(out, folder, 2, final=True, skip=frozenset({"e0"})) == 1
    assert [p.name for p in chunk_files(folder)] == ["teacher-0001.jsonl.gz", "teacher-0002.jsonl.gz", "teacher-0003.jsonl.gz"]
    ids = [r["id"] for r in read_pregenerated([folder / "teacher-*.jsonl.gz"])]
    assert ids == ["e1", "e2", "e3", "e4", "e5", "e6"]


def test_a_second_teach_on_the_same_run_is_refused(tmp_path):
    from distill.teach import RunLocked, lock

    held = lock(tmp_path / ".lock")
    with pytest.raises(RunLocked, match="in use"):
        lock(tmp_path / ".lock")
    held.close()
    lock(tmp_path / ".lock").close()
