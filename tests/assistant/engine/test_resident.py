"""Loaded models stay loaded while their files fit the resident budget: switching between two students
(the mail screen's one-liners, then a draft) must not reload one and evaluate its prompt again."""

from __future__ import annotations

from assistant import paths
from assistant.engine import models
from assistant.engine.models import LlamaCppModel

MESSAGES = [{"role": "user", "content": "Say hello to Anna."}]


def _loaded(*ms: LlamaCppModel) -> list[bool]:
    return [m._llm is not None for m in ms]


def test_two_small_models_stay_loaded_and_the_least_recently_used_goes_over_the_budget(monkeypatch):
    a, b, c, d = (LlamaCppModel(name, paths.base_model_path(), n_ctx=512) for name in ("res-a", "res-b", "res-c", "res-d"))
    try:
        size = paths.base_model_path().stat().st_size
        monkeypatch.setattr(models, "RESIDENT_BYTES", 2 * size + 1)  # room for two
        models.complete(a, MESSAGES, max_tokens=4)
        llm_a = a._llm
        models.complete(b, MESSAGES, max_tokens=4)
        assert _loaded(a, b) == [True, True]
        models.complete(a, MESSAGES, max_tokens=4)
        assert a._llm is llm_a  # not reloaded
        models.complete(c, MESSAGES, max_tokens=4)
        assert _loaded(a, b, c) == [True, False, True]  # b was used least recently
        monkeypatch.setattr(models, "RESIDENT_BYTES", size)  # room for one: a load unloads the rest
        models.complete(d, MESSAGES, max_tokens=4)
        assert _loaded(a, b, c, d) == [False, False, False, True]
    finally:
        for m in (a, b, c, d):
            m.unload()


def test_a_model_registered_again_under_its_name_replaces_the_old_one():
    old, new = (LlamaCppModel("res-same", paths.base_model_path(), n_ctx=512) for _ in range(2))
    try:
        models.complete(old, MESSAGES, max_tokens=4)
        models.complete(new, MESSAGES, max_tokens=4)
        assert _loaded(old, new) == [False, True]
    finally:
        new.unload()
        old.unload()
