"""The help screen (F1)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# distilled-assistant

Small local models for support replies and email summaries, on your CPU.

- **Enter**: send
- **Shift+Enter / Ctrl+J**: new line
- **Esc**: stop the reply
- **Ctrl+N**: new chat
- **Ctrl+D**: delete this chat
- **Ctrl+E**: export this chat as Markdown and JSON
- **Ctrl+O**: mail: threads, summaries, reply drafts
- **Ctrl+L**: models: speed, report cards, retrain
- **Ctrl+G**: ground answers in the knowledge base (sources listed beside them)
- **Ctrl+R**: rename this chat
- **Ctrl+B**: show or hide the sidebar
- **Ctrl+T**: light / dark theme
- **Ctrl+P**: command palette
- **Ctrl+Q**: quit

Press Esc to close this help (arrows or PgDn scroll it).
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):  # scrolls on small terminals (arrows, PgUp/PgDn, the wheel)
            yield Markdown(HELP)

    def on_mount(self) -> None:
        self.query_one("#help").focus()
