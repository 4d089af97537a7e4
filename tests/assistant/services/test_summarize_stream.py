"""summaries() reads its input lazily and gives results in input order, whatever the model."""

from __future__ import annotations

from itertools import islice

from assistant.mail import MailError, Message
from assistant.services.summarize import summaries
from tests.fakes import FakeModel


def test_ten_thousand_messages_are_streamed_not_held():
    pulled = 0

    def mailbox():
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield MailError(f"{i}.eml", "unreadable") if i % 7 == 3 else \
                Message(f"{i}.eml", f"<{i}@x>", subject=f"Note {i}", body=f"Body of note {i}. " * 20)

    results = summaries(FakeModel(), mailbox(), "line", samples=2)
    first = list(islice(results, 20))
    assert [r.path for r in first] == [f"{i}.eml" for i in range(20)]
    assert [isinstance(r, MailError) for r in first] == [i % 7 == 3 for i in range(20)]
    assert pulled < 40  # a few ahead of what was given out, not the mailbox


def test_a_subject_line_reads_the_head_of_a_long_body_and_a_summary_reads_it_whole():
    from assistant.tasks.summarize import LINE_HEAD_CHARS

    opening = "Please move the budget review to Friday at noon, room 4. "
    tail = "The closing paragraph says the catering order is for twelve people."
    body = opening + "Details follow. " * (LINE_HEAD_CHARS // 16) + tail
    msg = Message(path="long.eml", message_id="<long@x>", subject="Budget", body=body)
    model = FakeModel()
    list(summaries(model, [msg], "line", samples=0))
    line_prompt = model.calls[-1][-1]["content"]
    assert opening.strip() in line_prompt and "catering" not in line_prompt
    assert "Details follow. Details" in line_prompt and " Detai\n" not in line_prompt  # cut at a word
    list(summaries(model, [msg], "short"))
    assert "catering" in model.calls[-1][-1]["content"]
