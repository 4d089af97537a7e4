"""Model names: plain words for --model; a backend prefix (openai:) never names a local model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from assistant import AssistantError, paths
from assistant.cli import cli
from assistant.engine import registry
from assistant.engine.models import LlamaCppModel, OpenAIModel

BAD_NAMES = ["openai:evil", "ollama:x", "", "   ", " mine", "mine\t", "a/b", "a\\b", "..", ".", "a\nb", "a\x1bb",
             "a\u202eb", "x" * 129]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_in_one_line(name):
    r = CliRunner().invoke(cli, ["models", "add", str(paths.base_model_path()), "--name", name])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "name" in lines[0], r.output
    assert not (paths.data_dir() / "models.json").exists()


def test_good_name_is_added_and_resolves_locally():
    r = CliRunner().invoke(cli, ["models", "add", str(paths.base_model_path()), "--name", "my-model_2.1", "--task", "reply"])
    assert r.exit_code == 0, r.output
    assert isinstance(registry.resolve("my-model_2.1"), LlamaCppModel)


def test_legacy_backend_like_name_is_never_sent_to_a_server(monkeypatch):
    """A local model registered as `openai:evil` before names were checked, and made a default, went to the
    remote backend with the user's mail; a registered name now resolves to the local file."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    (paths.data_dir() / "models.json").write_text(json.dumps({"openai:evil": {
        "name": "openai:evil", "path": str(paths.base_model_path()), "source": "user"}}))
    model = registry.resolve("openai:evil")
    assert isinstance(model, LlamaCppModel) and model.path == paths.base_model_path()
    assert isinstance(registry.resolve("openai:served-name"), OpenAIModel)


@pytest.mark.parametrize("spec,expect", [
    ("openai:", "openai:NAME needs the server's model name"),
    ("openai: ", "openai:NAME needs the server's model name"),
    ("ollama:llama3", "unknown backend 'ollama'"),
    ("", "no model named ''"),
])
def test_bad_specs_are_one_line(spec, expect, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(AssistantError, match=expect):
        registry.resolve(spec)


def test_task_option_has_help():
    r = CliRunner().invoke(cli, ["models", "add", "--help"])
    assert r.exit_code == 0
    task_help = " ".join(r.output.split("--task [")[1].split("--help")[0].split())
    assert "chat, summarize, reply or ask" in task_help, r.output


def test_a_grounded_student_serves_ask_and_reply_kb_only(tmp_path, monkeypatch):
    """Two shipped support students: the plain one keeps reply and chat, the grounded one (sorted first)
    takes `ask` and `reply --kb`; a user's reply choice without grounded training is passed over for --kb."""
    from assistant.services import models

    for name, tasks in (("a-grounded", ["ask", "reply+kb"]), ("b-plain", ["chat", "reply"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps(
            {"name": name, "task": "support", "adapter": "adapter.gguf", "tasks": tasks}))
    monkeypatch.setattr(paths, "assets_dir", lambda: tmp_path)
    assert [models.default_for(t) for t in ("reply", "chat", "ask")] == ["b-plain", "b-plain", "a-grounded"]
    assert models.default_for("reply", "reply+kb") == "a-grounded"
    models.set_default("reply", "b-plain")
    assert models.default_for("reply", "reply+kb") == "a-grounded"
    registry.set_default("ask", "b-plain", ("ask",))  # in config.toml by hand: it stands where its manifest lists no tasks...
    assert models.default_for("ask") == "a-grounded"  # ...and is passed over where it lists others
    (tmp_path / "b-plain" / "manifest.json").write_text(json.dumps({"name": "b-plain", "task": "support"}))
    assert models.default_for("ask") == "b-plain"


def test_a_grounded_student_is_made_the_default_for_ask_only(tmp_path, monkeypatch):
    """The app's `d` key and `assistant models default`: a student whose manifest lists only ask becomes the
    ask default, and is refused as the reply default (it would be passed over without a word)."""
    from assistant.services import models

    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(
        {"name": "g", "task": "support", "adapter": "adapter.gguf", "tasks": ["ask"]}))
    monkeypatch.setattr(paths, "assets_dir", lambda: tmp_path)
    e = models.all_models()["g"]
    assert models.task_of_student(e) == "ask"
    models.set_default("ask", "g")
    with pytest.raises(AssistantError, match="g was trained for ask, not reply"):
        models.set_default("reply", "g")
    assert registry.load_config()["defaults"] == {"ask": "g"}
