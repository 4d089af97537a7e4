"""How often the teacher-as-judge agrees with a person's reading of the same pairs.

    python bench/judge_agreement.py configs/support.toml experiments/judge_check/support-v2-student-vs-teacher.jsonl teacher

The reading file has one line per pair: {"id", "student_wins": 1 | 0.5 | 0, "note"}, written by
reading the request and both answers (experiments/judge_check/). The judge's verdicts come from the
rubric scores `distill eval` cached for the student and the other system. Prints a table and
writes bench/results/judge-<reading file name>.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402


def main() -> None:
    from distill.config import load_config
    from distill.judge import cached_rubric, verdict

    config, reading, other = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    cfg = load_config(config)
    score = {n: {i: d["score"] for i, d in cached_rubric(cfg, n).items()} for n in ("student", other)}
    mine = [json.loads(l) for l in open(reading)]
    pairs = []
    for m in mine:
        if m["id"] in score["student"] and m["id"] in score[other]:
            pairs.append((m["student_wins"], verdict(score["student"][m["id"]] - score[other][m["id"]])))
    exact = sum(a == b for a, b in pairs)
    decided = [(a, b) for a, b in pairs if a != 0.5 and b != 0.5]
    rows = [
        {"measure": f"pairs read (student vs {other})", "value": len(pairs)},
        {"measure": "judge agrees exactly (win / tie / loss)", "value": f"{exact}/{len(pairs)}"},
        {"measure": "agrees where both call a winner", "value": f"{sum(a == b for a, b in decided)}/{len(decided)}"},
        {"measure": "judge and reader opposed (win against loss)", "value": sum(abs(a - b) == 1 for a, b in pairs)},
        {"measure": "student win rate, reader", "value": round(100 * sum(a for a, _ in pairs) / max(1, len(pairs)), 1)},
        {"measure": "student win rate, judge (same pairs)", "value": round(100 * sum(b for _, b in pairs) / max(1, len(pairs)), 1)},
    ]
    report(f"judge-{reading.stem}", rows, {"config": config, "reading": str(reading)})


if __name__ == "__main__":
    main()
