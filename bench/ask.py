"""Grounded commands end to end: `assistant ask` and `assistant reply --kb` on the demo knowledge base.

    python bench/ask.py              # 10 dev questions of data/grounded with a known demo source
    python bench/ask.py --n 20

Each command is a whole process with one empty user dir (students merged beforehand, as after install),
so a time holds Python start, model and embedder loading, retrieval and generation. The first `ask`
indexes the demo KB (its first use): that run is reported on its own row and left out of the median.
Rows also say how often the known source passage was among the sources listed, and how many answers
carry at least one [n] mark. Goal (the grounded issue): a median `ask` of 8 s or less on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402
from inbox import run  # noqa: E402

QUESTIONS = Path(__file__).resolve().parents[1] / "data" / "grounded" / "questions.jsonl.gz"


def questions(n: int) -> list[dict]:
    rows = [json.loads(l) for l in gzip.open(QUESTIONS, "rt", encoding="utf-8")]
    return [r for r in rows if r["kb"] == "demo" and r["split"] == "dev" and r["source"]][:n]


def rows_for(n: int) -> list[dict]:
    qs = questions(n + 1)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        subprocess.run([sys.executable, "-m", "assistant.cli", "models", "prepare"], check=True, capture_output=True,
                       env={**os.environ, "ASSISTANT_HOME": str(home)})
        first, _, _ = run(home, "ask", qs[0]["question"], "--collection", "demo-kb", "--json")
        out.append({"measure": "ask, first use (indexes the demo KB), s", "value": round(first, 1), "goal": "", "detail": ""})
        for command in ("ask", "reply"):
            times, found, cited, rss = [], 0, 0, 0.0
            for q in qs[1:]:
                if command == "ask":
                    dt, mb, stdout = run(home, "ask", q["question"], "--collection", "demo-kb", "--json")
                    text_field = "answer"
                else:
                    ticket = Path(tmp) / "ticket.txt"
                    ticket.write_text(q["question"] + "\n")
                    dt, mb, stdout = run(home, "reply", str(ticket), "--kb", "demo-kb", "--json", "--no-log")
                    text_field = "reply"
                result = json.loads(stdout.strip().splitlines()[-1])
                times.append(dt)
                rss = max(rss, mb)
                found += any(Path(s["path"] or "").name == q["source"] for s in result["sources"])
                cited += "[" in result[text_field]
            label = "ask" if command == "ask" else "reply --kb"
            out.append({"measure": f"{label}, whole command, median of {len(times)} (s)",
                        "value": round(statistics.median(times), 1), "goal": "<= 8" if command == "ask" else "",
                        "detail": f"max {max(times):.1f} s, peak {rss:.0f} MB"})
            out.append({"measure": f"{label}: known source among the listed sources", "value": found, "goal": "",
                        "detail": f"of {len(times)}; {cited} with a [n] mark"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="questions timed (after the first-use one)")
    args = ap.parse_args()
    report("ask", rows_for(args.n), {"n": args.n})


if __name__ == "__main__":
    main()
