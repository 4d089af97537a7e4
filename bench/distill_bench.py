"""Distillation benchmark: teacher throughput, training throughput, export fidelity.

    python bench/distill_bench.py --config configs/summarize.toml [--skip-teacher]

Rows: teacher examples/hour batched (llama.cpp multi-sequence) vs one at a time on the same
prompts (goal ≥ 2.5×); LoRA training on real task data, useful (non-padding) tokens/s packed vs
padded (goal ≥ 250), peak RSS; top-1 agreement of each export kind with torch, and decode speed
of adapter-on-base vs merged Q8_0.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, report  # noqa: E402


def teacher_rows(cfg, n: int, batch: int, task: str = "reply") -> list[dict]:
    """The teacher on the same n prompts, one at a time and continuously batched in `batch` slots (greedy both ways).

    `reply`: support replies to Bitext requests (up to 256 tokens, the local teacher's main job);
    `short`: short summaries of AESLC dev emails (80 tokens, prompt-bound, so batching helps less).
    """
    import csv
    from dataclasses import replace

    from assistant.tasks import reply, summarize
    from distill.teach import LocalTeacher
    from distill.teachers import ensure_teacher

    if task == "reply":
        with open(SHARED / "bitext-customer-support" / "bitext_v2_train.csv", newline="") as f:
            rows = [r["instruction"] for _, r in zip(range(n), csv.DictReader(f))]
        prompts, max_tokens = [reply.build_messages(r)[0] for r in rows], 256
    else:
        bodies = [json.loads(l)["email_body"] for l in open(SHARED / "aeslc" / "dev.jsonl")][:n]
        prompts, max_tokens = [summarize.build_messages(b, "short")[0] for b in bodies], 80
    t = LocalTeacher(ensure_teacher(cfg.teach.teacher), replace(cfg.teach, batch=batch))
    t0 = time.time()
    one = [t.generate(m, max_tokens) for m in prompts]
    seq = time.time() - t0
    t0 = time.time()
    many = dict(t.generate_many(prompts, max_tokens))
    bat = time.time() - t0
    same = sum(many[i] == one[i] for i in range(n)) / n
    what = "support replies" if task == "reply" else "short summaries"
    return [{"measure": f"teacher examples/hour, one at a time ({what})", "value": round(n / seq * 3600)},
            {"measure": f"teacher examples/hour, batched x{batch}", "value": round(n / bat * 3600)},
            {"measure": "teacher batched / one at a time", "value": round(seq / bat, 2), "goal": ">= 2.5"},
            {"measure": "teacher batched answers identical to one at a time", "value": round(same, 2)}]


def training_rows(cfg, steps: int = 6) -> list[dict]:
    """Optimizer steps on real task data; the first step of each kind is a warm-up and not counted."""
    import torch
    from peft import LoraConfig, get_peft_model

    from distill import train as T
    from distill.student import LORA_TARGETS, chat_template, load_model, load_tokenizer

    tok, tpl = load_tokenizer(cfg.train.base), chat_template(cfg.train.base)
    pairs, _ = T.pairs(cfg)
    items = [i for i in (T.encode(tok, tpl, *p, cfg.train.max_len) for p in pairs[:400]) if i]
    model = get_peft_model(load_model(cfg.train.base), LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGETS,
                                                                    task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rows = T.pack(items, cfg.train.batch_tokens, 0, cfg.train.max_len)

    def step(loss):
        loss.backward()
        opt.step()
        opt.zero_grad()

    useful, t0 = 0, time.time()
    for n, r in enumerate(rows[: steps + 1]):
        if n == 1:
            useful, t0 = 0, time.time()
        b = T.collate(r)
        step(T.row_loss(model, b, "none", 0, cfg.train.autocast)[0])
        useful += b["tokens"]
    packed = useful / (time.time() - t0)
    # padded: 4 examples per batch padded to the longest, the usual collator
    useful, t0 = 0, time.time()
    for i in range(steps + 1):
        if i == 1:
            useful, t0 = 0, time.time()
        group = items[i * 4 : i * 4 + 4]
        width = max(len(it.ids) for it in group)
        ids = torch.tensor([it.ids + [0] * (width - len(it.ids)) for it in group])
        mask = torch.tensor([[1] * len(it.ids) + [0] * (width - len(it.ids)) for it in group])
        labels = torch.tensor([[-100] * it.n_prompt + it.ids[it.n_prompt :] + [-100] * (width - len(it.ids)) for it in group])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.train.autocast == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        step(loss)
        useful += int(mask.sum())
    padded = useful / (time.time() - t0)
    return [{"measure": "training useful tokens/s, padded 4 per batch", "value": round(padded, 1)},
            {"measure": f"training useful tokens/s, packed rows of {cfg.train.max_len} in {cfg.train.batch_tokens}-token batches", "value": round(packed, 1), "goal": ">= 250"},
            {"measure": "training peak RSS (MB)", "value": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}]


def export_rows(cfg) -> list[dict]:
    from peft import PeftModel

    from assistant.engine.models import render_chat
    from distill import export as E
    from distill.data import read_examples
    from distill.layout import examples_path
    from distill.student import chat_template, load_model, load_tokenizer, resolve_base

    base = resolve_base(cfg.train.base)
    best = cfg.run_dir / "train" / "best"
    tok, tpl = load_tokenizer(cfg.train.base), chat_template(cfg.train.base)
    held = [e for e in read_examples(examples_path(cfg)) if e["split"] == "val"][:8]
    toks = [tok(render_chat(tpl, e["messages"]), add_special_tokens=False)["input_ids"][:384] for e in held]
    student = PeftModel.from_pretrained(load_model(cfg.train.base), str(best))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        adapter = E.write_adapter(best, student.base_model.model.config, d / "adapter.gguf")
        rows.append({"measure": "top-1 agreement, LoRA adapter GGUF on the Q4_1 base",
                     "value": round(E.top1_agreement(student, base, adapter, toks), 4)})
        rows.append({"measure": "top-1 agreement, Q4_1 base without the adapter (control)",
                     "value": round(E.top1_agreement(student, base, None, toks), 4)})
        merged = student.merge_and_unload()
        f16 = E.write_merged(merged, base, d / "f16.gguf")
        files = {"F16": f16}
        for q in ("Q8_0", "Q4_K_M"):
            files[q] = E.quantize(f16, d / f"{q}.gguf", q)
        for q, f in files.items():
            rows.append({"measure": f"top-1 agreement, merged {q} ({f.stat().st_size / 1e6:.0f} MB)",
                         "value": round(E.top1_agreement(merged, f, None, toks), 4)})
        rows.append({"measure": "decode tok/s, adapter on Q4_1 base", "value": decode_speed(base, adapter)})
        rows.append({"measure": "decode tok/s, merged Q8_0", "value": decode_speed(files["Q8_0"], None)})
    return rows


def decode_speed(model: Path, lora: Path | None) -> float:
    import llama_cpp

    from assistant.engine.models import physical_cores

    llm = llama_cpp.Llama(str(model), lora_path=str(lora) if lora else None, n_ctx=1024, n_threads=physical_cores(),
                          verbose=False)
    no_eos = {t: -1e9 for t in {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}}
    best = 0.0
    for _ in range(2):
        llm.reset()
        t0 = time.time()
        out = llm.create_completion("Dear customer, about your order:", max_tokens=128, temperature=0.0, logit_bias=no_eos)
        best = max(best, out["usage"]["completion_tokens"] / (time.time() - t0))
    llm.close()
    return round(best, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/summarize.toml")
    ap.add_argument("--teacher-prompts", type=int, default=32, help="more than --batch, so finished slots are refilled")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--teacher-task", choices=["reply", "short"], default="reply")
    ap.add_argument("--skip-teacher", action="store_true")
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--only-teacher", action="store_true", help="teacher rows only, written as results/distill-teacher.json")
    args = ap.parse_args()
    from distill.config import load_config

    cfg = load_config(args.config)
    rows = []
    if not args.skip_teacher:
        rows += teacher_rows(cfg, args.teacher_prompts, args.batch, args.teacher_task)
    if args.only_teacher:
        return report("distill-teacher", rows, {"config": args.config, "prompts": args.teacher_prompts})
    rows += training_rows(cfg)
    if not args.skip_export:
        rows += export_rows(cfg)
    report("distill", rows, {"config": args.config})


if __name__ == "__main__":
    main()
