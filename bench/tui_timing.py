"""Time the app as a person sees it, in a real terminal (tmux): first paint, first streamed token, and a
whole reply drafted in the mail screen against `assistant reply` on the same message.

    python bench/tui_timing.py

Starts `assistant` in a detached 100x30 tmux session with empty user dirs (students merged, as
`scripts/install.sh` leaves them), polls the screen until the chat screen is painted, sends a short
message and reads the app's own first-token time. Then opens the mail screen on the demo mailbox and
drafts a reply to the newest thread twice (r; the app says "Draft ready in N s"), and times the CLI's
`assistant reply` on that thread's last message: the whole command (start, model load, draft) and
the draft alone (the same message again in the process, from its JSON's timing).
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
        wait_for(lambda s: "Stop" not in s or "first token" in s, timeout=120)
        time.sleep(3)  # the chat's answer finishes
        drafts = app_drafts()
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "C-q"], check=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        cli_whole, cli_draft = cli_reply({**os.environ, "ASSISTANT_HOME": home})
    # the app measures Enter → first streamed piece itself and shows it in its status line
    status = next((l.strip() for l in final.splitlines() if "first token" in l), "")
    first = float(status.split("first token")[1].strip().rstrip("s")) if status else float("nan")
    rows = [{"measure": "first screen painted after launch (s)", "value": round(paint, 3), "goal": "< 1"},
            {"measure": "model loaded after launch (s)", "value": round(loaded, 3), "goal": ""},
            {"measure": "first streamed token after Enter (s)", "value": first, "goal": "< 1"},
            {"measure": "mail screen: a reply drafted, first time (s)", "value": drafts[0], "goal": ""},
            {"measure": "mail screen: the same reply again (s)", "value": drafts[1], "goal": ""},
            {"measure": "assistant reply, whole command (s)", "value": cli_whole, "goal": ""},
            {"measure": "assistant reply, the draft alone (s)", "value": cli_draft, "goal": ""},
            {"measure": "app draft / CLI draft", "value": round(drafts[1] / cli_draft, 2), "goal": "about 1"}]
    report("tui", rows, {"status_line": status, "message": newest_message().name})


def newest_message() -> Path:
    """The last message of the thread the mail screen opens on (the newest of the demo mailbox)."""
    from assistant import paths
    from assistant.services import inbox

    return Path(inbox.group([h for h in inbox.scan(str(paths.assets_dir() / "demo" / "mailbox"))
                             if not hasattr(h, "error")])[0].messages[-1].path)


def app_drafts() -> list[float]:
    """Open the mail screen (ctrl+o) on the demo mailbox, draft the newest thread's reply twice."""
    subprocess.run(["tmux", "send-keys", "-t", SESSION, "C-o"], check=True)
    wait_for(lambda s: "Draft reply" in s, timeout=60)
    time.sleep(1.0)  # the list painted and focused
    times = []
    for _ in range(2):
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "r"], check=True)
        text = wait_for_text(lambda s: "Draft ready in" in s, timeout=300)
        times.append(float(text.split("Draft ready in")[1].split("s")[0]))
        time.sleep(6)  # the notification goes away
    return times


def wait_for_text(pred, timeout: float) -> str:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        s = screen()
        if pred(s):
            return s
        time.sleep(0.05)
    raise TimeoutError(screen())


def cli_reply(env: dict) -> tuple[float, float]:
    """`assistant reply MESSAGE` timed whole, and the draft alone: the service called twice in one process
    (the second call's time, model loaded, as the app's second draft)."""
    msg = newest_message()
    t0 = time.perf_counter()
    subprocess.run(["assistant", "reply", str(msg), "--no-log"], env=env, check=True, capture_output=True)
    whole = time.perf_counter() - t0
    code = ("import sys, time\n"
            "from assistant.services import models, reply, inbox\n"
            "msg = inbox.load(next(inbox.scan(sys.argv[1])))\n"
            "m = models.resolve(None, 'reply', None)\n"
            "''.join(reply.stream_reply(m, msg))\n"
            "t0 = time.perf_counter(); ''.join(reply.stream_reply(m, msg)); print(time.perf_counter() - t0)\n")
    out = subprocess.run([sys.executable, "-c", code, str(msg)], env=env, check=True, capture_output=True, text=True)
    return round(whole, 2), round(float(out.stdout.strip().splitlines()[-1]), 2)


if __name__ == "__main__":
    main()
