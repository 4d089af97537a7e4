"""The blind answer-support packet: what the reader sees is what the assistant shows, and the tally
maps letters back to systems."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import support_packet as sp  # noqa: E402

PASSAGES = ["To reset your password, open Settings and choose Security, then Reset password.",
            "Refunds are paid to the original card within five business days."]


def item(answers: dict) -> dict:
    prompt = "<<<SOURCES\n[1] ...\nSOURCES>>>\n\nQuestion: How do I reset my password?"
    return {"id": "q1", "messages": [{"role": "user", "content": prompt}], "answers": answers,
            "meta": {"passage_texts": PASSAGES, "source": "a.md"}}


def test_sentences_carry_their_marks_wherever_the_model_put_them():
    assert sp.sentences("Open Settings [1]. Refunds take five days. [2]\nThanks!") == [
        "Open Settings [1].", "Refunds take five days [2].", "Thanks!"]


def test_an_answer_that_cites_nothing_is_shown_with_the_assistants_marks_and_bad_marks_go():
    shown = sp.shown("Open Settings and choose Security, then Reset password to reset your password.", PASSAGES)
    assert shown.endswith("[1].")
    assert "[7]" not in sp.shown("Refunds are paid within five days [7].", PASSAGES)


def test_the_packet_names_no_system_and_the_tally_maps_letters_back():
    ex = item({"student": "Open Settings, choose Security, then Reset password [1]. Call us anytime.",
               "teacher": "Refunds are paid to the original card [2].", "base": "I do not know."})
    chosen = [(ex, [("1A", "teacher"), ("1B", "student"), ("1C", "base")])]
    text = sp.packet(chosen)
    assert "How do I reset my password?" in text and "Passage [2]" in text
    assert not any(name in text for name in ("student", "teacher", "base"))
    counts = sp.tally(chosen, [{"answer": "1a", "sentences": "U"}, {"answer": "1B", "sentences": "B N"},
                               {"answer": "1C", "sentences": "UU"}])  # 1C: two letters for one sentence
    assert counts["student"] == {"answers": 1, "backed": 1, "unbacked": 0, "no_claim": 1, "support": 100.0}
    assert counts["teacher"]["support"] == 0.0
    assert counts["base"]["answers"] == 0 and counts["base"]["support"] is None


def test_the_question_is_read_from_either_prompt():
    assert sp.asked('Knowledge base:\n"""\n[1] x\n"""\n\nCustomer message:\n"""\nWhere is my order?\n"""') == "Where is my order?"
    assert sp.asked(item({})["messages"][0]["content"]) == "Question: How do I reset my password?"
