"""Small widgets of the app: the prompt box and chat messages."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Markdown, Static, TextArea


class PromptInput(TextArea):
    """A multi-line prompt: Enter sends, Shift+Enter or Ctrl+J adds a line."""

    @dataclass
    class Submitted(Message):
        text: str

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            text = self.text.strip()
            if text:
                self.post_message(self.Submitted(text))
                self.clear()
        elif event.key in ("shift+enter", "ctrl+j"):
            event.prevent_default()
            event.stop()
            self.insert("\n")


class ChatMessage(Markdown):
    """One turn of the conversation, rendered as Markdown; the assistant's grows as it streams."""

    def __init__(self, role: str, text: str = "") -> None:
        super().__init__(text, classes=role)
        self.role = role
        self.text = text
        self.border_title = {"user": "you", "assistant": "assistant"}.get(role, role)

    def append(self, piece: str) -> None:
        self.text += piece
        self.update(self.text)

    def set_text(self, text: str) -> None:
        self.text = text
        self.update(text)


class Throttled:
    """Shows text a worker thread builds up, at most every `every` seconds and once more at the end.

    A Markdown or TextArea re-renders all of its text: done for every token, the screen's work grew with the
    square of the reply and held the model back (a reply in the app took about 4x the CLI's time). The
    worker does not wait for the redraw either (it is queued, and a redraw finds only the newest text), so
    the model never stands still while the screen paints; `flush(wait=True)` draws and waits, for the end.
    `live()` is asked before each redraw: a redraw still queued when its worker was cancelled (the user
    moved on, or asked again) draws nothing."""

    def __init__(self, app, show, every: float = 0.08, live=lambda: True) -> None:
        import time

        self.app, self.show, self.every, self.clock, self.live = app, show, every, time.monotonic, live
        self.text, self.shown, self.drawn, self.last = "", "", "", 0.0

    def add(self, piece: str) -> None:
        self.text += piece
        if self.clock() - self.last >= self.every:
            self.flush()

    def flush(self, wait: bool = False) -> None:
        if self.text == self.shown and not wait:
            return
        self.shown, self.last = self.text, self.clock()
        if wait:
            self.app.call_from_thread(self._draw)
        else:
            self.app.call_later(self._draw)  # thread-safe (a posted message), returns at once

    def _draw(self) -> None:
        """On the app's loop. A redraw queued before a newer one has run finds nothing left to do."""
        if self.drawn != self.shown and self.live():
            self.drawn = self.shown
            self.show(self.drawn)


class SourceScreen(ModalScreen):
    """A retrieved passage, opened from the sources list."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text, self.body = title, text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="source-box"):
            yield Static(self.title_text, classes="title")
            yield Static(self.body, markup=False)


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text (e.g. a new conversation name)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="text-prompt"):
            yield Static(self.label)
            yield Input(id="text-prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
