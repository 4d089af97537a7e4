"""Small widgets of the app: the prompt box and chat messages."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import Markdown, TextArea


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
