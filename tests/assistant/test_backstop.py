"""The last-resort handler both CLIs share (clickutil.ErrorGroup), and count options with bounds.

An unexpected exception is one line, exit 1, its traceback appended to errors.log in the data dir
and printed with --debug or ASSISTANT_DEBUG=1; Ctrl-C is "interrupted", exit 130; Click's own
exceptions pass through as Click prints them.
"""

import re

import click
import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli import cli
from assistant.services import store

HINT = "--debug or ASSISTANT_DEBUG=1 prints it"


@pytest.fixture
def raising(monkeypatch):
    """`assistant logs` raises what the test passes in."""

    def arm(error: BaseException) -> None:
        def search_logs(*a, **k):
            raise error

        monkeypatch.setattr(store, "search_logs", search_logs)

    return arm


def test_unexpected_error_is_one_line_exit_1_and_logged(raising):
    raising(ZeroDivisionError("division by zero"))
    r = CliRunner().invoke(cli, ["logs", "-q", "refund"])
    log = paths.data_dir() / "errors.log"
    assert r.exit_code == 1
    assert r.output == f"error: ZeroDivisionError: division by zero (traceback in {log}; {HINT})\n"
    text = log.read_text()
    assert re.match(r"--- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d cli logs -q refund\nTraceback", text)
    assert "in search_logs" in text and text.rstrip().endswith("ZeroDivisionError: division by zero")
    CliRunner().invoke(cli, ["logs"])
    assert log.read_text().count("Traceback") == 2  # appended, not replaced


@pytest.mark.parametrize("how", [["--debug", "logs"], ["logs", "--debug"], "env"])
def test_debug_prints_the_traceback(raising, monkeypatch, how):
    raising(ZeroDivisionError("division by zero"))
    if how == "env":
        monkeypatch.setenv("ASSISTANT_DEBUG", "1")
    r = CliRunner().invoke(cli, ["logs"] if how == "env" else how)
    assert r.exit_code == 1
    assert r.output.startswith("Traceback (most recent call last):") and "in search_logs" in r.output
    assert r.output.endswith(f"error: ZeroDivisionError: division by zero (traceback in {paths.data_dir() / 'errors.log'})\n")


def test_multi_line_message_keeps_its_first_line(raising):
    raising(RuntimeError("first line\nsecond line"))
    assert CliRunner().invoke(cli, ["logs"]).output.startswith("error: RuntimeError: first line (traceback in ")


def test_unwritable_data_dir_still_reports_the_error(monkeypatch):
    def search_logs(*a, **k):  # the data dir goes read-only, then the bug strikes
        monkeypatch.setattr(paths, "data_dir", lambda: (_ for _ in ()).throw(OSError("read-only file system")))
        raise KeyError("x")

    monkeypatch.setattr(store, "search_logs", search_logs)
    r = CliRunner().invoke(cli, ["logs"])
    assert r.exit_code == 1 and r.output == f"error: KeyError: 'x' ({HINT})\n"


def test_ctrl_c_is_interrupted_130(raising):
    raising(KeyboardInterrupt())
    r = CliRunner().invoke(cli, ["logs"])
    assert (r.exit_code, r.output) == (130, "interrupted\n")
    assert not (paths.data_dir() / "errors.log").exists()


def test_click_exceptions_pass_through(raising):
    raising(click.ClickException("no such thing"))
    assert (lambda r: (r.exit_code, r.output))(CliRunner().invoke(cli, ["logs"])) == (1, "Error: no such thing\n")
    raising(click.Abort())
    assert (lambda r: (r.exit_code, r.output))(CliRunner().invoke(cli, ["logs"])) == (1, "Aborted!\n")
    r = CliRunner().invoke(cli, ["logs", "--count", "many"])
    assert r.exit_code == 2 and "Invalid value for '-n' / '--count': 'many' is not a valid integer" in r.output
    assert CliRunner().invoke(cli, ["--version"]).exit_code == 0
    assert not (paths.data_dir() / "errors.log").exists()


@pytest.mark.parametrize("args", [["logs", "-n"], ["search", "x", "-k"], ["ask", "x", "-k"], ["logs", "--count"]])
def test_huge_counts_are_a_usage_error_not_an_overflow(args):
    for value in ("99999999999999999999", "0", "-1"):
        r = CliRunner().invoke(cli, [*args, value])
        assert r.exit_code == 2 and "is not in the range" in r.output and "Traceback" not in r.output


def test_both_commands_offer_debug():
    from distill.cli import cli as distill

    for group in (cli, distill):
        assert "--debug" in CliRunner().invoke(group, ["--help"]).output
