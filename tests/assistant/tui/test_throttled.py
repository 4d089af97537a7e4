"""Throttled: the worker queues redraws without waiting for them; a redraw finds only the newest text,
the last one is drawn before the worker goes on, and a redraw queued for a cancelled worker draws nothing."""

from __future__ import annotations

from assistant.tui.widgets import Throttled


class QueueApp:
    """call_later queues (as Textual posts a message), call_from_thread runs at once and waits."""

    def __init__(self) -> None:
        self.queued = []

    def call_later(self, fn, *args) -> bool:
        self.queued.append((fn, args))
        return True

    def call_from_thread(self, fn, *args):
        return fn(*args)

    def run_queued(self) -> None:
        queued, self.queued = self.queued, []
        for fn, args in queued:
            fn(*args)


def test_queued_redraws_draw_only_the_newest_text_and_the_last_waits():
    app, drawn = QueueApp(), []
    shown = Throttled(app, drawn.append, every=0)
    for piece in ("Dear ", "Anna,", " thanks"):
        shown.add(piece)
    assert drawn == [] and len(app.queued) == 3  # the worker did not wait for the screen
    app.run_queued()
    assert drawn == ["Dear Anna, thanks"]  # the two older redraws found nothing left to do
    shown.add(".")
    shown.flush(wait=True)
    assert drawn[-1] == "Dear Anna, thanks."
    app.run_queued()
    assert drawn == ["Dear Anna, thanks", "Dear Anna, thanks."]


def test_a_redraw_queued_for_a_cancelled_worker_draws_nothing():
    app, drawn, alive = QueueApp(), [], [True]
    shown = Throttled(app, drawn.append, every=0, live=lambda: alive[0])
    shown.add("Hello")
    alive[0] = False  # the user moved to another thread before the screen got to it
    app.run_queued()
    shown.flush(wait=True)
    assert drawn == []
