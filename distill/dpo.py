"""DPO on preference pairs, mixed into the fine-tuning loss (`train.dpo_weight`).

    prefs = encoded_pairs(cfg, tok, template, train_pairs)      # [(chosen Item, rejected Item)]
    refs = reference_logps(model, prefs)                        # before training: the model it starts from
    dpo = dpo_backward(model, prefs, refs, micro_index, cfg.train)

Pairs are the user's edited final over the model's draft (feedback data), and, for each answer
in `train.rejected` files (a model's own answers, `distill answers`), the example's training
target over that answer: self-play as SPIN. The reference is the model training starts from.
"""

from __future__ import annotations

import random
import sys

import torch

from distill.config import Config, TrainConfig
from distill.data import read_examples
from distill.layout import examples_path
from distill.packing import Item
from distill.targets import as_shown, encode, first
from distill.teach import read_pregenerated


def preference_pairs(cfg: Config, targets: dict[str, str] | None = None) -> list[tuple[dict, str, str]]:
    """(example, chosen, rejected): the user's final text over the model's draft, where they differ;
    and, for each answer in `train.rejected` files, the example's training target over that answer."""
    files = [cfg.resolve(p) for p in cfg.train.rejected]
    for f in files:
        if not f.exists():
            raise ValueError(f"train.rejected: {f} does not exist (write it with `distill answers`)")
    rejected = {r["id"]: r["output"] for r in read_pregenerated(files) if r.get("output")}
    out, matched = [], 0
    for ex in read_examples(examples_path(cfg)):
        if ex["split"] != "train" or "map" in ex:  # a long thread's prompt is the teacher's reduce prompt, not this
            continue
        draft, final = (ex.get("meta") or {}).get("draft", ""), first(ex["reference"])
        if ex["id"] in rejected and targets and ex["id"] in targets:
            draft, final = rejected[ex["id"]], targets[ex["id"]]
            matched += 1
            draft = as_shown(ex, draft)
        if draft and final and draft.strip() != final.strip():
            out.append((ex, final, draft))
    if files and not matched:
        raise ValueError(f"train.rejected: no answer in {', '.join(map(str, files))} belongs to a training example "
                         "with a target (write them with `distill answers` on this config's data)")
    return out


def answer_logp(model, item: Item) -> torch.Tensor:
    """Sum of log-probs of the answer tokens of one example."""
    ids = torch.tensor([item.ids])
    keep = torch.arange(item.n_prompt - 1, len(item.ids) - 1)
    logits = model(input_ids=ids, logits_to_keep=keep).logits[0].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[0, keep + 1].unsqueeze(-1)).sum()


def dpo_loss(core, chosen: Item, rejected: Item, beta: float, ref: tuple[float, float]) -> torch.Tensor:
    """DPO against a reference model: `ref` = its answer log-probs (chosen, rejected), from `reference_logps`."""
    pc, pr = answer_logp(core, chosen), answer_logp(core, rejected)
    return -torch.nn.functional.logsigmoid(beta * ((pc - ref[0]) - (pr - ref[1])))


def reference_logps(model, prefs: list[tuple[Item, Item]], show: bool = True) -> list[tuple[float, float]]:
    """Answer log-probs of each (chosen, rejected) pair under the model as it is now: the DPO reference.

    Computed before training (and again before a resume, from the same starting weights), so the
    reference is the model training starts from: the base for a fresh LoRA, the previous student
    with `train.init` (as SPIN), the whole model for full fine-tuning."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = [(float(answer_logp(model, c)), float(answer_logp(model, r)))
               for c, r in tqdm(prefs, desc="dpo reference", file=sys.stderr, disable=not show, dynamic_ncols=True)]
    model.train(was_training)
    return out


def encoded_pairs(cfg: Config, tok, template: str, train_pairs: list[tuple[dict, str, dict | None]]) -> list[tuple[Item, Item]]:
    """The (chosen, rejected) pairs this run reaches, tokenized, in a seeded order."""
    t = cfg.train
    targets = {ex["id"]: target for ex, target, _ in train_pairs}
    prefs = []
    for ex, chosen, rejected in preference_pairs(cfg, targets):
        c, r = encode(tok, template, ex, chosen, None, t.max_len), encode(tok, template, ex, rejected, None, t.max_len)
        if c and r:
            prefs.append((c, r))
    random.Random(t.seed).shuffle(prefs)
    return prefs[: t.max_steps * t.grad_accum * t.dpo_pairs]


def dpo_backward(core, prefs: list[tuple[Item, Item]], refs: list[tuple[float, float]], micro: int, t: TrainConfig) -> float:
    """Backward through the DPO loss of micro-batch `micro`'s `train.dpo_pairs` pairs (cycling through
    `prefs`); returns that loss, scaled as it entered the gradient before `dpo_weight`."""
    total = 0.0
    for k in range(t.dpo_pairs if prefs else 0):
        i = (micro * t.dpo_pairs + k) % len(prefs)
        d = dpo_loss(core, *prefs[i], t.dpo_beta, refs[i]) / (t.grad_accum * t.dpo_pairs)
        (t.dpo_weight * d).backward()
        total += d.item()
    return total
