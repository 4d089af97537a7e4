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


def test_grounded_scores_read_the_models_own_citations():
    from distill.metrics import grounded_scores

    reset = "To reset a password, open Settings, choose Security and click Reset password. A link is emailed."
    refund = "Refunds are paid to the original card within five business days."

    def row(i, source):
        return {"id": f"q{i}", "meta": {"source": source, "passages": ["reset.md", "refund.md"],
                                        "passage_texts": [reset, refund]}}

    rows = [row(1, "reset.md"), row(2, "refund.md"), row(3, "other.md"), row(4, None), row(5, None)]
    outputs = {
        "q1": "Open Settings, choose Security and click Reset password [1]. Refunds take a week [2].",  # 1 right, 1 wrong
        "q2": "Refunds are paid to the original card within five business days [2]. See also [7].",  # [7]: no passage
        "q3": "Open Settings and click Reset password.",  # no marks; its source was not retrieved
        "q4": "The passages do not cover how to change a username.",
        "q5": "You can change it in your profile [1].",
    }
    s = grounded_scores(rows, outputs)
    from distill.report import grounded_lines

    table = grounded_lines({"tasks": {"ask": {"student": s}, "reply": {}}})
    assert "| student | 100.0 | 50.0 | 100.0 | 50.0 | 0.0 | 0.0 |" in table and not any("`reply`" in line for line in table)
    assert s["retrieved"] == round(100 * 2 / 3, 1)
    assert s["cites"] == 100.0  # of the two whose source was retrieved; q3 could not cite its source
    assert s["abstention_unretrieved"] == 0.0  # q3 answered without its source
    assert s["citation_precision"] == 50.0  # q1 [1] and q2 [2] right; q1 [2] and q5 [1] wrong; [7] dropped
    assert s["source_recall"] == 100.0  # q1 cites reset.md as [1], q2 refund.md as [2]
    assert s["abstention"] == 50.0 and s["false_abstention"] == 0.0


def test_abstention_is_recognised_in_its_usual_forms():
    from assistant.tasks.ask import abstains

    for text in ("The passages do not cover changing a username.", "I couldn't find anything about this in the knowledge base.",
                 "The provided sources don't mention a newsletter.", "There is no information about reviews in the passages.",
                 "This is not covered in the knowledge base.", "The passages don’t cover this.",
                 "None of the passages mention how to delete an account.", "There is no mention of newsletters in the passages.",
                 "The passages don't have any information about deleting an account.", "The answer is not in the passages.",
                 "The passages provided do not cover this topic.", "The knowledge base does not explain how to do that."):
        assert abstains(text), text
    for text in ("Open Settings and click Reset password [1].", "We do not charge a fee for returns [2].",
                 "Please don't share your password with anyone.",
                 "Right-click the file; the context menu doesn't include Delete for shared files [2].",
                 "Open source tools don't mention a fee.",
                 # a source word, then a clause whose subject is someone else (these counted as abstaining)
                 "Based on the information provided, you cannot change the shipping address once it has shipped [2].",
                 "According to passage [1], you can't change the address after the package ships.",
                 "According to the provided context, you do not need to include your order number [2].",
                 "If you receive no information about your refund within 5 days, contact us [1].",
                 "Per the excerpt, customers who did not receive an answer within 24 hours can escalate [1].",
                 "The passages explain that you cannot address a letter to a PO box [2]."):
        assert not abstains(text), text


def test_a_mark_after_the_full_stop_belongs_to_the_sentence_before_it():
    from assistant.tasks.ask import cited_sentences

    pairs = cited_sentences("Open Settings and click Reset password. [1] Refunds take five days. [2][1]\nDone [2].")
    assert pairs == [("Open Settings and click Reset password [1].", 1), ("Refunds take five days [2][1].", 2),
                     ("Refunds take five days [2][1].", 1), ("Done [2].", 2)]


def test_a_single_task_report_still_shows_its_grounded_table():
    from distill.report import grounded_lines

    s = {"cites": 50.0, "citation_precision": 80.0, "source_recall": 70.0, "abstention": 60.0, "false_abstention": 5.0,
         "retrieved": 90.0}
    assert any(line.startswith("| student | 50.0 | 80.0 |") for line in grounded_lines({"task": "ask", "systems": {"student": s}}))
    # a support config's card scored on its `ask` items alone names the task scored, not the config's
    lines = grounded_lines({"task": "support", "scored_task": "ask", "systems": {"student": s}})
    assert any(line.startswith("`ask`, grounded") for line in lines)
