"""Stage 3, `distill train`: fine-tune the student on the teacher's (or the references') answers.

    distill train configs/summarize.toml                 # LoRA on SmolLM2-135M, packed sequences
    distill train configs/summarize.toml --resume        # after a kill: continues from the last checkpoint
    torchrun --nproc_per_node 2 -m distill.cli train configs/summarize.toml   # DDP (gloo on CPU)

`run` reads top to bottom: data → model → resume → `loop` (lr, forward, KD, DPO, backward, step,
eval, log, checkpoint) → save. Loss is on answer tokens only, over packed rows (`distill.packing`);
targets come from `distill.targets`, preference pairs from `distill.dpo`. Checkpoints (trainable
weights + optimizer + RNG, `distill.checkpoint`) every `save_every` steps; the adapter with the
best held-out loss is kept in `best/`, the last in `final/`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from distill import checkpoint
from distill.config import Config, to_dict
from distill.dpo import dpo_backward, encoded_pairs, reference_logps
from distill.layout import checkpoint_path, train_dir
from distill.packing import Epochs, Item, bf16_autocast, collate, pack, row_loss
from distill.student import check_vocab, lora_model
from distill.targets import encode, pairs


@dataclass
class Data:
    """What a run trains on: encoded examples, their micro-batches by index, held-out rows, DPO pairs."""
    items: list[Item]
    batches: Epochs
    val_examples: int
    val_rows: list[list[list[Item]]]
    prefs: list[tuple[Item, Item]]


def init_distributed(threads: int) -> tuple[int, int]:
    """(world size, rank): DDP over gloo under torchrun, else (1, 0). Sets torch's threads per process."""
    from assistant.engine.models import physical_cores

    world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    torch.set_num_threads(threads or max(1, physical_cores() // world))
    return world, rank


def load_data(cfg: Config, world: int) -> Data:
    from distill.student import chat_template, load_tokenizer

    t = cfg.train
    tok, template = load_tokenizer(t.base), chat_template(t.base)
    train_pairs, val_pairs = pairs(cfg)
    items = [i for i in (encode(tok, template, *p, t.max_len) for p in train_pairs) if i]
    if (over := len(train_pairs) - len(items)) and int(os.environ.get("RANK", "0")) == 0:
        print(f"train: {over} of {len(train_pairs)} training examples are longer than train.max_len = {t.max_len} "
              "tokens and are left out", file=sys.stderr)
    val_items = [i for i in (encode(tok, template, *p, t.max_len) for p in val_pairs[: t.eval_examples]) if i]
    if not items:
        raise ValueError("no training examples: run `distill data` (and `distill teach` for teacher targets) first")
    if t.dpo_weight > 0 and world > 1:
        raise ValueError("train.dpo_weight runs in one process: its pairs are not split across DDP ranks")
    prefs = encoded_pairs(cfg, tok, template, train_pairs) if t.dpo_weight > 0 else []
    row_len = t.row_len or t.max_len
    return Data(items, Epochs(items, t.batch_tokens, t.seed, row_len), len(val_items),
                pack(val_items, t.batch_tokens, 0, row_len), prefs)


def build_model(cfg: Config, world: int):
    """(model the loop calls, the student itself, its optimizer): the model is the student wrapped
    for DDP under torchrun. The seed is set first, so LoRA starts the same every run."""
    from distill.student import load_model

    t = cfg.train
    torch.manual_seed(t.seed)
    core = load_model(t.base)
    if t.method == "lora":
        core = lora_model(core, cfg)
    opt = torch.optim.AdamW([p for p in core.parameters() if p.requires_grad], lr=t.lr, weight_decay=0.0)
    model = torch.nn.parallel.DistributedDataParallel(core) if world > 1 else core
    return model, core, opt


def lr_at(step: int, cfg) -> float:
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps)
    return t.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def val_loss(model, core, val_rows) -> float:
    """Mean answer-token loss (no KD) over the held-out rows."""
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for row in val_rows:
            b = collate(row)
            n = int((b["labels"][:, 1:] != -100).sum())
            total += float(row_loss(core, b, "none", 0)[1]) * n
            count += n
    model.train()
    return total / max(1, count)


def write_meta(cfg: Config, data: Data, core) -> None:
    """meta.json: the resolved config and what the run trained on (the manifest reads it)."""
    meta = {"config": to_dict(cfg), "train_examples": len(data.items), "val_examples": data.val_examples,
            "batches_per_epoch": len(data.batches), "preference_pairs": len(data.prefs),
            "bf16_autocast": bf16_autocast(cfg.train.autocast),
            **({"lora_r": core.peft_config["default"].r} if cfg.train.method == "lora" else {})}
    (train_dir(cfg) / "meta.json").write_text(json.dumps(meta, indent=2))


def truncate_log(path: Path, step: int) -> None:
    """Keep the log lines up to `step` (the checkpoint resumed from): the steps after it run again and
    log again, and a line torn by a kill goes."""
    if not path.exists():
        return
    keep = []
    for line in open(path):
        try:
            rec = json.loads(line)
        except ValueError:
            break
        if rec.get("step", 0) <= step:
            keep.append(line if line.endswith("\n") else line + "\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)


def run(cfg: Config, resume: bool = False, json_progress: bool = False) -> Path:
    """Train to `train.max_steps` (from the last checkpoint with `resume`); returns the train folder."""
    t, out, ckpt = cfg.train, train_dir(cfg), checkpoint_path(cfg)
    world, rank = init_distributed(t.threads)
    if t.kd != "none":
        check_vocab(cfg)
    # the checkpoint to resume from, read as data before anything is built
    state = checkpoint.resume_state(ckpt, resume)
    # data
    data = load_data(cfg, world)
    out.mkdir(parents=True, exist_ok=True)
    # model, and the DPO reference: the model as training starts (before a checkpoint is loaded)
    model, core, opt = build_model(cfg, world)
    refs = reference_logps(core, data.prefs, show=not json_progress) if data.prefs else []
    # resume
    step, best = checkpoint.restore(state, ckpt, core, opt) if state else (0, math.inf)
    if rank == 0:
        write_meta(cfg, data, core)
        truncate_log(out / "log.jsonl", step)
    # train
    loop(cfg, model, core, opt, data, refs, step, best, world, rank, json_progress)
    # save
    if rank == 0:
        save_adapter(core, out / "final")
        if not (out / "best").exists():
            save_adapter(core, out / "best")
    if world > 1:
        torch.distributed.destroy_process_group()
    return out


def save_adapter(core, path: Path) -> None:
    """`save_pretrained`, without peft's warning that the base (a GGUF, no Hugging Face config beside it) may have
    a changed vocabulary: training never resizes the embeddings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
        core.save_pretrained(path)


def loop(cfg: Config, model, core, opt, data: Data, refs: list, step: int, best: float, world: int, rank: int,
         json_progress: bool) -> None:
    """Optimizer steps from `step` to `train.max_steps`, each logged; eval and checkpoints on their schedule."""
    from tqdm import tqdm

    t, out = cfg.train, train_dir(cfg)
    params = [p for p in core.parameters() if p.requires_grad]
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    bar = tqdm(total=t.max_steps, initial=step, desc="train", file=sys.stderr, disable=rank != 0 or json_progress,
               dynamic_ncols=True)
    model.train()
    while step < t.max_steps:
        # lr
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        # forward / backward over grad_accum rows (each rank its own rows), with DPO pairs if any
        t0, tokens, all_tokens, loss_sum, dpo_sum = time.time(), 0, 0, 0.0, 0.0
        for micro in range(t.grad_accum):
            b = collate(data.batches.row((step * t.grad_accum + micro) * world + rank))
            loss, _ = row_loss(model, b, t.kd, t.kd_weight, t.autocast)
            (loss / t.grad_accum).backward()
            dpo_sum += dpo_backward(core, data.prefs, refs, step * t.grad_accum + micro, t)
            tokens += int((b["labels"] != -100).sum())
            all_tokens += b["tokens"]
            loss_sum += loss.item() / t.grad_accum
        # step
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        dt = time.time() - t0
        rec = {"event": "step", "step": step, "loss": round(loss_sum, 4), "lr": lr_at(step - 1, cfg),
               "tok_s": round(all_tokens * world / dt, 1), "answer_tok_s": round(tokens * world / dt, 1),
               **({"dpo": round(dpo_sum, 4)} if data.prefs else {})}
        # eval: the weights with the lowest held-out loss go to best/
        if rank == 0 and (step % t.eval_every == 0 or step == t.max_steps) and data.val_rows:
            rec["val_loss"] = round(val_loss(model, core, data.val_rows), 4)
            if rec["val_loss"] < best:
                best = rec["val_loss"]
                save_adapter(core, out / "best")
                (out / "best" / "step.json").write_text(json.dumps({"step": step, "val_loss": best}))
        # log, before the checkpoint: a checkpoint at step k always has log line k behind it
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()
        # checkpoint
        if rank == 0 and (step % t.save_every == 0 or step == t.max_steps):
            checkpoint.save(checkpoint_path(cfg), core, opt, step, best)
        # progress
        if json_progress and rank == 0:
            print(json.dumps({**rec, "max_steps": t.max_steps}), flush=True)
        bar.set_postfix(loss=rec["loss"], tok_s=rec["tok_s"], **({"val": rec["val_loss"]} if "val_loss" in rec else {}))
        bar.update(1)
    bar.close()
    if log:
        log.close()
