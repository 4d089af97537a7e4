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
