"""`--default` never swaps in a student that scores worse than the current default on the student's own
held-out items (the current default is asked them as the assistant would ask it), and a student is the
default only for the tasks it was trained on: in the CLI, the digest and the app alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import paths
from assistant.engine import registry
from distill import data as data_stage
from distill import install
from distill.config import load_config
from distill.layout import eval_dir
from tests.distill.helpers import write_config

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo" / "mailbox" / "002.eml"


def _shipped_summarizer() -> registry.ModelEntry:
    return next(e for e in registry.shipped_students().values() if e.task == "summarize")


def _evaluated_run(tmp_path, shared, perfect: bool):
    """A run with its held-out subject lines (8 AESLC dev emails) and the student's answers to them as
    `distill eval` leaves them: the reference itself (a perfect student) or nothing useful."""
    from distill.evaluate import items

    tmp_path.mkdir(exist_ok=True)
    cfg = load_config(write_config(tmp_path, shared))
    data_stage.run(cfg)
    eval_dir(cfg).mkdir(parents=True, exist_ok=True)
    with open(eval_dir(cfg) / "outputs.jsonl", "w") as f:
        for ex in items(cfg):
            ref = ex["reference"][0] if isinstance(ex["reference"], list) else ex["reference"]
            f.write(json.dumps({"id": ex["id"], "student": ref if perfect else "Hello"}) + "\n")
    return cfg


def test_a_worse_student_is_refused_and_a_better_one_is_not(tmp_path, shared):
    shipped = _shipped_summarizer()
    worse = install.worse_than_current(_evaluated_run(tmp_path / "a", shared, perfect=False), "summarize")
    assert len(worse) == 1 and worse[0].startswith(f"summarize-line: {shipped.name} scores ")
    assert worse[0].endswith("ROUGE-L on the same 8 items, t 0.00")
    assert float(worse[0].split()[3]) > 5  # the shipped student's own answers were scored
    assert install.worse_than_current(_evaluated_run(tmp_path / "b", shared, perfect=True), "summarize") == []


def test_a_stale_report_card_is_not_compared(tmp_path, shared):
    cfg = _evaluated_run(tmp_path, shared, perfect=True)
    lines = (eval_dir(cfg) / "outputs.jsonl").read_text().splitlines()
    (eval_dir(cfg) / "outputs.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # an item the card never saw
    assert install.worse_than_current(cfg, "summarize") == [
        "its report card has no answer of its own to some of its 8 held-out items (run `distill eval` again)"]


def test_the_student_is_compared_with_the_model_used_for_each_task(tmp_path, shared):
    """With a subject-line student as the default (forced), a new summarizer is still compared, for lines,
    with the model the assistant uses for them: that student, not the shipped one."""
    line_only = _line_only_default(tmp_path)
    assert install.current_default("summarize", "summarize-line").name == line_only
    assert install.current_default("summarize", "summarize-short").name == _shipped_summarizer().name
    worse = install.worse_than_current(_evaluated_run(tmp_path / "run", shared, perfect=False), "summarize")
    assert len(worse) == 1 and worse[0].startswith(f"summarize-line: {line_only} scores ")


@pytest.mark.parametrize("force", [False, True])
def test_install_default_refuses_a_worse_student_unless_forced(tmp_path, shared, force):
    cfg = _evaluated_run(tmp_path, shared, perfect=False)
    registry.add_model(paths.base_model_path(), cfg.name, None, "summarize", source="distill")
    if force:
        install._make_default(cfg, force=True)
        assert registry.load_config()["defaults"]["summarize"] == cfg.name
    else:
        with pytest.raises(install.WorseThanDefault,
                           match=f"roll back with `assistant models default summarize {_shipped_summarizer().name}`"):
            install._make_default(cfg, force=False)
        assert "summarize" not in (registry.load_config().get("defaults") or {})


def _line_only_default(tmp_path) -> str:
    """A subject-line student (the quickstart's kind) made the summarize default by force."""
    folder = tmp_path / "quickstart"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"name": "quickstart", "task": "summarize", "tasks": ["summarize-line"]}))
    registry.add_model(paths.base_model_path(), "quickstart", None, "summarize", source="distill",
                       manifest=str(folder / "manifest.json"))
    registry.set_default("summarize", "quickstart", ("summarize", "reply", "chat"))
    return "quickstart"


def test_a_subject_line_student_is_no_default_for_paragraphs(tmp_path):
    from assistant.services import models

    line_only = _line_only_default(tmp_path)
    assert models.default_for("summarize", "summarize-line") == line_only
    assert models.default_for("summarize", "summarize-long") == _shipped_summarizer().name
    assert models.default_for("summarize", ("summarize-line", "summarize-short")) == _shipped_summarizer().name
    assert models.default_for("summarize") == line_only  # no length asked: the user's choice


def _assistant(*args) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "assistant.cli", *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.slow
def test_the_commands_pass_over_a_subject_line_default_for_paragraphs(tmp_path):
    """As the quickstart left it before: `summarize --length short` and the digest used the subject-line
    student and printed subject lines."""
    line_only = _line_only_default(tmp_path)
    shipped = _shipped_summarizer().name
    assert _assistant("summarize", DEMO, "--length", "line", "--samples", "0", "--json")[0]["model"] == line_only
    assert _assistant("summarize", DEMO, "--length", "short", "--json")[0]["model"] == shipped
    digest = _assistant("digest", DEMO.parent, "--json", "--samples", "0")
    assert digest and all(d["model"] == shipped for d in digest)
