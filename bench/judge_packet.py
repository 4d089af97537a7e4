"""A blind reading packet: pairs of answers to read without knowing which system wrote which.

    python bench/judge_packet.py packet configs/summarize.toml teacher summarize-long 20 > packet.md
    # read packet.md; write one line per pair to verdicts.jsonl: {"pair": 3, "better": "A" | "B" | "tie", "note": "..."}
    python bench/judge_packet.py unblind configs/summarize.toml teacher summarize-long 20 verdicts.jsonl \\
        > experiments/judge_check/summarize-student-vs-teacher.jsonl
    python bench/judge_agreement.py configs/summarize.toml experiments/judge_check/summarize-student-vs-teacher.jsonl teacher

`--outputs=FILE` reads the answers from FILE instead (the same JSON lines).

Add --flip to both commands for the same pairs with each pair's sides swapped (write the result to
a `-flipped.jsonl` file): reading both orders shows how much the reader favours a position.

The answers are the ones `distill eval` wrote (<run>/eval/outputs.jsonl: every system's answer to
every held-out item, whether or not the rubric judge ran); unblind before the next `distill eval` of
that config, which may change them. Which side is the student is drawn per pair from its id, the
same way in both commands; the packet never names the systems. The student's answer sits on the same side in its vs-teacher and
vs-base packets, so give each packet its own reader.
"""

from __future__ import annotations

import hashlib
import json
import sys


def pairs(config: str, other: str, task: str, n: int, flip: bool = False,
          outputs: str = "") -> list[tuple[dict, str, str, bool]]:
    """[(eval item, answer A, answer B, the student is A)] for the first n items of one task."""
    from distill.config import load_config
    from distill.evaluate import items
    from distill.layout import eval_dir

    cfg = load_config(config)
    answers = [json.loads(line) for line in open(outputs or eval_dir(cfg) / "outputs.jsonl")]
    out = {name: {a["id"]: a[name] for a in answers if name in a} for name in ("student", other)}
    rows = [ex for ex in items(cfg) if ex.get("task") == task and ex["id"] in out["student"] and ex["id"] in out[other]]
    result = []
    for ex in rows[:n]:
        student_first = (hashlib.sha1(ex["id"].encode()).digest()[0] % 2 == 0) != flip
        s, o = out["student"][ex["id"]], out[other][ex["id"]]
        result.append((ex, *((s, o) if student_first else (o, s)), student_first))
    return result


def source(ex: dict) -> str:
    """What the reader checks the answers against: a long thread whole (its prompt held only the cut that
    fits, or its messages' summaries), anything else as the prompt fenced it."""
    from distill.judge import _judge_input

    if "thread" not in ex:
        return _judge_input(ex)
    t = ex["thread"]
    return f"Subject: {t['subject']}\n" + "\n".join(f"--- {m['sender']} ({m['date']})\n{m['body']}" for m in t["messages"])


def main() -> None:
    from distill.judge import _asked_for

    flip = "--flip" in sys.argv
    outputs = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--outputs=")), "")
    args = [a for a in sys.argv[1:] if a != "--flip" and not a.startswith("--outputs=")]
    if len(args) < (6 if args[:1] == ["unblind"] else 5):
        sys.exit(__doc__)
    command, config, other, task, n = args[:5]
    chosen = pairs(config, other, task, int(n), flip, outputs)
    if command == "packet":
        for i, (ex, a, b, _) in enumerate(chosen, 1):
            print(f"## Pair {i}\n\n{_asked_for(task)}\n```\n{source(ex)[:6000]}\n```\n\n**A:** {a or '(empty)'}\n\n"
                  f"**B:** {b or '(empty)'}\n")
    elif command == "unblind":
        verdicts = {int(v["pair"]): v for v in map(json.loads, open(args[5]))}
        for i, (ex, _, _, student_first) in enumerate(chosen, 1):
            v = verdicts.get(i)
            if v is None:
                print(f"pair {i}: no verdict", file=sys.stderr)
                continue
            better = str(v.get("better", "")).strip().upper()
            if better not in ("A", "B", "TIE"):
                print(f"pair {i}: 'better' must be A, B or tie, not {v.get('better')!r}", file=sys.stderr)
                continue
            wins = {"TIE": 0.5, "A": 1.0 if student_first else 0.0, "B": 0.0 if student_first else 1.0}[better]
            print(json.dumps({"id": ex["id"], "student_wins": wins, "student_was": "A" if student_first else "B",
                              "note": v.get("note", "")}))
    else:
        sys.exit(f"unknown command {command!r}: packet or unblind")


if __name__ == "__main__":
    main()
