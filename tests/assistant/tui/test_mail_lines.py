"""The mail screen's one-line summaries under Pilot: filled in the background newest thread first,
the list usable meanwhile, and read back from the summary cache on the next launch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assistant.tui.app import make_app
from tests.fakes import FakeModel

DEMO = Path(__file__).resolve().parents[3] / "assets" / "demo" / "mailbox"


def _lines(app) -> list[str]:
    table = app.screen.query_one("#threads")
    return [str(table.get_cell_at((i, 1))) for i in range(table.row_count)]


async def _settle(pilot, app):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.asyncio
async def test_one_line_summaries_fill_in_and_persist_across_launches():
    model = FakeModel()
    app = make_app(model=model, mail_path=DEMO)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        await _settle(pilot, app)
        assert _lines(app) == ["Fine, thanks"] * 5
        assert len(model.calls) == 5 * 9  # a consensus line per thread
    again = FakeModel()
    app = make_app(model=again, mail_path=DEMO)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        await _settle(pilot, app)
        assert _lines(app) == ["Fine, thanks"] * 5 and again.calls == []


@pytest.mark.asyncio
async def test_the_list_stays_usable_while_lines_are_made_newest_first():
    model = FakeModel(delay=0.02)  # 9 answers of 2 words a thread: about 0.4 s each
    app = make_app(model=model, mail_path=DEMO)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        for _ in range(100):  # the list is painted before any summary is made
            await pilot.pause(0.02)
            if app.screen.query("#threads") and app.screen.query_one("#threads").row_count:
                break
        table = app.screen.query_one("#threads")
        assert table.row_count == 5
        await pilot.press("down", "down")
        await pilot.pause(0.05)
        assert table.cursor_row == 2 and app.screen.current is app.screen.threads[2]
        for _ in range(200):
            await pilot.pause(0.02)
            if _lines(app)[0]:
                break
        lines = _lines(app)
        assert lines[0] == "Fine, thanks" and "" in lines  # the newest first, the rest still coming
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert _lines(app) == ["Fine, thanks"] * 5
        await asyncio.sleep(0)


class Timed(FakeModel):
    """Records when each answer starts and ends; a reply is 60 words, a summary 2 (0.02 s a word)."""

    def __init__(self) -> None:
        super().__init__(delay=0.02)
        self.spans: list[tuple[str, float, float]] = []

    def stream(self, messages, **kw):
        import time

        kind = "reply" if "Customer message" in messages[-1]["content"] else "summary"
        start = time.monotonic()
        text = " ".join(f"w{i}" for i in range(60)) + "." if kind == "reply" else "Fine, thanks"
        try:
            for word in text.split(" "):
                time.sleep(self.delay)
                yield word + " "
        finally:
            self.spans.append((kind, start, time.monotonic()))


@pytest.mark.asyncio
async def test_one_line_summaries_wait_while_a_draft_is_written():
    """On 2 cores two models decoding at once each take about twice as long: the background lines pause
    between two summaries while the draft the user asked for is written, then go on."""
    model = Timed()
    app = make_app(model=model, mail_path=DEMO)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        for _ in range(200):
            await pilot.pause(0.02)
            if any(kind == "summary" for kind, _, _ in model.spans):
                break
        assert app.screen.current is not None
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
    [(_, start, end)] = [s for s in model.spans if s[0] == "reply"]
    during = [s for s in model.spans if s[0] == "summary" and start < s[1] < end]
    after = [s for s in model.spans if s[0] == "summary" and s[1] >= end]
    assert after, "the lines were all made before the draft: nothing was tested"
    assert len(during) <= 8  # at most the rest of the thread whose line was being made (9 answers a line)
