"""`assistant digest`: threads newest first, a line each and a short summary for threads of several
messages, as Markdown or JSON lines; --since and --unread; the cache; exit 1 when nothing is readable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from tests.fakes import FakeModel

DEMO = Path(__file__).resolve().parents[3] / "assets" / "demo" / "mailbox"


class Echo(FakeModel):
    """Answers with the subject line of the email it is shown (so each summary names its thread)."""

    def stream(self, messages, **kwargs):
        self.calls.append(messages)
        text = messages[-1]["content"]
        subject = next((ln[9:] for ln in text.splitlines() if ln.startswith("Subject: ")), "")
        words = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith(('"""', "Email", "---"))), "")
        yield f"About {subject or words[:30]}."


@pytest.fixture
def model(monkeypatch):
    m = Echo()
    monkeypatch.setattr("assistant.services.models.resolve", lambda *a, **k: m)
    return m


def _digest(*args):
    return CliRunner().invoke(cli, ["digest", *args])


def test_markdown_lists_threads_by_latest_activity_with_short_summaries_for_conversations(model):
    r = _digest(str(DEMO))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[:3] == ["# Digest", "", "5 threads, 8 messages"]
    bullets = [ln for ln in lines if ln.startswith("- ")]
    subjects = [ln.removeprefix("  Subject: ") for ln in lines if ln.startswith("  Subject: ")]
    assert subjects == ["Lieferung fehlt", "Password reset link not working", "Q4 planning meeting moved to Thursday",
                        "Charged twice for my subscription", "Order arrived damaged"]
    assert len(bullets) == 5 and "(3 messages) — Dana Whitfield and Support Team" in bullets[-1]
    shorts = [ln for ln in lines if ln.startswith("  About")]
    assert len(shorts) == 2  # the two threads of several messages
    assert len(model.calls) == 5 * 9 + 2  # a consensus line per thread (1 + 8 samples), a short one for 2


def test_json_carries_thread_ids_message_ids_and_paths(model):
    r = _digest(str(DEMO), "--json", "--samples", "0")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [len(row["messages"]) for row in rows] == [1, 1, 2, 1, 3]
    assert all(row["thread_id"].startswith("t-") and row["summary"] for row in rows)
    assert [row["short"] is None for row in rows] == [True, True, False, True, False]
    assert [row["last"] for row in rows] == sorted((row["last"] for row in rows), reverse=True)
    damaged = rows[-1]["messages"]
    assert [Path(m["path"]).name for m in damaged] == ["001.eml", "002.eml", "003.eml"]
    assert damaged[0]["message_id"] == "<m1@example.org>"
    again = _digest(str(DEMO), "--json", "--samples", "0")
    assert again.stdout == r.stdout and len(model.calls) == 5 + 2  # the second digest came from the cache


def test_since_and_unread_pick_the_messages(model, tmp_path):
    box = tmp_path / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    for i, f in enumerate(sorted(DEMO.glob("*.eml"))):
        dest = box / "new" / f"{i}.host" if i % 2 else box / "cur" / f"{i}.host:2,S"
        shutil.copy(f, dest)
    r = _digest(str(box), "--unread", "--json", "--samples", "0")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sum(len(row["messages"]) for row in rows) == 4 and all(row["unread"] == len(row["messages"]) for row in rows)
    r = _digest(str(box), "--since", "2026-11-05", "--samples", "0")
    assert r.exit_code == 0 and "3 threads, 4 messages, 2 unread" in r.stdout
    r = _digest(str(box), "--since", "1d")
    assert r.exit_code == 0 and "0 threads, 0 messages" in r.stdout


def test_a_mailbox_of_notmuch_threads(model, shared):
    r = _digest(str(shared / "maildir-notmuch" / "default"), "--json", "--samples", "0")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) > 10 and any(len(row["messages"]) > 3 for row in rows)
    assert all((row["short"] is None) == (len(row["messages"]) == 1) for row in rows)


def test_nothing_readable_is_a_one_line_error(model, tmp_path):
    (tmp_path / "x.eml").write_bytes(b"%PDF-1.4 binary")
    r = _digest(str(tmp_path))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.stderr.splitlines()[-1] == f"Error: no message could be read in {tmp_path}"
    assert model.calls == []


def test_progress_is_a_status_line_when_stderr_is_not_a_terminal(model, monkeypatch):
    monkeypatch.setattr("assistant.cli.base.STATUS_EVERY", 0.0)
    r = _digest(str(DEMO), "--samples", "0")
    status = [line for line in r.stderr.splitlines() if line.startswith("digest: ")]
    assert status and status[-1].startswith("digest: 7/7")
