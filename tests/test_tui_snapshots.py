"""Snapshots of each screen with a scripted model (deterministic): update with `pytest --snapshot-update`."""

import os
from pathlib import Path

from assistant.tui.app import make_app
from tests.fakes import FakeModel

# relative, so the path shown on screen is the same in every checkout (tests run from the repo root)
DEMO = os.path.relpath(Path(__file__).resolve().parents[1] / "assets" / "demo" / "mailbox")


async def _settle(pilot):
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_chat_screen(snap_compare):
    async def run_before(pilot):
        await pilot.press(*"Where is my parcel?", "enter")
        await _settle(pilot)
        pilot.app.screen.set_status("model: fake-model")  # the real line carries timings, which vary
        await pilot.pause()

    app = make_app(model=FakeModel(["Hello! I'm sorry your parcel is late. Could you share your order number?"]))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_screen(snap_compare):
    assert snap_compare(make_app(model=FakeModel()), terminal_size=(80, 30), press=["f1"])


def test_mail_screen(snap_compare):
    async def run_before(pilot):
        await pilot.press("ctrl+o")
        await _settle(pilot)

    assert snap_compare(make_app(model=FakeModel(), mail_path=DEMO), terminal_size=(120, 36), run_before=run_before)


def test_models_screen(snap_compare):
    async def run_before(pilot):
        await pilot.press("ctrl+l")
        await _settle(pilot)

    assert snap_compare(make_app(model=FakeModel()), terminal_size=(120, 30), run_before=run_before)
