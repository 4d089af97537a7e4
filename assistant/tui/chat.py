"""The chat screen: conversation list, streaming replies (Esc stops), history in SQLite."""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, ListItem, ListView, Label, Static
from textual.worker import Worker, WorkerState

from assistant import store
from assistant.tui.widgets import ChatMessage, PromptInput


class ChatScreen(Screen):
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New chat"),
        Binding("ctrl+d", "delete_chat", "Delete chat"),
        Binding("ctrl+e", "export_chat", "Export"),
        Binding("ctrl+o", "open_mail", "Mail"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar"),
    ]

    def __init__(self, model=None, model_name: str | None = None, continue_last: bool = False) -> None:
        super().__init__()
        self.model = model
        self.model_name = model_name
        self.continue_last = continue_last
        self.db = store.connect()
        self.conversation_id: str | None = None
        self.history: list[dict] = []
        self._stop = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sidebar"):
                yield Label("Conversations", classes="title")
                yield ListView(id="conversations")
            with Vertical(id="main"):
                yield VerticalScroll(id="messages")
                yield Static("", id="status")
                yield PromptInput(id="prompt", soft_wrap=True, show_line_numbers=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt").focus()
        self.refresh_conversations()
        if self.continue_last:
            cid = store.last_conversation(self.db)
            if cid:
                self.open_conversation(cid)
        if self.model is None:
            self.set_status("loading model…")
            self.load_model()

    # model loading happens in a thread after the first paint
    @work(thread=True, exclusive=True, group="load")
    def load_model(self):
        model = self.app.model_for("chat")
        if hasattr(model, "load"):
            model.load()
        return model

    @on(Worker.StateChanged)
    def worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "load" and event.state == WorkerState.SUCCESS:
            self.model = event.worker.result
            self.set_status(f"model: {self.model.name}")
        elif event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Error", severity="error")
            self.set_status("")

    def set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def refresh_conversations(self) -> None:
        lv = self.query_one("#conversations", ListView)
        lv.clear()
        for row in self.db.execute("SELECT id, name FROM conversations ORDER BY updated DESC LIMIT 200"):
            lv.append(ListItem(Label(row["name"] or "(untitled)"), name=row["id"]))

    def open_conversation(self, cid: str) -> None:
        self.conversation_id = cid
        self.history = store.conversation_messages(self.db, cid)
        box = self.query_one("#messages", VerticalScroll)
        box.remove_children()
        box.mount_all([ChatMessage(m["role"], m["content"]) for m in self.history])
        box.scroll_end(animate=False)

    @on(ListView.Selected, "#conversations")
    def conversation_selected(self, event: ListView.Selected) -> None:
        self.open_conversation(event.item.name)

    @on(PromptInput.Submitted)
    def send(self, event: PromptInput.Submitted) -> None:
        if self.model is None:
            self.notify("The model is still loading.", severity="warning")
            return
        box = self.query_one("#messages", VerticalScroll)
        reply = ChatMessage("assistant")
        box.mount(ChatMessage("user", event.text))
        box.mount(reply)
        box.scroll_end(animate=False)
        self.history.append({"role": "user", "content": event.text})
        self._stop = False
        self.generate(event.text, reply)

    @work(thread=True, exclusive=True, group="chat")
    def generate(self, prompt: str, widget: ChatMessage) -> None:
        from assistant.tasks.reply import SYSTEM

        start = time.time()
        messages = [{"role": "system", "content": SYSTEM}] + self.history
        self.app.call_from_thread(self.set_status, "thinking…")
        for piece in self.model.stream(messages, max_tokens=400):
            if self._stop:
                break
            self.app.call_from_thread(widget.append, piece)
        text = widget.text.strip()
        self.history.append({"role": "assistant", "content": text})
        db = store.connect()
        if self.conversation_id is None:
            self.conversation_id = store.new_conversation(db, self.model.name)
        store.log_response(db, model=self.model.name, kind="chat", prompt=prompt, response=text,
                           conversation_id=self.conversation_id, duration_ms=int((time.time() - start) * 1000))
        self.app.call_from_thread(self.set_status, f"model: {self.model.name} · {time.time() - start:.1f}s")
        self.app.call_from_thread(self.refresh_conversations)
        self.app.call_from_thread(self.query_one("#messages", VerticalScroll).scroll_end, animate=False)

    def action_stop(self) -> None:
        self._stop = True

    def action_new_chat(self) -> None:
        self.conversation_id, self.history = None, []
        self.query_one("#messages", VerticalScroll).remove_children()
        self.query_one("#prompt").focus()

    def action_delete_chat(self) -> None:
        if self.conversation_id:
            with self.db:
                self.db.execute("DELETE FROM responses WHERE conversation_id = ?", (self.conversation_id,))
                self.db.execute("DELETE FROM conversations WHERE id = ?", (self.conversation_id,))
            self.action_new_chat()
            self.refresh_conversations()
            self.notify("Conversation deleted.")

    def action_export_chat(self) -> None:
        from assistant import paths

        if not self.history:
            self.notify("Nothing to export yet.", severity="warning")
            return
        out = paths.data_dir() / "exports" / f"chat-{self.conversation_id or 'new'}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n\n".join(f"**{m['role']}**: {m['content']}" for m in self.history) + "\n")
        self.notify(f"Exported to {out}")

    def action_open_mail(self) -> None:
        self.app.action_mail()

    def action_toggle_sidebar(self) -> None:
        sb = self.query_one("#sidebar")
        sb.display = not sb.display
