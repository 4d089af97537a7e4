"""Time the app as a person sees it, in a real terminal (tmux): first paint, first streamed token.

    python bench/tui_timing.py

Starts `assistant` in a detached 100x30 tmux session with empty user dirs (students merged, as
`scripts/install.sh` leaves them), polls the screen
until the chat screen is painted, sends a short message and reads the app's own first-token time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # noqa: E402

SESSION = "assistant-bench"


def screen() -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True).stdout


def wait_for(pred, timeout=60.0, step=0.01) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if pred(screen()):
            return time.perf_counter() - t0
        time.sleep(step)
    raise TimeoutError(screen())


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as home:
        env = f"ASSISTANT_HOME={home}"
        # the state right after scripts/install.sh: empty user dirs, students already merged
        subprocess.run(["assistant", "models", "prepare"], env={**os.environ, "ASSISTANT_HOME": home},
                       check=True, capture_output=True)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        t0 = time.perf_counter()
        subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "100", "-y", "30", f"env {env} assistant"], check=True)
        wait_for(lambda s: "search chats" in s and "Stop" in s)
        paint = time.perf_counter() - t0
        wait_for(lambda s: "model:" in s, timeout=120)
        loaded = time.perf_counter() - t0
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "Hi! Who are you?", "Enter"], check=True)
        wait_for(lambda s: "first token" in s, timeout=120)
        final = screen()
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "C-q"], check=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    # the app measures Enter → first streamed piece itself and shows it in its status line
    status = next((l.strip() for l in final.splitlines() if "first token" in l), "")
    first = float(status.split("first token")[1].strip().rstrip("s")) if status else float("nan")
    rows = [{"measure": "first screen painted after launch (s)", "value": round(paint, 3), "goal": "< 1"},
            {"measure": "model loaded after launch (s)", "value": round(loaded, 3), "goal": ""},
            {"measure": "first streamed token after Enter (s)", "value": first, "goal": "< 1"}]
    report("tui", rows, {"status_line": status})


if __name__ == "__main__":
    main()
