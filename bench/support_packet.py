"""Answer support, read blind: is each sentence of a grounded answer backed by a passage it cites?

    python bench/support_packet.py packet configs/support-grounded.toml ask 40 > packet.md
    # read packet.md; write one line per answer to verdicts.jsonl:
    #   {"answer": "7B", "sentences": "BBUN"}   one letter per numbered sentence, in order:
    #   B = a passage it cites backs it, U = a claim no cited passage backs (or one that cites nothing),
    #   N = no claim (a greeting, a sign-off, an offer of help, saying the passages do not cover it)
    python bench/support_packet.py unblind configs/support-grounded.toml ask 40 verdicts.jsonl
    # prints each system's support: backed sentences / sentences that make a claim, and writes
    # bench/results/support-<task>.json

TASK is `ask` or `reply+kb` (replies drafted with knowledge-base passages). The answers are the ones
`distill eval` wrote (<run>/eval/outputs.jsonl, `--outputs=FILE` for another), shown as the assistant
shows them: marks that point at no passage dropped, and, for an answer that cites nothing, the
assistant's own marks by shared words. Items are the first N answerable held-out questions; under each
question's passages, every system's answer appears in an order drawn from the item's id (`--seed=S` for
another order, for a second reader), labelled by letter only.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys

from common import report

LETTERS = "BUN"


def sentences(answer: str) -> list[str]:
    """The answer's sentences as `cited_sentences` cuts them: each with the marks that close it."""
    from assistant.tasks.ask import sentence_lines

    return [s.strip() for line in sentence_lines(answer) for s in line if s.strip()]


def shown(answer: str, passages: list[str]) -> str:
    from assistant.tasks.ask import PASSAGE_CHARS, cite

    return cite(answer, [p[:PASSAGE_CHARS] for p in passages])


def entries(config: str, task: str, n: int, seed: str = "", outputs: str = "") -> list[tuple[dict, list[tuple[str, str]]]]:
    """[(eval item, [(label, system)])] for the first n answerable items of a task, systems in a seeded order."""
    from distill.config import load_config
    from distill.evaluate import group_of, items
    from distill.layout import eval_dir

    cfg = load_config(config)
    answers = {a["id"]: a for a in map(json.loads, open(outputs or eval_dir(cfg) / "outputs.jsonl"))}
    rows = [ex for ex in items(cfg) if group_of(ex) == task and ex["meta"].get("source") and ex["id"] in answers]
    out = []
    for i, ex in enumerate(rows[:n], 1):
        names = sorted(k for k in answers[ex["id"]] if k != "id")
        random.Random(hashlib.sha1(f"{seed}{ex['id']}".encode()).digest()).shuffle(names)
        out.append(({**ex, "answers": answers[ex["id"]]}, [(f"{i}{'ABCDEFGH'[j]}", s) for j, s in enumerate(names)]))
    return out


def asked(prompt: str) -> str:
    """The question (after the fenced sources of `ask`) or the customer's message (after a reply's knowledge base)."""
    for marker in ("SOURCES>>>", "Customer message:"):
        if marker in prompt:
            return prompt.rpartition(marker)[2].strip().strip('"').strip()
    return prompt[-1500:]


def packet(chosen: list[tuple[dict, list[tuple[str, str]]]]) -> str:
    parts = []
    for ex, labelled in chosen:
        passages = ex["meta"]["passage_texts"]
        question = asked(ex["messages"][-1]["content"])
        parts.append(f"## Question {labelled[0][0][:-1]}\n\n{question.strip()}\n\n" + "\n\n".join(
            f"**Passage [{k}]**\n```\n{p[:1200]}\n```" for k, p in enumerate(passages, 1)))
        for label, system in labelled:
            lines = sentences(shown(ex["answers"][system], passages)) or ["(empty)"]
            parts.append(f"### Answer {label}\n\n" + "\n".join(f"{k}. {s}" for k, s in enumerate(lines, 1)))
    return "\n\n".join(parts) + "\n"


def tally(chosen: list[tuple[dict, list[tuple[str, str]]]], verdicts: list[dict]) -> dict[str, dict]:
    """Per system: backed and unbacked sentences over the answers with a verdict. A verdict whose letters do
    not match the answer's sentences is reported and left out."""
    by_label = {str(v.get("answer", "")).upper(): v for v in verdicts}
    counts: dict[str, dict] = {}
    for ex, labelled in chosen:
        for label, system in labelled:
            c = counts.setdefault(system, {"answers": 0, "backed": 0, "unbacked": 0, "no_claim": 0})
            v = by_label.get(label)
            if v is None:
                print(f"answer {label}: no verdict", file=sys.stderr)
                continue
            letters = re.sub(r"\s", "", str(v.get("sentences", ""))).upper()
            want = len(sentences(shown(ex["answers"][system], ex["meta"]["passage_texts"]))) or 1
            if len(letters) != want or set(letters) - set(LETTERS):
                print(f"answer {label}: {len(letters)} letters for {want} sentences, or not all of {LETTERS}", file=sys.stderr)
                continue
            c["answers"] += 1
            c["backed"] += letters.count("B")
            c["unbacked"] += letters.count("U")
            c["no_claim"] += letters.count("N")
    for c in counts.values():
        claims = c["backed"] + c["unbacked"]
        c["support"] = round(100 * c["backed"] / claims, 1) if claims else None
    return counts


def main() -> None:
    opts = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--") and "=" in a}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) < (5 if args[:1] == ["unblind"] else 4):
        sys.exit(__doc__)
    command, config, task, n = args[:4]
    chosen = entries(config, task, int(n), opts.get("--seed", ""), opts.get("--outputs", ""))
    if command == "packet":
        print(packet(chosen), end="")
    elif command == "unblind":
        counts = tally(chosen, [json.loads(l) for l in open(args[4]) if l.strip()])
        report(f"support-{task.replace('+', '-')}", [{"system": s, **c} for s, c in counts.items()],
               {"config": config, "task": task, "items": len(chosen)})
    else:
        sys.exit(f"unknown command {command!r}: packet or unblind")


if __name__ == "__main__":
    main()
