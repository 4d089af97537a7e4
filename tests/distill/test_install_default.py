"""`--default` never swaps in a student that scores worse than the current default on the same report card,
and a student is the default only for the tasks it was trained on."""

from __future__ import annotations

import json

import pytest

from assistant import paths
from assistant.engine import registry
from distill.install import worse_than_current


def _manifest(tmp_path, name, line_rouge, items=100, tasks=None):
    folder = tmp_path / name
    folder.mkdir()
    m = {"name": name, "task": "summarize", "metrics": {"tasks": {"summarize-line": {
        "student": {"rougeL": line_rouge, "items": items}, "teacher": {"rougeL": 33.9, "items": items}}}}}
    if tasks is not None:
        m["tasks"] = tasks
    (folder / "manifest.json").write_text(json.dumps(m))
    return m, folder / "manifest.json"


def test_a_worse_student_is_refused_and_a_better_one_is_not(tmp_path):
    shipped, path = _manifest(tmp_path, "shipped-v4", 34.28)
    current = registry.ModelEntry("shipped-v4", "base.gguf", task="summarize", source="shipped", manifest=str(path))
    quick, _ = _manifest(tmp_path, "quickstart", 21.0)
    better, _ = _manifest(tmp_path, "v9", 35.1)
    assert worse_than_current(quick, current) == ["summarize-line: shipped-v4 34.28 ROUGE-L, quickstart 21.00"]
    assert worse_than_current(better, current) == []
    other_card, _ = _manifest(tmp_path, "other", 21.0, items=40)  # not the same report card: no comparison
    assert worse_than_current(other_card, current) == []


def test_a_subject_line_student_is_no_default_for_paragraphs(tmp_path):
    from assistant.services import models

    _, path = _manifest(tmp_path, "quickstart", 21.0, tasks=["summarize-line"])
    registry.add_model(paths.base_model_path(), "quickstart", None, "summarize", source="distill", manifest=str(path))
    models.set_default("summarize", "quickstart")
    assert models.default_for("summarize", "summarize-line") == "quickstart"
    shipped = models.default_for("summarize", "summarize-long")
    assert shipped != "quickstart" and registry.all_models()[shipped].source in ("shipped", "builtin")
    assert models.default_for("summarize") == "quickstart"  # no length asked: the user's choice


@pytest.mark.parametrize("force", [False, True])
def test_install_default_refuses_a_worse_student_unless_forced(tmp_path, force, monkeypatch):
    from distill import install

    m, _ = _manifest(tmp_path, "quickstart", 21.0)
    shipped = next(e for e in registry.shipped_students().values() if e.task == "summarize")
    current_line = json.loads(open(shipped.manifest).read())["metrics"]["tasks"]["summarize-line"]["student"]
    m["metrics"]["tasks"]["summarize-line"]["student"]["items"] = current_line["items"]

    class Cfg:
        name, task = "quickstart", "summarize"

    registry.add_model(paths.base_model_path(), "quickstart", None, "summarize", source="distill")
    if force:
        install._make_default(Cfg, m, force=True)
        assert registry.load_config()["defaults"]["summarize"] == "quickstart"
    else:
        with pytest.raises(install.WorseThanDefault, match=f"roll back with `assistant models default summarize {shipped.name}`"):
            install._make_default(Cfg, m, force=False)
        assert "summarize" not in (registry.load_config().get("defaults") or {})
