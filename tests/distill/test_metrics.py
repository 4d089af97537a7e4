"""The report card's scores: the invented-facts column for summaries, in the scores and in report.md."""

from distill.config import load_config
from distill.metrics import score_rows
from distill.report import render_markdown
from tests.distill.helpers import write_config

EMAIL = "From: Phillip Allen\nPlease confirm the meeting with Jeff on October 30th at 9:00 am in room 3267."


def _row(i: int, task: str) -> dict:
    return {"id": f"e{i}", "task": task, "reference": ["Meeting confirmation"],
            "messages": [{"role": "user", "content": f'"""\n{EMAIL}\n"""\n\nSummarize the email above.'}]}


def test_invented_facts_are_scored_per_system_and_shown(tmp_path, shared):
    cfg = load_config(write_config(tmp_path, shared))
    rows = [_row(i, "summarize-short") for i in range(4)]
    faithful = {f"e{i}": "Phillip asks Jeff to confirm the October 30 meeting at 9:00 am in room 3267." for i in range(4)}
    inventive = dict(faithful, e1="Phillip asks Sarah to meet in Houston.", e2="The meeting costs $500.")
    student, teacher = score_rows(cfg, rows, faithful), score_rows(cfg, rows, inventive)
    assert student["invented"] == 0.0 and teacher["invented"] == 50.0
    report = {"name": "t", "items": 4, "systems": {n: {**s, "decode_tok_s": 1, "peak_rss_mb": 1} for n, s in
                                                   (("student", student), ("teacher", teacher))},
              "tasks": {"summarize-line": {}, "summarize-short": {"student": student, "teacher": teacher}}}
    md = render_markdown(report, [])
    assert "| student | " in md and "invented facts % |" in md
    assert any(line.startswith("| teacher |") and line.endswith(" 50.0 |") for line in md.splitlines())
