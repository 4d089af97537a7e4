"""A thread too long for one prompt is summarized by map-reduce: each message on its own, then the thread
from those summaries, instead of being cut (the messages' summaries go to the cache as any message's)."""

from __future__ import annotations

from assistant.mail import Message, Thread
from assistant.services.summarize import summaries
from assistant.services.summary_cache import SummaryCache
from tests.fakes import FakeModel


def _thread(n: int, words: int) -> Thread:
    msgs = [Message(f"{i}.eml", f"<m{i}@x>", subject="Budget", from_=f"Person {i}", date=f"Mon, {i + 1} Jan 2024",
                    body=f"Point {i}: " + " ".join(f"detail{i}_{k}" for k in range(words))) for i in range(n)]
    return Thread("<m0@x>", msgs)


def test_a_long_thread_is_summarized_from_its_messages_summaries(tmp_path):
    model = FakeModel([f"Person {i} makes point {i}." for i in range(4)] + ["The four agree on the budget."])
    out = list(summaries(model, [_thread(4, 200)], "long", cache=SummaryCache(tmp_path / "s.db")))
    assert [s.summary for s in out] == ["The four agree on the budget."]
    maps, reduce = model.calls[:4], model.calls[4]
    assert all("in one or two sentences" in m[-1]["content"] for m in maps)  # each message's short summary
    text = reduce[-1]["content"]
    assert "email thread" in text and all(f"(in brief) Person {i} makes point {i}." in text for i in range(4))
    assert "detail3_199" not in text  # the bodies are not in the reduce prompt
    # a second run finds the thread in the cache; a new reply reuses the four messages' summaries
    again = FakeModel(["Person 4 disagrees.", "Four agree, one does not."])
    t = _thread(5, 200)
    assert [s.summary for s in summaries(again, [t], "long", cache=SummaryCache(tmp_path / "s.db"))] == [
        "Four agree, one does not."]
    assert len(again.calls) == 2


def test_a_thread_that_fits_is_one_prompt_with_the_bodies():
    model = FakeModel(["Short thread."])
    assert [s.summary for s in summaries(model, [_thread(3, 20)], "short")] == ["Short thread."]
    assert len(model.calls) == 1 and "detail2_19" in model.calls[0][-1]["content"]
