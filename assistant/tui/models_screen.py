"""The models screen: installed models and students, measured speed, report cards, and retraining.

Retraining runs `assistant retrain` as a subprocess (never training code in the app) and
shows its JSON-lines progress; Esc-free cancel with `x`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Markdown
from textual.worker import Worker, WorkerState


class ModelsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("m", "measure", "Measure speed"),
        Binding("d", "make_default", "Make default"),
        Binding("t", "retrain", "Retrain reply"),
        Binding("x", "cancel", "Cancel retrain"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list = []
        self.proc: subprocess.Popen | None = None
        self.speeds: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():  # the card gets the full width: its tables have eight columns
            yield DataTable(id="models", cursor_type="row")
            with VerticalScroll(id="card-box"):
                yield Markdown("", id="card")
            yield Log(id="retrain-log", max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#models", DataTable).add_columns("name", "source", "MB", "tok/s (m)", "default for")
        self.refresh_models()

    def refresh_models(self) -> None:
        models = self.app.services.models
        table = self.query_one("#models", DataTable)
        table.clear()
        rows = {r["name"]: r for r in models.listing()}
        self.entries = list(models.all_models().values())
        for e in self.entries:
            tasks = ", ".join(rows[e.name]["default_for"])
            speed = f"{self.speeds[e.name]:.0f}" if e.name in self.speeds else "–"
            table.add_row(e.name, e.source, f"{e.size_bytes() / 1e6:.0f}", speed, tasks)
        if self.entries:
            self.show_card(self.entries[0])

    @on(DataTable.RowHighlighted, "#models")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.entries):
            self.show_card(self.entries[event.cursor_row])

    def show_card(self, e) -> None:
        card = "_no report card: the untrained base or a model you added_"
        if e.manifest:
            report = Path(e.manifest).parent / "report.md"
            if report.exists():
                card = report.read_text()
        self.query_one("#card", Markdown).update(f"## {e.name}\n\n{card}")

    def _selected(self):
        row = self.query_one("#models", DataTable).cursor_row
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def action_measure(self) -> None:
        if e := self._selected():
            self.notify(f"measuring {e.name}…")
            self.measure(e)

    @work(thread=True, exclusive=True, group="measure", exit_on_error=False)
    def measure(self, e) -> tuple[str, float]:
        return e.name, self.app.services.models.decode_speed(e.name)

    def action_make_default(self) -> None:
        models = self.app.services.models
        if (e := self._selected()) and (task := models.task_of_student(e)):
            models.set_default(task, e.name)
            self.notify(f"{e.name} is now the default for {task}")
            self.refresh_models()

    def action_retrain(self) -> None:
        if self.proc is None:
            self.query_one("#retrain-log", Log).clear()
            self.retrain("reply")

    @work(thread=True, exclusive=True, group="retrain", exit_on_error=False)
    def retrain(self, task: str) -> dict | None:
        log = self.query_one("#retrain-log", Log)
        cmd = [sys.executable, "-m", "assistant.cli", "retrain", task, "--json", "-y"]
        from assistant import paths

        errlog = open(paths.data_dir() / "retrain-app.log", "w")  # a file, not a pipe: a full pipe would block the child
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, text=True)
        result = None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "result":
                result = event
            text = (f"step {event['step']}/{event['max_steps']} loss {event['loss']:.3f}" if event.get("event") == "step"
                    else json.dumps(event))
            self.app.call_from_thread(log.write_line, text)
        self.proc.wait()
        errlog.close()
        err = Path(errlog.name).read_text().strip().splitlines()
        code, self.proc = self.proc.returncode, None
        if code != 0 and code != -15:
            raise RuntimeError(err[-1] if err else f"retrain exited with {code}")
        return result

    @on(Worker.StateChanged)
    def worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Error", severity="error")
        elif event.state == WorkerState.SUCCESS and event.worker.group == "measure":
            name, speed = event.worker.result
            self.speeds[name] = speed
            self.refresh_models()
        elif event.state == WorkerState.SUCCESS and event.worker.group == "retrain" and event.worker.result:
            r = event.worker.result
            msg = (f"{r['new']} won ({r['new_edit_score']}% vs {r['previous_edit_score']}% of your edits) and is now the default"
                   if r["switched"] else f"{r['new']} did not beat {r['previous']}; nothing changed")
            self.notify(msg, timeout=10)
            self.refresh_models()

    def action_cancel(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.notify("Retraining cancelled.")
