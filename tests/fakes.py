"""A scripted chat model for UI logic and error paths (never for the unit under test)."""

from __future__ import annotations

import time
from typing import Iterator


class FakeModel:
    name = "fake-model"

    def __init__(self, replies: list[str] | None = None, delay: float = 0.0) -> None:
        self.replies = list(replies or [])
        self.delay = delay
        self.calls: list[list[dict]] = []

    def enqueue(self, *replies: str) -> None:
        self.replies.extend(replies)

    def stream(self, messages, *, max_tokens=256, temperature=0.0, seed=None, stop=None) -> Iterator[str]:
        self.calls.append(messages)
        text = self.replies.pop(0) if self.replies else "Fine, thanks."
        for word in text.split(" "):
            if self.delay:
                time.sleep(self.delay)
            yield word + " "
