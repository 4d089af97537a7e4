"""Exit status of `assistant summarize`: 0 when something was summarized (failures warned on stderr),
1 when nothing was; every failure named on stderr in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from tests.fakes import FakeModel

DEMO = Path(__file__).resolve().parents[3] / "assets" / "demo" / "mailbox"


@pytest.fixture
def fake(monkeypatch):
    model = FakeModel(["Refund for the Pro plan."] * 10)
    monkeypatch.setattr("assistant.services.models.resolve", lambda *a, **k: model)
    return model


def _run(*args):
    return CliRunner().invoke(cli, ["summarize", "--no-log", *args])


def test_a_missing_path_fails(fake, tmp_path):
    r = _run(str(tmp_path / "nope"))
    assert r.exit_code == 1 and "nope" in r.stderr and "Traceback" not in r.output


def test_an_empty_folder_says_nothing_was_found(fake, tmp_path):
    r = _run(str(tmp_path))
    assert r.exit_code == 1 and "no messages found" in r.stderr


def test_some_good_and_some_bad_exits_zero_with_a_warning(fake, tmp_path):
    r = _run(str(DEMO / "004.eml"), str(tmp_path / "nope"), "--json")
    assert r.exit_code == 0
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [("summary" in line, "error" in line) for line in lines] == [(True, False), (False, True)]
    assert "1 of 2 message(s) could not be summarized" in r.stderr


def test_every_message_failing_exits_one(monkeypatch, tmp_path):
    from assistant import AssistantError

    class Broken(FakeModel):
        def stream(self, *a, **k):
            raise AssistantError("model crashed")

    monkeypatch.setattr("assistant.services.models.resolve", lambda *a, **k: Broken())
    r = _run(str(DEMO / "004.eml"))
    assert r.exit_code == 1 and "model crashed" in r.stderr and "nothing was summarized" in r.stderr


def test_a_status_line_shows_progress_when_stderr_is_not_a_terminal(fake, monkeypatch):
    monkeypatch.setattr("assistant.cli.base.STATUS_EVERY", 0.0)
    r = _run(str(DEMO))
    assert r.exit_code == 0
    status = [line for line in r.stderr.splitlines() if line.startswith("summarizing: ")]
    assert status and status[-1].startswith(f"summarizing: {len(r.stdout.splitlines())}/")


def test_reply_to_an_outlook_msg_is_one_line_not_a_prompt(fake, tmp_path):
    f = tmp_path / "ticket.msg"
    f.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 40)
    r = CliRunner().invoke(cli, ["reply", str(f), "--no-log"])
    assert r.exit_code == 1 and "unsupported format: Outlook .msg" in r.stderr and fake.calls == []


def test_mail_show_exits_one_when_nothing_was_read(tmp_path):
    f = tmp_path / "x.msg"
    f.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    r = CliRunner().invoke(cli, ["mail", "show", str(f)])
    assert r.exit_code == 1 and json.loads(r.stdout.splitlines()[0])["error"].startswith("unsupported format")
    r = CliRunner().invoke(cli, ["mail", "show", str(DEMO / "004.eml"), str(f)])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2


def test_index_add_names_symlink_loops_and_fifos_and_keeps_the_users_path(tmp_path):
    import os

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    os.mkfifo(tmp_path / "pipe.txt")
    r = CliRunner().invoke(cli, ["index", "add", str(tmp_path / "a"), str(tmp_path / "pipe.txt"), "-C", "t"])
    assert r.exit_code == 1 and "symlink loop" in r.stderr and "FIFO" in r.stderr and "Traceback" not in r.output
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The quarterly budget review moved to Friday afternoon in room 4.")
    (tmp_path / "link").symlink_to(docs)
    r = CliRunner().invoke(cli, ["index", "add", str(tmp_path / "link"), "-C", "t", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["search", "budget review", "-C", "t", "--json"])
    assert json.loads(r.stdout.splitlines()[0])["path"] == str(tmp_path / "link" / "note.txt")
