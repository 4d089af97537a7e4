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


def _evaluated_run(tmp_path, shared, student_rouge: float):
    """A run with its held-out subject lines (8 AESLC dev emails) and a one-task report card, the shape
    `distill eval` writes for a subject-line student (its scores under "systems" only)."""
    tmp_path.mkdir(exist_ok=True)
    cfg = load_config(write_config(tmp_path, shared))
    data_stage.run(cfg)
    eval_dir(cfg).mkdir(parents=True, exist_ok=True)
    (eval_dir(cfg) / "report.json").write_text(json.dumps(
        {"name": cfg.name, "task": "summarize", "items": 8, "systems": {"student": {"rougeL": student_rouge, "items": 8}}}))
    return cfg


def test_a_worse_student_is_refused_and_a_better_one_is_not(tmp_path, shared):
    shipped = _shipped_summarizer()
    worse = install.worse_than_current(_evaluated_run(tmp_path / "a", shared, 0.0), shipped)
    assert len(worse) == 1 and worse[0].startswith(f"summarize-line: {shipped.name} ")
    assert worse[0].endswith("ROUGE-L, t 0.00 on the same 8 items")
    assert float(worse[0].split()[2]) > 5  # the shipped student's own answers were scored
    assert install.worse_than_current(_evaluated_run(tmp_path / "b", shared, 99.0), shipped) == []


@pytest.mark.parametrize("force", [False, True])
def test_install_default_refuses_a_worse_student_unless_forced(tmp_path, shared, force):
    cfg = _evaluated_run(tmp_path, shared, 0.0)
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
