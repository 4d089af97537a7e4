"""Training targets: which answer each example trains on, and its tokens.

    train, val = pairs(cfg)          # (example, target, teacher top-k) and held-out (example, reference, None)
    item = encode(tok, template, *train[0], max_len=512)

A `reference` example trains on the source's own answer, a `teacher` example on the teacher's
accepted answer (summaries cleaned up as the assistant shows them, unless the teacher's exact
tokens are kept for KD). An example's `weight` repeats it: 2.5 gives two copies and, for half
of the examples (seeded by id), a third.
"""

from __future__ import annotations

import random
import re
import sys

from distill.config import Config
from distill.data import read_examples, source_text
from distill.layout import examples_path, require, teacher_file
from distill.packing import Item
from distill.teach import answered, load_done, load_topk, reject_reason, scored_key, unpack_topk


def first(ref):
    """The first reference where an example has several."""
    return ref[0] if isinstance(ref, list) else ref


def as_shown(ex: dict, text: str) -> str:
    """A model's summary as the assistant shows it (the same cleanup); a grounded answer with citations its
    passages back (the teacher's where each is, else the assistant's marks by shared words); others as they are."""
    if ex["task"].startswith("summarize"):
        from assistant.tasks.summarize import clean

        return clean(text, ex["task"].rpartition("-")[2])
    if passages := ex.get("meta", {}).get("passage_texts"):
        # the teacher cited 4 of its first 40 grounded answers: a sentence that cites nothing gets [n] when most of
        # its words come from passage n (the assistant's own fallback, over the passages as the prompt cut them),
        # so that the student learns to cite; marks that point at no passage are dropped
        from assistant.tasks.ask import PASSAGE_CHARS, cite, keep_supported, keep_valid
        from distill.data import told_uncovered

        if told_uncovered(ex):  # no excerpt covers the request: a reply that cites none
            return keep_valid(text, 0)
        passages = [p[:PASSAGE_CHARS] for p in passages]
        # a mark its passage does not back goes (the teacher wrote [1] for passage 3's words), the right ones stay
        return cite(keep_supported(text, passages), passages, fill=True)
    return text


_BRACKETED = re.compile(r"\[([^\[\]\n\d][^\[\]\n]{1,60})\]")  # [Pull up Account], not a [2] mark


def pastes_actions(reply: str, passages: list[str]) -> bool:
    """Whether a grounded reply hands the customer a bracketed action of its passages' agent guidelines
    ("Get Full Name or Account ID for [Pull up Account]", "Enter 'manager' into [Notify Internal Team]"):
    steps for the agent's tools, not for the customer. A bracket the passages lack ([Your Name]) is no paste."""
    return any(f"[{name}]" in p for name in set(_BRACKETED.findall(reply)) for p in passages)


def echoes(answer: str, prompt: str, min_new: int = 5, min_share: float = 0.25) -> bool:
    """Whether a grounded answer adds almost nothing to its question: fewer than `min_new` content words that
    the question lacks, or under `min_share` of its content words (the teacher, told which passage answers,
    sometimes restated the question with a mark: "The customer has submitted a wrong delivery address. [3]";
    or pointed at the passage: "you can follow the guidance provided in [1]"; or copied a ticket). A question
    is read after the prompt's last "Question:"."""
    from assistant.tasks.ask import _CITED, _content

    words = _content(_CITED.sub("", answer))
    new = words - _content(prompt.rpartition("Question:")[2])
    return len(new) < min_new or len(new) < min_share * len(words)


def reordered(ex: dict, target: str, rng: random.Random) -> tuple[dict, str, None]:
    """A grounded `ask` example with its passages in another order (drawn by `rng`), its prompt built again and
    the target's [n] marks renumbered to follow their passages: the source can be anywhere, not mostly first."""
    from assistant import tasks
    from assistant.tasks.ask import _CITED

    meta = ex["meta"]
    order = list(range(len(meta["passage_texts"])))
    while len(order) > 1 and order == sorted(order):
        rng.shuffle(order)
    new_number = {old + 1: new + 1 for new, old in enumerate(order)}
    messages = tasks.task("ask").prompt(meta["question"], [meta["passage_texts"][i] for i in order]).messages
    meta = {**meta, "passages": [meta["passages"][i] for i in order],
            "passage_texts": [meta["passage_texts"][i] for i in order]}
    target = _CITED.sub(lambda m: f"[{new_number.get(int(m.group(1)), int(m.group(1)))}]", target)
    return {**ex, "id": f"{ex['id']}:reordered", "messages": messages, "meta": meta}, target, None


def pairs(cfg: Config) -> tuple[list[tuple[dict, str, dict | None]], list[tuple[dict, str, None]]]:
    """(example, target, teacher top-k) for training, and (example, reference, None) held out."""
    from assistant.tasks.ask import abstains
    from assistant.tasks.facts import invented_facts

    done = load_done(teacher_file(cfg))
    scored = load_topk(cfg) if cfg.train.kd != "none" else {}  # `distill teach --logits`: log-probs added afterwards
    train, val, missing, invented, wrong_abstain, echoed, pasted = [], [], 0, 0, 0, 0, 0
    for ex in read_examples(require(examples_path(cfg), "data")):
        if ex["split"] == "val":
            if first(ex["reference"]):
                val.append((ex, first(ex["reference"]), None))
            continue
        grounded = "passage_texts" in ex.get("meta", {})
        if ex["use"] == "reference":
            target, topk = first(ex["reference"]), None
            if not target or "map" in ex:  # nothing to learn (a thread has no reference of its own)
                continue
            says_uncovered = grounded and abstains(target)
        else:
            rec = done.get(ex["id"]) if answered(done, ex) else None  # an answer to an older prompt is none
            missing += rec is None
            if not rec or not rec.get("ok") or reject_reason(ex["task"], rec["output"]):  # today's filters, too
                continue
            if "map" in ex:  # a long thread: its prompt was built from the teacher's summaries of its messages
                if not rec.get("messages"):
                    continue
                ex = {**ex, "messages": rec["messages"]}
            target = rec["output"]
            topk = rec.get("topk") or scored.get((ex["id"], scored_key(ex["messages"], target)))
            if topk is None:  # top-k targets are the teacher's exact tokens
                target = as_shown(ex, target)
            says_uncovered = grounded and abstains(target)
            if ex.get("teacher_messages") and says_uncovered:  # told which passage answers, it still said none does
                wrong_abstain += 1
                continue
            if ex["task"] == "ask" and grounded and not says_uncovered and \
                    echoes(target, ex["messages"][-1]["content"]):
                echoed += 1
                continue
            if ex["task"] == "reply" and grounded and pastes_actions(rec["output"], ex["meta"]["passage_texts"]):
                pasted += 1
                continue
            if cfg.train.drop_invented and ex["task"].startswith("summarize") and \
                    invented_facts(target, source_text(ex)):
                invented += 1
                continue
        weight = ex["weight"] * (cfg.train.abstain_weight if says_uncovered else 1)
        copies = int(weight) + (random.Random(ex["id"]).random() < weight % 1)
        if cfg.train.shuffle_passages and ex["task"] == "ask" and grounded and topk is None and not says_uncovered \
                and ex["meta"].get("question"):
            draw = random.Random(ex["id"] + ":order")
            train += [reordered(ex, target, draw) if draw.random() < cfg.train.shuffle_passages else (ex, target, None)
                      for _ in range(copies)]
            continue
        train += [(ex, target, topk)] * copies
    ks = {t["shape"][1] for _, _, t in train if t is not None}
    if len(ks) > 1:  # one batch cannot hold both, hours into training
        raise ValueError(f"the teacher's log-probs keep {' and '.join(map(str, sorted(ks)))} a token: give every answer "
                         "the same teach.top_k_logits (`distill teach --logits` scores again those that differ)")
    if missing:  # silently training on the rest would make a different student than the config says
        print(f"train: {missing} examples wait for the teacher's answer and are left out: run `distill teach` first",
              file=sys.stderr)
    if wrong_abstain:
        print(f"train: {wrong_abstain} teacher answers say the passages do not cover a question the hinted passage "
              "answers, and are left out", file=sys.stderr)
    if echoed:
        print(f"train: {echoed} teacher answers to grounded questions add almost nothing to the question (\"The customer "
              "wants to refund $299. [2]\") and are left out", file=sys.stderr)
    if pasted:
        print(f"train: {pasted} teacher replies drafted with knowledge-base passages hand the customer the agent's "
              "bracketed actions (\"[Pull up Account]\") and are left out", file=sys.stderr)
    if invented:
        print(f"train: {invented} teacher summaries state a name, number or address their email does not hold "
              "and are left out (train.drop_invented)", file=sys.stderr)
    return train, val


def encode(tok, template: str, ex: dict, target: str, topk: dict | None, max_len: int) -> Item | None:
    """Prompt (rendered with the chat template llama.cpp uses) + answer tokens; None when over `max_len`."""
    from assistant.engine.models import render_chat

    prompt = tok(render_chat(template, ex["messages"]), add_special_tokens=False)["input_ids"]
    if topk is not None:
        answer, tk = topk["answer_ids"], unpack_topk(topk)
    else:
        answer, tk = tok(target.strip() + "<|im_end|>", add_special_tokens=False)["input_ids"], None
    if len(prompt) + len(answer) > max_len:
        return None
    return Item(prompt + answer, len(prompt), tk)
