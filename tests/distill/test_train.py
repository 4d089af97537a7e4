"""`distill train` on small real parts: packing, kill and resume, LoRA from a GGUF adapter, DPO pairs, KD, DDP."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from distill import data as data_stage
from distill.config import load_config
from distill.teach import load_done, unpack_topk
from tests.distill.helpers import read_log, train_cmd, write_config


@pytest.mark.slow
def test_packed_examples_do_not_see_each_other(tiny_model):
    """A packed row must give each example the logits it gets alone (no attention across examples)."""
    import torch

    from distill.student import load_model
    from distill.packing import Item, collate, row_loss

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
    # rows of one example each run without the mask (plain causal): the padded shorter row is still the same
    single = collate([[b], [c]])
    assert single["attention_mask"] is None and collate([[a, b], [c]])["attention_mask"] is not None
    with torch.no_grad():
        assert torch.allclose(row_loss(model, single, "none", 0)[0], (8 * alone + 20 * alone_c) / 28, atol=1e-5)


def test_pack_fills_rows_and_batches_within_budget():
    from distill.packing import Item, pack

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
    subprocess.run(train_cmd(ca), check=True, capture_output=True)
    # kill -9 once the third checkpoint has landed, then resume
    proc = subprocess.Popen(train_cmd(cb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = b / "run" / "train" / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    assert 3 <= killed_at < 6
    subprocess.run(train_cmd(cb, "--resume"), check=True, capture_output=True)
    full, resumed = read_log(a), read_log(b)
    assert full[-1]["step"] == 6
    resumed_by_step = {r["step"]: r for r in resumed}
    assert sorted(resumed_by_step) == list(range(1, 7))
    assert abs(full[-1]["loss"] - resumed_by_step[6]["loss"]) < 1e-3


def test_training_starts_from_a_gguf_adapter_and_pairs_targets_over_own_answers(tmp_path, shared, tiny_model):
    """A LoRA written as GGUF (q/k rows permuted for llama.cpp) comes back as the same peft weights, and
    `train.rejected` answers become DPO pairs against the example's training target."""
    import torch
    from peft import LoraConfig, get_peft_model

    from distill import train
    from distill.convert import write_adapter
    from distill.dpo import preference_pairs
    from distill.layout import train_dir
    from distill.student import LORA_TARGETS, load_model, lora_model

    torch.manual_seed(1)
    trained = get_peft_model(load_model(str(tiny_model)), LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS,
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
    model = lora_model(load_model(str(tiny_model)), cfg)
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
    pairs = preference_pairs(cfg, {first["id"]: "Budget meeting", second["id"]: "same"})
    assert [(e["id"], c, r) for e, c, r in pairs] == [(first["id"], "Budget meeting", "Re: something else")]
    with pytest.raises(ValueError, match="no answer in"):  # answers to other prompts are refused, not ignored
        preference_pairs(cfg, {})

    # a run: the reference is the model it starts from, so its first DPO loss is log 2 whatever the init
    (tmp_path / "own.jsonl").write_text("".join(json.dumps({"id": e["id"], "output": "Re: something else"}) + "\n"
                                                for e in ex if e["split"] == "train"))
    cfg = load_config(cfg_path, ["train.max_steps=3", "train.dpo_pairs=2", "train.lora_dropout=0"])
    train.run(cfg)
    log = [json.loads(l) for l in open(train_dir(cfg) / "log.jsonl")]
    meta = json.loads((train_dir(cfg) / "meta.json").read_text())
    assert meta["preference_pairs"] == 6 and meta["lora_r"] == 4
    assert abs(log[0]["dpo"] - math.log(2)) < 1e-3 and log[-1]["dpo"] != log[0]["dpo"]


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
    from distill.student import check_vocab

    c = write_config(tmp_path, shared, extra='kd = "forward_kl"')
    with pytest.raises(ValueError, match="shared tokenizer"):
        check_vocab(load_config(c, [f"teach.teacher={json.dumps(str(other_vocab))}"]))
    check_vocab(load_config(c, [f"teach.teacher={json.dumps(str(tiny_model))}"]))  # same vocabulary: allowed


@pytest.mark.slow
def test_logit_kd_trains_from_stored_topk(tmp_path, shared, tiny_model):
    """Teacher top-k from the 135M GGUF (llama.cpp), a tiny student with the same vocabulary learns with JSD."""
    from assistant import paths
    from distill import teach, train
    from distill.layout import teacher_file, train_dir

    c = write_config(tmp_path, shared, tiny_model, extra='kd = "jsd"\nkd_weight = 0.5')
    text = c.read_text().replace("limit = 40", 'limit = 4\ntarget = "teacher"\ntask = "summarize-short"')
    text = text.replace("max_steps = 6", "max_steps = 2")
    c.write_text(text + f'\n[teach]\nteacher = "{paths.base_model_path()}"\ntop_k_logits = 8\nn_ctx = 1024\n')
    cfg = load_config(c, [f"teach.teacher={json.dumps(str(paths.base_model_path()))}"])
    data_stage.run(cfg)
    teach.run(cfg)
    recs = [r for r in load_done(teacher_file(cfg)).values() if r["ok"]]
    assert recs and all("topk" in r for r in recs)
    ids, lp = unpack_topk(recs[0]["topk"])
    assert ids.shape[1] == 8 and (lp <= 0).all()
    # the student side: the vocabularies match (SmolLM2's), then two steps of SFT + JSD
    train.run(cfg)
    log = [json.loads(l) for l in open(train_dir(cfg) / "log.jsonl")]
    assert len(log) == 2 and all(r["loss"] > 0 for r in log)


@pytest.mark.slow
def test_logits_are_added_to_answers_made_without_them(tmp_path, shared, tiny_model):
    """A batched teacher run stores no log-probs; `distill teach --logits` adds them afterwards, teacher-forced:
    aligned with the answer's tokens, resumable after a torn line, at most teach.limit, never reused for a
    changed answer, and picked up by training's KD targets."""
    from assistant import paths
    from distill import targets, teach
    from distill.layout import teacher_file

    c = write_config(tmp_path, shared, tiny_model, extra='kd = "jsd"\nmax_len = 1024')  # every answer fits
    text = c.read_text().replace("limit = 40", 'limit = 4\ntarget = "teacher"\ntask = "summarize-short"')
    c.write_text(text + "\n[teach]\nn_ctx = 1024\n")
    teacher = f"teach.teacher={json.dumps(str(paths.base_model_path()))}"
    cfg = load_config(c, [teacher])
    data_stage.run(cfg)
    teach.run(cfg)  # batched: no log-probs
    ok = [r for r in load_done(teacher_file(cfg)).values() if r["ok"]]
    assert len(ok) >= 3 and not any("topk" in r for r in ok)
    with pytest.raises(ValueError, match="top_k_logits is 0"):
        teach.score_logits(cfg)
    capped = load_config(c, [teacher, "teach.top_k_logits=8", "teach.limit=2"])
    teach.score_logits(capped)
    with open(teach.topk_file(cfg), "a") as f:
        f.write('{"id": "torn')  # a kill mid-line
    teach.score_logits(capped)  # again: the torn line is cut, nothing more, nothing twice
    lines = teach.topk_file(cfg).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    teach.score_logits(load_config(c, [teacher, "teach.top_k_logits=8"]))
    assert len(teach.load_topk(cfg)) == len(ok) == len(teach.topk_file(cfg).read_text().splitlines())

    train_items, _ = targets.pairs(cfg)
    assert train_items and all(t is not None for _, _, t in train_items)
    agree = total = 0
    for _, target, t in train_items:  # the teacher answered greedily: its best token is mostly the one it wrote
        ids, lp = unpack_topk(t)
        assert ids.shape == (len(t["answer_ids"]), 8) and (lp <= 0).all()
        best = ids[range(len(ids)), lp.argmax(axis=1)]
        agree, total = agree + int((best == t["answer_ids"]).sum()), total + len(best)
    assert agree / total > 0.8

    recs = [json.loads(line) for line in teacher_file(cfg).read_text().splitlines()]
    changed = next(r for r in recs if r["ok"])
    changed["output"] = "A different summary of the email."
    teacher_file(cfg).write_text("".join(json.dumps(r) + "\n" for r in recs))
    by_id = {ex["id"]: t for ex, _, t in targets.pairs(cfg)[0]}
    assert by_id[changed["id"]] is None  # the old answer's log-probs are not the new one's


@pytest.mark.slow
def test_training_runs_under_torchrun_ddp(tmp_path, shared, tiny_model):
    c = write_config(tmp_path, shared, tiny_model)
    c.write_text(c.read_text().replace("max_steps = 6", "max_steps = 2"))
    data_stage.run(load_config(c))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                        "-m", "distill.cli", "train", str(c)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    log = read_log(tmp_path)
    assert [x["step"] for x in log] == [1, 2]
