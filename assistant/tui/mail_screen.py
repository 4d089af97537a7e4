"""The mail screen: threads of a Maildir, mbox or folder with a one-line summary each; summarize, draft,
edit, save replies.

The list is painted from the messages' headers alone (bodies are read when a thread is shown or
summarized). Its one-line summaries are then filled in the background, newest thread first: those
the summary cache holds at once, the others a few threads at a time (so that a summary or draft
asked for meanwhile waits for a few threads at most), each stored in the cache for the next launch.
"""

from __future__ import annotations

import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Collapsible, DataTable, Footer, Header, Input, Static, TextArea
from textual.worker import Worker, WorkerState

from assistant import tasks
from assistant.mail import MailError, Message, Thread
from assistant.tui.widgets import Throttled

LINE_CHUNK = 4  # threads given to the model at once while filling the one-line summaries


class Foreground:
    """Work the user asked for and waits on (`with foreground:`); `idle` is set while there is none."""

    def __init__(self) -> None:
        self.idle, self.lock, self.running = threading.Event(), threading.Lock(), 0
        self.idle.set()

    def __enter__(self) -> None:
        with self.lock:
            self.running += 1
            self.idle.clear()

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.running -= 1
            if not self.running:
                self.idle.set()


def default_mailbox() -> Path:
    from assistant import paths

    return paths.assets_dir() / "demo" / "mailbox"


class MailScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "accept", "Keep draft", show=False, priority=True),  # works while editing the draft
        Binding("s", "summarize", "Summarize"),
        Binding("r", "draft", "Draft reply"),
        Binding("e", "edit", "Edit draft"),
        Binding("a", "accept", "Keep draft"),
        Binding("w", "save", "Save .eml"),
        Binding("c", "copy", "Copy"),
    ]

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self.path = path or str(default_mailbox())
        self.threads: list[Thread] = []
        self.rows: dict[str, int] = {}  # thread id -> row
        self.current: Thread | None = None
        self.draft_original = ""
        # set while no draft or summary the user asked for is being written: the one-line summaries wait for
        # it between two summaries, so the two never decode at once (on 2 cores each would take twice as long)
        self.foreground = Foreground()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(self.path, placeholder="Maildir, mbox or folder of .eml", id="mailpath")
        with Horizontal():
            yield DataTable(id="threads", cursor_type="row", zebra_stripes=True)
            with Vertical(id="thread-pane"):
                yield VerticalScroll(id="thread-view")
                yield Static("", id="summary")
                yield TextArea("", id="draft", soft_wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#threads", DataTable)
        for label, width in (("from", 16), ("summary", 32), ("subject", 28), ("date", 10), ("#", 3)):  # "#": up to 999 messages
            table.add_column(label, width=width, key=label)
        self.load(self.path)

    @on(Input.Submitted, "#mailpath")
    def path_entered(self, event: Input.Submitted) -> None:
        self.load(event.value)

    def _inbox(self):
        inbox = getattr(self.app.services, "inbox", None)
        if inbox is None:
            from assistant.services import inbox
        return inbox

    @work(thread=True, exclusive=True, group="read", exit_on_error=False)
    def load(self, path: str) -> None:
        """Read the headers, paint the threads, then fill their one-line summaries."""
        inbox = self._inbox()
        headers = list(inbox.scan(path))
        good = [h for h in headers if not isinstance(h, MailError)]
        if not good:
            raise ValueError(f"{path}: {headers[0].error}" if headers else f"{path}: no messages found")
        threads = inbox.group(good)
        painted = threading.Event()
        self.app.call_from_thread(self.show_threads, threads, painted.set)
        painted.wait(2.0)  # the list on screen before the model's imports and look-ups compete for the GIL
        self.fill_lines(threads)

    def fill_lines(self, threads: list[Thread]) -> None:
        """One-line summaries, newest thread first: the cached ones at once, then the rest a few at a time."""
        from textual.worker import get_current_worker

        summarize, worker = self.app.services.summarize, get_current_worker()
        model, cache = self._model("summarize", tasks.summary_tasks("line")), summarize.open_cache()
        try:
            known = {t.thread_id: s.summary for t, s in zip(threads, summarize.cached(model, threads, "line", cache)) if s}
            if known:
                self.app.call_from_thread(self.show_lines, known)
            todo = [t for t in threads if t.thread_id not in known]
            while todo:
                # a draft or summary the user asks for goes first: the model lock is held from one yield to
                # the next, so at the next line the batch is dropped (lines made so far are kept and cached)
                # and taken up again once the user's work is done; else it would wait for the whole batch
                while not self.foreground.idle.wait(0.2):
                    if worker.is_cancelled:
                        return
                batch = summarize.summaries(model, todo[:LINE_CHUNK], "line", cache=cache)
                try:
                    for s in batch:
                        if worker.is_cancelled:
                            return
                        todo.pop(0)  # summaries come in input order, one per thread
                        if getattr(s, "thread_id", None):
                            self.app.call_from_thread(self.show_lines, {s.thread_id: s.summary})
                        if not self.foreground.idle.is_set():
                            break
                finally:
                    batch.close()  # releases the model at once, whatever ended the loop
        finally:
            cache.close()

    @on(Worker.StateChanged)
    def worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Error", severity="error")

    def show_threads(self, threads: list[Thread], painted: Callable[[], None] | None = None) -> None:
        self.threads = threads
        self.rows = {t.thread_id: i for i, t in enumerate(threads)}
        table = self.query_one("#threads", DataTable)
        table.clear()
        table.add_rows(
            (t.messages[0].from_.split("<")[0].strip()[:20], "", t.subject[:50], (t.messages[-1].date or "")[:10],
             str(len(t.messages))) for t in threads)
        if threads:
            self.show_thread(threads[0])
        table.focus()
        if painted:  # after the table's first full paint (its layout takes a refresh of its own)
            self.call_after_refresh(self.call_after_refresh, painted)

    def show_lines(self, lines: dict[str, str]) -> None:
        """Put one-line summaries (by thread id) in the list."""
        if not self.is_mounted:
            return
        table = self.query_one("#threads", DataTable)
        for thread_id, line in lines.items():
            if (i := self.rows.get(thread_id)) is not None:
                table.update_cell_at((i, 1), line)

    @on(DataTable.RowHighlighted, "#threads")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.threads):
            self.show_thread(self.threads[event.cursor_row])

    def show_thread(self, thread: Thread) -> None:
        if thread is not self.current:  # a draft or summary belongs to its thread: drop them on a switch
            self.workers.cancel_group(self, "model")
            self.query_one("#draft", TextArea).text = ""
            self.draft_original = ""
        self.current = thread
        view = self.query_one("#thread-view", VerticalScroll)
        view.remove_children()
        for m in map(self._inbox().load, thread.messages):  # a header's body is read now
            if isinstance(m, MailError):
                view.mount(Static(Text(f"{m.path}: {m.error}", style="red")))
                continue
            head = Text.assemble((m.from_, "bold"), f"  {m.date or ''}\n", (m.subject, "bold"), "\n\n", m.body)
            widgets = [Static(head)]
            if m.quoted:
                widgets.append(Collapsible(Static(m.quoted, markup=False), title="quoted text", collapsed=True))
            view.mount_all(widgets)
        self.query_one("#summary", Static).update("")

    def _model(self, task: str, covers: str | tuple[str, ...] | None = None):
        return self.app.model_for(task, covers)

    def action_summarize(self) -> None:
        if self.current:
            self.query_one("#summary", Static).update("summarizing…")
            self.summarize(self.current)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def summarize(self, thread: Thread) -> None:
        summarize = self.app.services.summarize
        cache = summarize.open_cache()
        try:
            with self.foreground:
                s = summarize.summarize_thread(self._model("summarize", tasks.summary_tasks("short", threads=True)), thread, "short", cache=cache)
        finally:
            cache.close()
        if thread is not self.current:
            return
        self.app.call_from_thread(self.query_one("#summary", Static).update, f"Summary ({s.model}): {s.summary}")

    def action_draft(self) -> None:
        if self.current:
            self.query_one("#draft", TextArea).text = ""
            self.draft(self.current)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def draft(self, thread: Thread) -> None:
        import time

        from textual.worker import get_current_worker

        start = time.monotonic()
        stream_reply = self.app.services.reply.stream_reply
        area, worker = self.query_one("#draft", TextArea), get_current_worker()
        # a redraw still queued when the user moves to another thread, or drafts again, must not land
        live = lambda: not worker.is_cancelled and thread is self.current  # noqa: E731
        shown = Throttled(self.app, lambda text: self._show_draft(area, text), every=0.25, live=live)
        last = self._inbox().load(thread.messages[-1])
        if not isinstance(last, Message):
            raise ValueError(f"{last.path}: {last.error}")
        with self.foreground:
            for piece in stream_reply(self._model("reply"), last):
                if not live():
                    return
                shown.add(piece)
        shown.flush(wait=True)
        if not live():  # the user moved on during the last tokens: this draft is not the shown thread's
            return
        self.draft_original = shown.text.strip()
        self.app.call_from_thread(self.notify, f"Draft ready in {time.monotonic() - start:.1f}s: e edits it, "
                                  "a keeps it for retraining.", title="Reply")

    @staticmethod
    def _show_draft(area: TextArea, text: str) -> None:
        """The draft so far, scrolled to its newest line (a long draft keeps its end in view)."""
        area.load_text(text)
        area.scroll_end(animate=False)

    def action_edit(self) -> None:
        """Put the cursor in the draft; Esc leaves it, ctrl+s keeps it."""
        area = self.query_one("#draft", TextArea)
        area.focus()
        area.move_cursor(area.document.end)
        self.notify("Editing the draft: Esc to leave, ctrl+s to keep it for retraining.")

    def action_back(self) -> None:
        """Esc while editing the draft or the path leaves the field (the draft stays); else back to chat."""
        if isinstance(self.focused, (TextArea, Input)):
            self.query_one(DataTable).focus()
        else:
            self.app.pop_screen()

    def action_accept(self) -> None:
        """Keep the (possibly edited) draft in the feedback store: retraining data."""
        store = self.app.services.store

        final = self.query_one("#draft", TextArea).text.strip()
        if not (self.current and final):
            self.notify("No draft to keep.", severity="warning")
            return
        msg = self._inbox().load(self.current.messages[-1])
        if not isinstance(msg, Message):
            self.notify(f"{msg.path}: {msg.error}", severity="error")
            return
        store.add_feedback(store.connect(), task="reply", model=self.app.services.models.default_for("reply"), source=msg.path,
                           input=msg.body, draft=self.draft_original or final, final=final)
        self.notify("Draft kept for retraining.")

    def action_save(self) -> None:
        from assistant import paths

        final = self.query_one("#draft", TextArea).text.strip()
        if not (self.current and final):
            self.notify("No draft to save.", severity="warning")
            return
        msg = self.current.messages[-1]
        out = EmailMessage()
        out["To"] = msg.from_
        out["Subject"] = msg.subject if msg.subject.lower().startswith("re:") else f"Re: {msg.subject}"
        if msg.message_id:
            out["In-Reply-To"] = msg.message_id
            out["References"] = " ".join(msg.references + [msg.message_id])
        out.set_content(final)
        dest = paths.data_dir() / "drafts" / f"reply-{self.current.thread_id}.eml"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(bytes(out))
        self.notify(f"Saved {dest}")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.query_one("#draft", TextArea).text)
        self.notify("Draft copied.")
