"""Snapshots of each screen at 80x24 and 110x32 with a scripted model (deterministic):
update with `pytest --snapshot-update`."""

import os
from pathlib import Path

import pytest

from assistant.tui.app import make_app
from tests.fakes import FakeModel

# relative, so the path shown on screen is the same in every checkout (tests run from the repo root)
DEMO = os.path.relpath(Path(__file__).resolve().parents[3] / "assets" / "demo" / "mailbox")


async def _settle(pilot):
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


SIZES = pytest.mark.parametrize("size", [(80, 24), (110, 32)], ids=["80x24", "110x32"])


@SIZES
def test_chat_screen(snap_compare, size):
    async def run_before(pilot):
        await pilot.press(*"Where is my parcel?", "enter")
        await _settle(pilot)
        pilot.app.screen.set_status("model: fake-model")  # the real line carries timings, which vary
        await pilot.pause()

    app = make_app(model=FakeModel(["Hello! I'm sorry your parcel is late. Could you share your order number?"]))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_help_screen(snap_compare, size):
    assert snap_compare(make_app(model=FakeModel()), terminal_size=size, press=["f1"])


@SIZES
def test_help_scrolls_to_its_last_line(snap_compare, size):
    assert snap_compare(make_app(model=FakeModel()), terminal_size=size, press=["f1", "end"])


@SIZES
def test_mail_screen(snap_compare, size):
    async def run_before(pilot):
        await pilot.press("ctrl+o")
        await _settle(pilot)

    assert snap_compare(make_app(model=FakeModel(), mail_path=DEMO), terminal_size=size, run_before=run_before)


@SIZES
def test_models_screen_with_a_report_card(snap_compare, size):
    async def run_before(pilot):
        await pilot.press("ctrl+l", "down", "down")  # the shipped summarize student: its report card's 8-column tables
        await _settle(pilot)

    assert snap_compare(make_app(model=FakeModel()), terminal_size=size, run_before=run_before)
