"""`assistant` with no arguments: a terminal app for support chat, mail and models.

    from assistant.tui.app import make_app
    app = make_app(model=FakeModel())       # tests inject a model; the CLI passes none (lazy load)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from textual.app import App
from textual.binding import Binding

from assistant.tui.chat import ChatScreen


@dataclass
class Services:
    """What the screens call (modules of `assistant.services` or stand-ins with the same functions)."""

    models: ModuleType | object
    chat: ModuleType | object
    summarize: ModuleType | object
    reply: ModuleType | object
    store: ModuleType | object
    inbox: ModuleType | object | None = None  # mailbox listing (headers, bodies on demand); None: the real one

    @classmethod
    def default(cls) -> "Services":
        from assistant.services import chat, inbox, models, reply, store, summarize

        return cls(models, chat, summarize, reply, store, inbox)


class AssistantApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "distilled-assistant"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("ctrl+t", "toggle_dark", "Theme"),
    ]

    def __init__(self, model=None, model_name: str | None = None, continue_last: bool = False,
                 mail_path: str | None = None, services: Services | None = None) -> None:
        super().__init__()
        self.services = services or Services.default()
        self.injected_model = model
        self.model_name = model_name
        self.continue_last = continue_last
        self.mail_path = mail_path

    def model_for(self, task: str, covers: str | tuple[str, ...] | None = None):
        """The model for a task: the injected one (tests), else the task's default trained for `covers`
        (e.g. summarize-short), or the one named for chat."""
        if self.injected_model is not None:
            return self.injected_model
        return self.services.models.resolve(self.model_name if task == "chat" else None, task, covers=covers)

    def on_mount(self) -> None:
        self.push_screen(ChatScreen(self.injected_model, self.model_name, self.continue_last))

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    def action_help(self) -> None:
        from assistant.tui.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_models(self) -> None:
        from assistant.tui.models_screen import ModelsScreen

        self.push_screen(ModelsScreen())

    def get_system_commands(self, screen):
        from textual.app import SystemCommand

        yield from super().get_system_commands(screen)
        yield SystemCommand("Mail", "Open a mailbox: threads, summaries, reply drafts", self.action_mail)
        yield SystemCommand("Models", "Installed models, report cards, retraining", self.action_models)
        yield SystemCommand("Help", "Keys and what they do", self.action_help)

    def action_mail(self) -> None:
        from assistant.tui.mail_screen import MailScreen

        self.push_screen(MailScreen(self.mail_path))


def make_app(model=None, model_name: str | None = None, continue_last: bool = False,
             mail_path: str | Path | None = None, services: Services | None = None) -> AssistantApp:
    """The app with its services (the real ones unless given) and, for tests, one model for every task."""
    return AssistantApp(model, model_name, continue_last, str(mail_path) if mail_path else None, services)


def run_app(continue_last: bool = False) -> None:
    make_app(continue_last=continue_last).run()
