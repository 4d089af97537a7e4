"""The chat screen: conversations, streaming replies (Esc stops), model picker, system prompt,
grounding in a collection with cited sources, full-text search over past chats."""

from __future__ import annotations

import json
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Header, Input, Label, ListItem, ListView, Select, Static
from textual.worker import Worker, WorkerState

from assistant.services import store
from assistant.engine.loops import stop_loops
from assistant.tui.widgets import ChatMessage, PromptInput, SourceScreen, TextPrompt


class ChatScreen(Screen):
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+o", "open_mail", "Mail"),
        Binding("ctrl+l", "open_models", "Models"),
        Binding("ctrl+g", "toggle_ground", "Ground"),
        Binding("ctrl+r", "rename_chat", "Rename", show=False),
        Binding("ctrl+d", "delete_chat", "Delete", show=False),
        Binding("ctrl+e", "export_chat", "Export", show=False),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False),
    ]

    def __init__(self, model=None, model_name: str | None = None, continue_last: bool = False) -> None:
        super().__init__()
        self.model = model
        self.model_name = model_name
        self.continue_last = continue_last
        self.db = store.connect()
        self.conversation_id: str | None = None
        self.history: list[dict] = []
        self.sources: list = []
        self._stop = False

    def compose(self) -> ComposeResult:
        from assistant.engine import registry

        names = list(registry.all_models())
        current = self.model.name if self.model is not None else (self.model_name or registry.default_for("chat"))
        options = [(n, n) for n in dict.fromkeys([current, *names])]
        yield Header()
        with Horizontal():
            with Vertical(id="sidebar"):
                yield Input(placeholder="search chats", id="chat-search")
                yield ListView(id="conversations")
            with Vertical(id="main"):
                with Horizontal(id="options"):
                    yield Select(options, value=current, allow_blank=False, id="model-select")
                    yield Input(placeholder="system prompt (this chat)", id="system")
                    yield Checkbox("ground", id="ground")
                with Horizontal(id="chat-row"):
                    yield VerticalScroll(id="messages")
                    yield ListView(id="sources")
                yield Static("", id="status")
                yield PromptInput(id="prompt", soft_wrap=True, show_line_numbers=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sources").display = False
        self.query_one("#prompt").focus()
        self.refresh_conversations()
        if self.continue_last:
            cid = store.last_conversation(self.db)
            if cid:
                self.open_conversation(cid)
        if self.model is None:
            self.set_status("loading model…")
            self.load_model(self.model_name)

    # models load in a thread after the first paint
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_model(self, name: str | None):
        from assistant.engine import registry

        model = self.app.model_for("chat") if name is None or self.app.injected_model else registry.resolve(name, "chat")
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

    @on(Select.Changed, "#model-select")
    def model_picked(self, event: Select.Changed) -> None:
        if self.model is not None and event.value != self.model.name and not self.app.injected_model:
            self.model = None
            self.set_status(f"loading {event.value}…")
            self.load_model(str(event.value))

    def set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    # conversations
    def refresh_conversations(self, query: str = "") -> None:
        lv = self.query_one("#conversations", ListView)
        lv.clear()
        if query.strip():
            rows = self.db.execute(
                "SELECT DISTINCT c.id, c.name FROM responses_fts f JOIN responses r ON r.id = f.rowid"
                " JOIN conversations c ON c.id = r.conversation_id WHERE responses_fts MATCH ? ORDER BY c.updated DESC",
                (store._fts_query(query),))
        else:
            rows = self.db.execute("SELECT id, name FROM conversations ORDER BY updated DESC LIMIT 200")
        for row in rows:
            lv.append(ListItem(Label(row["name"] or "(untitled)"), name=row["id"]))

    @on(Input.Changed, "#chat-search")
    def search_changed(self, event: Input.Changed) -> None:
        self.refresh_conversations(event.value)

    def open_conversation(self, cid: str) -> None:
        self.conversation_id = cid
        self.history = store.conversation_messages(self.db, cid)
        row = self.db.execute("SELECT system FROM conversations WHERE id = ?", (cid,)).fetchone()
        self.query_one("#system", Input).value = (row["system"] if row else "") or ""
        box = self.query_one("#messages", VerticalScroll)
        box.remove_children()
        box.mount_all([ChatMessage(m["role"], m["content"]) for m in self.history])
        box.scroll_end(animate=False)

    @on(ListView.Selected, "#conversations")
    def conversation_selected(self, event: ListView.Selected) -> None:
        self.open_conversation(event.item.name)

    # sending
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
        self._stop = False
        self.generate(event.text, reply, self.query_one("#system", Input).value.strip(),
                      self.query_one("#ground", Checkbox).value)

    def _messages(self, prompt: str, system: str, ground: bool) -> list[dict]:
        from assistant.tasks.reply import SYSTEM

        if ground:
            from assistant.demo import resolve_collection
            from assistant.index import Index
            from assistant.tasks.ask import build_messages

            idx = Index.open()
            self.sources = idx.search(prompt, resolve_collection("default", idx), k=4)
            grounded = build_messages(prompt, [h.text for h in self.sources])
            return [grounded[0]] + self.history + [grounded[1]]
        self.sources = []
        return [{"role": "system", "content": system or SYSTEM}] + self.history + [{"role": "user", "content": prompt}]

    @work(thread=True, exclusive=True, group="chat", exit_on_error=False)
    def generate(self, prompt: str, widget: ChatMessage, system: str, ground: bool) -> None:
        start = time.time()
        self.app.call_from_thread(self.set_status, "thinking…")
        messages = self._messages(prompt, system, ground)
        self.app.call_from_thread(self.show_sources)
        first = None
        for piece in stop_loops(self.model.stream(messages, max_tokens=400)):
            if self._stop:
                break
            first = first or time.time()
            self.app.call_from_thread(widget.append, piece)
        text = widget.text.strip()
        if ground and self.sources:  # [n] after the sentences a passage backs, as `assistant ask` prints them
            from assistant.tasks.ask import cite

            cited = cite(text, [h.text for h in self.sources])
            if cited != text:
                text = cited
                self.app.call_from_thread(widget.set_text, text)
        self.history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}]
        db = store.connect()
        if self.conversation_id is None:
            self.conversation_id = store.new_conversation(db, self.model.name, system=system)
        elif system:
            with db:
                db.execute("UPDATE conversations SET system = ? WHERE id = ?", (system, self.conversation_id))
        store.log_response(db, model=self.model.name, kind="chat", prompt=prompt, response=text, system=system,
                           conversation_id=self.conversation_id, duration_ms=int((time.time() - start) * 1000))
        ttft = f" · first token {first - start:.2f}s" if first else ""
        self.app.call_from_thread(self.set_status, f"model: {self.model.name} · {time.time() - start:.1f}s{ttft}")
        self.app.call_from_thread(self.refresh_conversations)
        self.app.call_from_thread(self.query_one("#messages", VerticalScroll).scroll_end, animate=False)

    def show_sources(self) -> None:
        lv = self.query_one("#sources", ListView)
        lv.clear()
        lv.display = bool(self.sources)
        for i, h in enumerate(self.sources, 1):
            lv.append(ListItem(Label(f"[{i}] {h.title or h.path}"), name=str(i - 1)))

    @on(ListView.Selected, "#sources")
    def source_selected(self, event: ListView.Selected) -> None:
        h = self.sources[int(event.item.name)]
        self.app.push_screen(SourceScreen(h.title or h.path, f"{h.message_id or h.path}\n\n{h.text}"))

    # actions
    def action_stop(self) -> None:
        self._stop = True

    def action_toggle_ground(self) -> None:
        box = self.query_one("#ground", Checkbox)
        box.value = not box.value
        self.notify("Answers grounded in the knowledge base." if box.value else "Grounding off.")

    def action_new_chat(self) -> None:
        self.conversation_id, self.history = None, []
        self.query_one("#messages", VerticalScroll).remove_children()
        self.query_one("#prompt").focus()

    def action_rename_chat(self) -> None:
        if not self.conversation_id:
            self.notify("Send a message first.", severity="warning")
            return

        def done(name: str | None) -> None:
            if name:
                with self.db:
                    self.db.execute("UPDATE conversations SET name = ? WHERE id = ?", (name, self.conversation_id))
                self.refresh_conversations()

        self.app.push_screen(TextPrompt("Rename conversation"), done)

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
        out = paths.data_dir() / "exports" / f"chat-{self.conversation_id or 'new'}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text("\n\n".join(f"**{m['role']}**: {m['content']}" for m in self.history) + "\n")
        out.with_suffix(".json").write_text(json.dumps({"id": self.conversation_id, "messages": self.history}, indent=2))
        self.notify(f"Exported {out}.md and .json")

    def action_open_mail(self) -> None:
        self.app.action_mail()

    def action_open_models(self) -> None:
        self.app.action_models()

    def action_toggle_sidebar(self) -> None:
        sb = self.query_one("#sidebar")
        sb.display = not sb.display
