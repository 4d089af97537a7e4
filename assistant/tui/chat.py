"""The chat screen: conversations, streaming replies (Esc stops), model picker, system prompt,
grounding in a collection with cited sources, full-text search over past chats."""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Header, Input, Label, ListItem, ListView, Select, Static
from textual.worker import Worker, WorkerState

from assistant.services import chat
from assistant.tui.widgets import ChatMessage, PromptInput, SourceScreen, TextPrompt, Throttled


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
        self.db = chat.connect()
        self.conversation = chat.Conversation(self.db)
        self.sources: list = []
        self._stop = False
        self._grounded = None  # the `ask` default, loaded on the first grounded question

    def compose(self) -> ComposeResult:
        models = self.app.services.models
        names = list(models.all_models())
        current = self.model.name if self.model is not None else (self.model_name or models.default_for("chat"))
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
            cid = chat.last_conversation(self.db)
            if cid:
                self.open_conversation(cid)
        if self.model is None:
            self.set_status("loading model…")
            self.load_model(self.model_name)

    # models load in a thread after the first paint
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_model(self, name: str | None):
        model = self.app.model_for("chat") if name is None or self.app.injected_model else self.app.services.models.resolve(name, "chat")
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
            self.model, self.model_name = None, str(event.value)  # picked: it answers grounded questions too
            self.set_status(f"loading {event.value}…")
            self.load_model(str(event.value))

    def set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    # conversations
    def refresh_conversations(self, query: str = "") -> None:
        lv = self.query_one("#conversations", ListView)
        lv.clear()
        for cid, name in chat.conversations(self.db, query):
            lv.append(ListItem(Label(name or "(untitled)"), name=cid))

    @on(Input.Changed, "#chat-search")
    def search_changed(self, event: Input.Changed) -> None:
        self.refresh_conversations(event.value)

    def open_conversation(self, cid: str) -> None:
        self.conversation = chat.Conversation.open(self.db, cid)
        self.query_one("#system", Input).value = self.conversation.system
        box = self.query_one("#messages", VerticalScroll)
        box.remove_children()
        box.mount_all([ChatMessage(m["role"], m["content"]) for m in self.conversation.history])
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

    @work(thread=True, exclusive=True, group="chat", exit_on_error=False)
    def generate(self, prompt: str, widget: ChatMessage, system: str, ground: bool) -> None:
        start = time.time()
        self.app.call_from_thread(self.set_status, "thinking…")
        conversation = self.conversation
        conversation.db = chat.connect()  # this worker thread's own connection
        conversation.system = system
        model = self._grounded_model() if ground else self.model
        built, self.sources = conversation.prompt(model, prompt, "default" if ground else None)
        self.app.call_from_thread(self.show_sources)
        first = None
        shown = Throttled(self.app, widget.set_text, live=lambda: widget.is_attached)  # gone if the chat was left
        for piece in chat.stream(model, built):
            if self._stop:
                break
            first = first or time.time()
            shown.add(piece)
        # [n] as `assistant ask` prints them
        shown.text = text = chat.mark_citations(shown.text.strip(), self.sources)
        shown.flush(wait=True)
        conversation.record(model, prompt, text, start)
        conversation.db = self.db
        ttft = f" · first token {first - start:.2f}s" if first else ""
        self.app.call_from_thread(self.set_status, f"model: {model.name} · {time.time() - start:.1f}s{ttft}")
        self.app.call_from_thread(self.refresh_conversations)
        self.app.call_from_thread(self.query_one("#messages", VerticalScroll).scroll_end, animate=False)

    def _grounded_model(self):
        """The model of a grounded question: the one the user named or picked, else the `ask` default (a
        student trained to answer from passages and cite them), loaded once in this worker thread."""
        if self.model_name is not None or self.app.injected_model is not None:
            return self.model
        if self._grounded is None:
            model = self.app.model_for("ask")
            if model.name == self.model.name:
                model = self.model
            elif hasattr(model, "load"):
                self.app.call_from_thread(self.set_status, f"loading {model.name}…")
                model.load()
            self._grounded = model
        return self._grounded

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
        self.conversation = chat.Conversation(self.db)
        self.query_one("#messages", VerticalScroll).remove_children()
        self.query_one("#prompt").focus()

    def action_rename_chat(self) -> None:
        if not self.conversation.id:
            self.notify("Send a message first.", severity="warning")
            return

        def done(name: str | None) -> None:
            if name:
                self.conversation.rename(name)
                self.refresh_conversations()

        self.app.push_screen(TextPrompt("Rename conversation"), done)

    def action_delete_chat(self) -> None:
        if self.conversation.id:
            self.conversation.delete()
            self.action_new_chat()
            self.refresh_conversations()
            self.notify("Conversation deleted.")

    def action_export_chat(self) -> None:
        if not self.conversation.history:
            self.notify("Nothing to export yet.", severity="warning")
            return
        out = self.conversation.export()
        self.notify(f"Exported {out}.md and .json")

    def action_open_mail(self) -> None:
        self.app.action_mail()

    def action_open_models(self) -> None:
        self.app.action_models()

    def action_toggle_sidebar(self) -> None:
        sb = self.query_one("#sidebar")
        sb.display = not sb.display
