"""The models the assistant knows: the built-in base, shipped students, and models the user added.

Registered models live in `models.json` in the data dir; per-task defaults (`chat`,
`summarize`, `reply`) in `config.toml`. A student is a base GGUF plus a LoRA adapter
GGUF, described by the `manifest.json` that `distill export`/`install` writes last.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from assistant import AssistantError, paths

BASE_NAME = "smollm2-135m"


@dataclass
class ModelEntry:
    name: str
    path: str
    lora_path: str | None = None
    task: str | None = None
    source: str = "user"  # builtin | shipped | user | distill
    manifest: str | None = None

    @property
    def mergeable(self) -> bool:
        """Students made by distill are folded into their base; a user's own adapter runs as it is."""
        return bool(self.lora_path) and self.source in ("shipped", "distill")

    def size_bytes(self) -> int:
        return sum(Path(p).stat().st_size for p in (self.path, self.lora_path) if p and Path(p).exists())


def _registry_file() -> Path:
    return paths.data_dir() / "models.json"


def _config_file() -> Path:
    return paths.config_file()


def _user_entries() -> dict[str, ModelEntry]:
    f = _registry_file()
    if not f.exists():
        return {}
    try:
        return {k: ModelEntry(**v) for k, v in json.loads(f.read_text()).items()}
    except (ValueError, TypeError) as e:
        raise AssistantError(f"{f}: unreadable model registry ({e})") from None


def _write_user_entries(entries: dict[str, ModelEntry]) -> None:
    f = _registry_file()
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: asdict(v) for k, v in entries.items()}, indent=2))
    os.replace(tmp, f)


def entry_from_manifest(manifest_path: Path, source: str) -> ModelEntry:
    m = json.loads(manifest_path.read_text())
    folder = manifest_path.parent
    base = m.get("base_path") or str(paths.base_model_path())
    if not Path(base).is_absolute():
        base = str(folder / base)
    adapter = m.get("adapter")
    return ModelEntry(
        name=m["name"], path=base, lora_path=str(folder / adapter) if adapter else None,
        task=m.get("task"), source=source, manifest=str(manifest_path),
    )


def shipped_students() -> dict[str, ModelEntry]:
    out = {}
    for manifest in sorted(paths.assets_dir().glob("*/manifest.json")):
        try:
            e = entry_from_manifest(manifest, "shipped")
            out[e.name] = e
        except (ValueError, KeyError, OSError):
            continue  # a broken shipped manifest must not take the CLI down
    return out


def all_models() -> dict[str, ModelEntry]:
    models = {BASE_NAME: ModelEntry(BASE_NAME, str(paths.base_model_path()), source="builtin")}
    models.update(shipped_students())
    models.update(_user_entries())
    return models


def load_config() -> dict:
    """config.toml as a dict whose known keys have their types (see `_config_schema`); {} if there is none.

    Raises AssistantError naming the file and the key for unreadable files, bad TOML and wrong types.
    """
    from pydantic import ValidationError

    f = _config_file()
    try:
        raw = tomllib.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as e:
        raise AssistantError(f"{f}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except OSError as e:
        raise AssistantError(f"{f}: cannot read it: {(e.strerror or str(e)).lower()}") from None
    except tomllib.TOMLDecodeError as e:
        raise AssistantError(f"{f}: invalid TOML ({e})") from None
    try:
        return _config_schema().model_validate(raw).model_dump(exclude_unset=True)
    except ValidationError as e:
        first, more = e.errors()[0], len(e.errors()) - 1
        key = ".".join(str(part) for part in first["loc"])
        what = {"dict_type": "should be a table", "model_type": "should be a table",
                "string_type": "should be a string"}.get(first["type"], first["msg"].lower())
        also = f" (and {more} more)" if more else ""
        raise AssistantError(f"{f}: {key} {what}, not {first['input']!r}{also}") from None


@functools.cache
def _config_schema() -> type:
    """The known keys of config.toml and their types; unknown keys are kept as they are."""
    from pydantic import BaseModel, ConfigDict, field_validator

    class Reply(BaseModel):
        model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, use_attribute_docstrings=True)
        slots: dict[str, str] = {}
        """Values for {{Slot}} placeholders in drafted replies, e.g. "Agent Name" = "Anna"."""

    class Runtime(BaseModel):
        model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)
        merge: str = "Q8_0"
        """How students run: Q8_0 or F16 (folded into their base), or none (adapter applied at run time)."""

        @field_validator("merge", mode="before")
        @classmethod
        def _flag(cls, v: object) -> object:
            return {True: "Q8_0", False: "none"}.get(v, v) if isinstance(v, bool) else v  # merge = false

    class Config(BaseModel):
        model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)
        defaults: dict[str, str] = {}
        """The model name per task, e.g. reply = "my-support"."""
        reply: Reply = Reply()
        runtime: Runtime = Runtime()

    return Config


def save_config(cfg: dict) -> None:
    import tomli_w

    f = _config_file()
    tmp = f.with_suffix(".tmp")
    try:
        tmp.write_text(tomli_w.dumps(cfg), encoding="utf-8")
        os.replace(tmp, f)
    except OSError as e:
        raise paths.write_error(f, e) from None


def manifest_field(e: ModelEntry, key: str):
    """One field of a model's manifest; None without a manifest, or when it cannot be read."""
    if not e.manifest:
        return None
    try:
        return json.loads(Path(e.manifest).read_text()).get(key)
    except (OSError, ValueError):
        return None


def trained_prompt(e: ModelEntry) -> str | None:
    """The task prompt version a student was trained on, from its manifest."""
    return manifest_field(e, "prompt_version")


def trained_for(e: ModelEntry, covers: str | tuple[str, ...] | None) -> bool:
    """False when the model's manifest lists the tasks it was trained on and a task of `covers` (e.g.
    summarize-short) is not one of them: a subject-line student is no default for paragraphs."""
    needed = (covers,) if isinstance(covers, str) else tuple(covers or ())
    trained = manifest_field(e, "tasks") if needed else None
    return not trained or all(t in trained for t in needed)


def default_for(task: str, serves: Callable[[ModelEntry], bool], covers: str | tuple[str, ...] | None = None) -> str:
    """The model name used for `task`: the user's choice in config.toml, else the first shipped student
    that `serves` it (the caller knows tasks; the registry does not), else the base; either only if
    trained for the exact tasks of `covers` (e.g. summarize-long), when its manifest lists them."""
    chosen = (load_config().get("defaults") or {}).get(task)
    models = all_models()
    if chosen in models and trained_for(models[chosen], covers):
        return chosen
    return next((e.name for e in models.values() if e.source == "shipped" and serves(e) and trained_for(e, covers)),
                BASE_NAME)


def set_default(task: str, name: str, tasks: tuple[str, ...]) -> None:
    if task not in tasks:
        raise AssistantError(f"unknown task {task!r}; choose one of {', '.join(tasks)}")
    if name not in all_models():
        raise AssistantError(f"no model named {name!r}; see `assistant models list`")
    cfg = load_config()
    cfg.setdefault("defaults", {})[task] = name
    save_config(cfg)


def add_model(path: str | Path, name: str, lora: str | Path | None = None, task: str | None = None,
              source: str = "user", manifest: str | None = None) -> ModelEntry:
    check_name(name)
    path = _checked_path(path)
    if lora:
        lora = _checked_path(lora)
    if name in (BASE_NAME, *shipped_students()):
        raise AssistantError(f"{name!r} is a built-in model name; pick another")
    entries = _user_entries()
    entries[name] = ModelEntry(name, str(path), str(lora) if lora else None, task, source, manifest)
    _write_user_entries(entries)
    return entries[name]


def check_name(name: str) -> str:
    """A model name is a plain word for `--model`: not empty, no backend prefix, no path, no control characters."""
    if not name or not name.strip():
        raise AssistantError("a model name cannot be empty")
    if name != name.strip():
        raise AssistantError(f"model name {name!r} starts or ends with a space")
    if ":" in name:
        raise AssistantError(f"model name {name!r} has a ':' (reserved for backends, as in openai:NAME)")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise AssistantError(f"model name {name!r} looks like a path; pick a plain name")
    if not name.isprintable():
        raise AssistantError(f"model name {name!r} has control characters")
    if len(name) > 128:
        raise AssistantError(f"model name is {len(name)} characters long; keep it under 128")
    return name


def _checked_path(path: str | Path) -> Path:
    """The absolute path of a GGUF that passed read_header (a FIFO, a folder or a symlink loop fails it)."""
    from assistant.engine.gguf_check import read_header

    read_header(path)
    try:
        return Path(path).resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise AssistantError(f"{path}: cannot resolve the path ({e})".splitlines()[0]) from None


def remove_model(name: str) -> None:
    entries = _user_entries()
    if name not in entries:
        raise AssistantError(f"{name!r} is not a model you added (built-in and shipped models stay)")
    del entries[name]
    _write_user_entries(entries)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(spec: str, base_url: str | None = None):
    """A ChatModel from a model name, a .gguf path, or openai:NAME (services.models picks a task's default)."""
    from assistant.engine.models import BACKENDS, OpenAIModel

    models = all_models()
    if spec in models:  # a registered name first: a local model is never sent to a server because of its name
        e = models[spec]
        model = _local(e.name, Path(e.path), Path(e.lora_path) if e.lora_path else None, e.mergeable)
        model.prompt_version = trained_prompt(e)
        return model
    backend, colon, remote = spec.partition(":")
    if colon and backend in BACKENDS:
        if not remote.strip():
            raise AssistantError(f"{backend}:NAME needs the server's model name after '{backend}:'")
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise AssistantError(f"{backend}:NAME needs --base-url URL (or OPENAI_BASE_URL)")
        return OpenAIModel(remote, url, os.environ.get("OPENAI_API_KEY"))
    if spec.endswith(".gguf") and Path(spec).is_file():
        return _local(Path(spec).stem, Path(spec), None)
    if colon and backend and not Path(spec).exists():
        raise AssistantError(f"unknown backend {backend!r} in {spec!r}; a server's model is openai:NAME")
    raise AssistantError(f"no model named {spec!r}; see `assistant models list`")


_INSTANCES: dict = {}


MERGE_KINDS = ("Q8_0", "F16", "none")


def merge_kind() -> str | None:
    """How a base + adapter student runs: folded into a cached merged GGUF (default Q8_0), or `none`.

    Set in config.toml (`[runtime] merge = "none"`) or with ASSISTANT_MERGE.
    """
    kind = os.environ.get("ASSISTANT_MERGE") or load_config().get("runtime", {}).get("merge", "Q8_0")
    kind = {"q8_0": "Q8_0", "f16": "F16", "none": "none", "false": "none"}.get(str(kind).lower(), kind)
    if kind not in MERGE_KINDS:
        raise AssistantError(f"runtime merge must be one of {', '.join(MERGE_KINDS)}, not {kind!r}")
    return None if kind == "none" else kind


def _local(name: str, path: Path, lora: Path | None, merge: bool = False):
    """One LlamaCppModel per (name, file, adapter): a loaded model is reused, not loaded again."""
    from assistant.engine.models import LlamaCppModel

    merge = merge_kind() if lora and merge else None
    key = (name, str(path), str(lora), merge)
    if key not in _INSTANCES:
        _INSTANCES[key] = LlamaCppModel(name, path, lora, merge)
    return _INSTANCES[key]
