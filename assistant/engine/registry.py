"""The models the assistant knows: the built-in base, shipped students, and models the user added.

Registered models live in `models.json` in the data dir; per-task defaults (`chat`,
`summarize`, `reply`) in `config.toml`. A student is a base GGUF plus a LoRA adapter
GGUF, described by the `manifest.json` that `distill export`/`install` writes last.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant import AssistantError, paths

TASKS = ("chat", "summarize", "reply")
BASE_NAME = "smollm2-135m"
# a shipped student serves these tasks when the user chose nothing else
_TASK_OF_STUDENT = {"summarize": ("summarize",), "support": ("reply", "chat")}


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
    return paths.config_dir() / "config.toml"


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
    f = _config_file()
    if not f.exists():
        return {}
    try:
        return tomllib.loads(f.read_text())
    except tomllib.TOMLDecodeError as e:
        raise AssistantError(f"{f}: invalid TOML ({e})") from None


def save_config(cfg: dict) -> None:
    import tomli_w

    f = _config_file()
    tmp = f.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(cfg))
    os.replace(tmp, f)


def trained_prompt(e: ModelEntry) -> str | None:
    """The task prompt version a student was trained on, from its manifest."""
    if not e.manifest:
        return None
    try:
        return json.loads(Path(e.manifest).read_text()).get("prompt_version")
    except (OSError, ValueError):
        return None


def prompt_current(e: ModelEntry) -> bool:
    """False for a student trained on a prompt version this code can no longer build."""
    from assistant.tasks import reply, summarize

    trained = trained_prompt(e)
    known = {"summarize": summarize.VERSIONS, "support": reply.VERSIONS}.get(e.task or "")
    return not (trained and known) or trained in known


def default_for(task: str) -> str:
    """The model name used for a task: the user's choice, else a shipped student, else the base."""
    chosen = load_config().get("defaults", {}).get(task)
    models = all_models()
    if chosen and chosen in models:
        return chosen
    for e in models.values():
        if e.source == "shipped" and task in _TASK_OF_STUDENT.get(e.task or "", ()) and prompt_current(e):
            return e.name
    return BASE_NAME


def set_default(task: str, name: str) -> None:
    if task not in TASKS:
        raise AssistantError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if name not in all_models():
        raise AssistantError(f"no model named {name!r}; see `assistant models list`")
    cfg = load_config()
    cfg.setdefault("defaults", {})[task] = name
    save_config(cfg)


def add_model(path: str | Path, name: str, lora: str | Path | None = None, task: str | None = None,
              source: str = "user", manifest: str | None = None) -> ModelEntry:
    from assistant.engine.gguf_check import read_header

    path = Path(path).resolve()
    read_header(path)
    if lora:
        lora = Path(lora).resolve()
        read_header(lora)
    if name in (BASE_NAME, *shipped_students()):
        raise AssistantError(f"{name!r} is a built-in model name; pick another")
    entries = _user_entries()
    entries[name] = ModelEntry(name, str(path), str(lora) if lora else None, task, source, manifest)
    _write_user_entries(entries)
    return entries[name]


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


def resolve(spec: str | None, task: str, base_url: str | None = None):
    """A ChatModel from a --model value: None (task default), a name, a .gguf path, or openai:NAME."""
    from assistant.engine.models import OpenAIModel

    spec = spec or default_for(task)
    if spec.startswith("openai:"):
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise AssistantError("openai:NAME needs --base-url URL (or OPENAI_BASE_URL)")
        return OpenAIModel(spec.split(":", 1)[1], url, os.environ.get("OPENAI_API_KEY"))
    models = all_models()
    if spec in models:
        e = models[spec]
        model = _local(e.name, Path(e.path), Path(e.lora_path) if e.lora_path else None, e.mergeable)
        model.prompt_version = trained_prompt(e)
        return model
    if spec.endswith(".gguf") and Path(spec).exists():
        return _local(Path(spec).stem, Path(spec), None)
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
