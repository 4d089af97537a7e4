"""Passages for grounded answers: one number per source, none pointing at a page another number shows."""

from __future__ import annotations

from assistant.index import Hit
from assistant.services.retrieval import by_source
from assistant.tasks.ask import cite, keep_valid


def hit(path: str, chunk: int, text: str, score: float, message_id: str | None = None) -> Hit:
    return Hit(path, chunk, score, text[:40], text, title=path, message_id=message_id)


def test_chunks_of_one_source_are_one_passage_best_chunk_first():
    hits = [hit("kb/reset.md", 2, "Open Settings and choose Reset password.", 3.0),
            hit("kb/refund.md", 0, "Refunds take five business days.", 2.5),
            hit("kb/reset.md", 0, "Password help for customers.", 2.0),
            hit("kb/address.md", 1, "Change the address before the order ships.", 1.0)]
    out = by_source(hits, 4)
    assert [h.path for h in out] == ["kb/reset.md", "kb/refund.md", "kb/address.md"]
    assert out[0].text.index("Reset password") < out[0].text.index("Password help")
    assert by_source(hits, 2) == out[:2]


def test_the_same_page_in_two_places_is_numbered_once():
    page = "To reset your password, open Settings, choose Security and click Reset password."
    hits = [hit("kb/a/reset.md", 0, page, 3.0), hit("kb/copy/reset.md", 0, page.upper() + "  ", 2.9),
            hit("mail/1.eml", 0, "Thanks, that worked.", 1.0, message_id="<m1@example.org>"),
            hit("mail/1.eml", 0, "A different message in the same mbox file.", 0.9, message_id="<m2@example.org>")]
    out = by_source(hits, 4)
    assert [(h.path, h.message_id) for h in out] == [("kb/a/reset.md", None), ("mail/1.eml", "<m1@example.org>"),
                                                    ("mail/1.eml", "<m2@example.org>")]


def test_marks_that_point_at_no_passage_are_dropped():
    passages = ["Refunds take five business days.", "Open Settings to reset a password."]
    assert keep_valid("Refunds take five days [1]. See also [3] and [0].", 2) == "Refunds take five days [1]. See also and."
    assert cite("Reset it in Settings [2]. More in [9].", passages) == "Reset it in Settings [2]. More in."
    assert cite("Reset it in Settings [7].", []) == "Reset it in Settings."
    # a model that cited only out of range gets the overlap marks instead
    marked = cite("Open Settings to reset a password quickly today [5].", passages)
    assert marked.endswith("[2].") and "[5]" not in marked
