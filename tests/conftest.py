"""Every test gets empty user dirs (ASSISTANT_HOME in a tmp folder), as on a fresh install."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def user_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    return home


@pytest.fixture
def shared():
    if not SHARED.exists():
        pytest.skip("../shared/data is not beside the project")
    return SHARED


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(pytest.mark.timeout(600)) if config.pluginmanager.hasplugin("timeout") else None
