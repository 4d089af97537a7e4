"""Bad user state is one line naming the file and the key, never a traceback: config.toml with
wrong types or bytes, an ASSISTANT_HOME that is a file or read-only, a read-only history."""

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import AssistantError, paths
from assistant.cli import cli
from assistant.engine import registry
from assistant.services import store

ROOT = os.geteuid() == 0  # root writes through read-only permissions: those cases are simulated too


def write_config(text: str | bytes) -> Path:
    f = paths.config_file()
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


@pytest.mark.parametrize("text, message", [
    ('defaults = "x"', "defaults should be a table, not 'x'"),
    ("[defaults]\nreply = 3", "defaults.reply should be a string, not 3"),
    ("[reply]\nslots = 3", "reply.slots should be a table, not 3"),
    ("reply = 3", "reply should be a table, not 3"),
    ('[reply.slots]\n"Agent Name" = ["a"]', "reply.slots.Agent Name should be a string, not ['a']"),
    ("[runtime]\nmerge = 5", "runtime.merge should be a string, not 5"),
    ("a = [", "invalid TOML"),
    (b'[reply.slots]\n"Agent Name" = "Ren\xe9"\n', "not UTF-8 text (byte 0xe9 at offset 33)"),
])
def test_bad_config_is_one_line_naming_file_and_key(text, message):
    f = write_config(text)
    with pytest.raises(AssistantError) as e:
        registry.load_config()
    assert str(e.value).startswith(f"{f}: ") and message in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(cli, ["models", "list"])  # any command that reads the config
    assert r.exit_code == 1 and r.output == f"Error: {e.value}\n"


def test_good_config_keeps_unknown_keys_and_coerces_numbers():
    write_config('[defaults]\nreply = "mine"\n[reply.slots]\n"Phone" = 5551234\n[runtime]\nmerge = false\n[extra]\nx = 1\n')
    assert registry.load_config() == {"defaults": {"reply": "mine"}, "reply": {"slots": {"Phone": "5551234"}},
                                      "runtime": {"merge": "none"}, "extra": {"x": 1}}
    assert registry.merge_kind() is None


def test_config_file_is_in_the_config_dir(user_home):
    assert paths.config_file() == user_home / "config" / "config.toml"
    assert not paths.config_file().exists()
    assert registry.load_config() == {}


def test_home_that_is_a_file_is_one_line(user_home, monkeypatch):
    user_home.parent.mkdir(parents=True, exist_ok=True)
    user_home.write_text("not a folder")
    r = CliRunner().invoke(cli, ["logs"])
    assert r.exit_code == 1
    assert r.output == f"Error: cannot write to {user_home}: not a directory; set ASSISTANT_HOME to a writable folder\n"


def refuse_mkdir(monkeypatch, under: Path) -> None:
    """mkdir below `under` fails as it does in a read-only folder (root would succeed for real)."""
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if under in self.parents or self == under:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)


@pytest.mark.skipif(ROOT, reason="root can write to a read-only folder")
def test_read_only_home_is_one_line(user_home):
    user_home.mkdir(parents=True)
    user_home.chmod(0o555)
    try:
        r = CliRunner().invoke(cli, ["logs"])
    finally:
        user_home.chmod(0o755)
    assert r.exit_code == 1
    assert r.output == f"Error: cannot write to {user_home}: permission denied; set ASSISTANT_HOME to a writable folder\n"


def test_read_only_home_is_one_line_simulated(user_home, monkeypatch):
    user_home.mkdir(parents=True)
    refuse_mkdir(monkeypatch, user_home)
    r = CliRunner().invoke(cli, ["logs"])
    assert r.exit_code == 1
    assert r.output == f"Error: cannot write to {user_home}: permission denied; set ASSISTANT_HOME to a writable folder\n"


def read_only_history() -> sqlite3.Connection:
    """A history with one entry, opened as the user's read-only logs.db opens (writes refused)."""
    db = store.connect()
    store.log_response(db, model="m", kind="chat", prompt="old prompt", response="old answer")
    db.close()
    if ROOT:  # what SQLite does with a 0444 file for other users: reads work, writes are refused
        db = store.connect()
        db.execute("PRAGMA query_only = ON")
        return db
    store.db_path().chmod(0o444)
    return store.connect()


def test_read_only_history_reads_and_skips_writes_with_one_warning(capsys):
    db = read_only_history()
    assert [r["prompt"] for r in store.search_logs(db, "old")] == ["old prompt"]
    assert store.log_response(db, model="m", kind="chat", prompt="new", response="new") is None
    assert store.add_feedback(db, task="reply", model="m", source="s", input="i", draft="d", final="d") is None
    assert store.new_conversation(db, "m")  # an id, for a conversation that is not stored
    err = capsys.readouterr().err
    assert err == (f"warning: history is not saved: cannot write to {store.db_path()}: it is read-only; "
                   "set ASSISTANT_HOME to a writable folder\n")


def test_history_that_is_not_a_database_is_one_line():
    store.db_path().write_text("these are not the logs you are looking for" * 50)
    r = CliRunner().invoke(cli, ["logs"])
    assert r.exit_code == 1 and r.output == f"Error: {store.db_path()}: file is not a database\n"
