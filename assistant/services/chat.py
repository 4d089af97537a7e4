"""Chat, one-shot prompts and grounded answers, with their history.

    prompt = chat_prompt(model, history, "Where is my order?")     # the support student's chat prompt
    for piece in stream(model, prompt): ...
    answer = ask(model, "How do I reset a password?", "demo-kb")    # grounded, with cited sources

Every chat turn goes through the chat Task, whose default system prompt is the one the support
student's chat turns were trained with (a parity test holds training and runtime to the same messages).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from assistant import paths, tasks
from assistant.engine.loops import stop_loops
from assistant.engine.models import ChatModel, complete
from assistant.services import retrieval, store
from assistant.services.prompting import version_for
from assistant.tasks import Prompt
from assistant.tasks.ask import cite

MAX_TOKENS = 400


def chat_prompt(model: ChatModel, history: list[dict], text: str, system: str | None = None) -> Prompt:
    """The next chat turn: the task's system prompt for this model (or `system`; "" for none), history, text."""
    t = tasks.task("chat")
    return t.prompt(history, text, version_for(model, t), system)


def grounded_prompt(question: str, passages: list[str], history: list[dict] | None = None) -> Prompt:
    return tasks.task("ask").prompt(question, passages, history)


def stream(model: ChatModel, prompt: Prompt, **options) -> Iterator[str]:
    """The answer in pieces as they are generated, ended at the first sign of a loop, with the {{Slot}}
    placeholders the user filled in config.toml ([reply.slots]) filled, as replies have them."""
    from assistant.services.reply import reply_slots
    from assistant.tasks.reply import fill_slots

    options.setdefault("max_tokens", MAX_TOKENS)
    return fill_slots(stop_loops(model.stream(prompt.messages, **options)), reply_slots())


def ask(model: ChatModel, question: str, collection: str = "default", k: int = 4, progress=None) -> retrieval.Grounded:
    """A grounded answer from the top `k` passages of a collection; [n] marks which passage backs a sentence.
    `progress(stats, total)` while a collection is indexed on first use (the demo knowledge base)."""
    name, hits = retrieval.passages(question, collection, k, progress=progress)
    texts = [h.text for h in hits]
    answer = cite(complete(model, grounded_prompt(question, texts).messages, max_tokens=tasks.task("ask").max_tokens), texts)
    return retrieval.Grounded(answer, hits, name, model.name)


def mark_citations(text: str, sources: list) -> str:
    """[n] after the sentences a passage backs, where the model wrote none itself."""
    return cite(text, [h.text for h in sources]) if sources else text


@dataclass
class Conversation:
    """A chat with its history, stored in the history database as it goes."""

    db: sqlite3.Connection
    id: str | None = None
    system: str = ""
    history: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, db: sqlite3.Connection, conversation_id: str) -> "Conversation":
        return cls(db, conversation_id, store.conversation_system(db, conversation_id),
                   store.conversation_messages(db, conversation_id))

    def prompt(self, model: ChatModel, text: str, collection: str | None = None) -> tuple[Prompt, list]:
        """The prompt for the next turn and, when grounded in `collection`, the passages it cites."""
        if collection:
            _, hits = retrieval.passages(text, collection, 4)
            return grounded_prompt(text, [h.text for h in hits], self.history), hits
        return chat_prompt(model, self.history, text, self.system or None), []

    def record(self, model: ChatModel, text: str, answer: str, started: float, options: dict | None = None) -> None:
        """Add the turn to the history and the database (the conversation is created on its first turn)."""
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        if self.id is None:
            self.id = store.new_conversation(self.db, model.name, system=self.system)
        elif self.system:
            store.set_conversation_system(self.db, self.id, self.system)
        store.log_response(self.db, model=model.name, kind="chat", prompt=text, response=answer, system=self.system,
                           conversation_id=self.id, options=options or {}, duration_ms=int((time.time() - started) * 1000))

    def rename(self, name: str) -> None:
        store.rename_conversation(self.db, self.id, name)

    def delete(self) -> None:
        store.delete_conversation(self.db, self.id)

    def export(self) -> Path:
        """Write the conversation as Markdown and JSON in the data dir; returns the path without suffix."""
        out = paths.data_dir() / "exports" / f"chat-{self.id or 'new'}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text("\n\n".join(f"**{m['role']}**: {m['content']}" for m in self.history) + "\n")
        out.with_suffix(".json").write_text(json.dumps({"id": self.id, "messages": self.history}, indent=2))
        return out


def conversations(db: sqlite3.Connection, query: str = "", limit: int = 200) -> list[tuple[str, str]]:
    """(id, name) of recent conversations, or of those whose turns match a full-text `query`."""
    return store.list_conversations(db, query, limit)


def connect() -> sqlite3.Connection:
    return store.connect()


def last_conversation(db: sqlite3.Connection) -> str | None:
    return store.last_conversation(db)
