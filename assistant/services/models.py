"""Which model serves a task, and the models the user has: the task-aware face of the engine's registry.

    model = resolve(None, "summarize")       # the default for summaries, loaded lazily
    rows = listing()                         # every model with the tasks it is the default for

The engine's registry knows files and names, not tasks; this module knows which student serves
which task (from `assistant.tasks`) and which prompt versions this code still builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from assistant import AssistantError
from assistant.engine import registry
from assistant.engine.models import ChatModel
from assistant.engine.registry import ModelEntry
from assistant.tasks import COVERS, RUNTIME_TASKS, SERVES, versions_of

BASE_NAME = registry.BASE_NAME


def prompt_current(e: ModelEntry) -> bool:
    """False for a student trained on a prompt version this code can no longer build."""
    trained = registry.trained_prompt(e)
    known = versions_of(e.task or "")
    return not (trained and known) or trained in known


def serves(e: ModelEntry, task: str) -> bool:
    """A shipped student serves the runtime tasks of its kind, while this code can build its prompt."""
    return task in SERVES.get(e.task or "", ()) and prompt_current(e)


def default_for(task: str, covers: str | tuple[str, ...] | None = None) -> str:
    """The model name used for a task (and the exact tasks it must cover, e.g. summarize-long): the user's
    choice, else a shipped student, else the base; a choice trained for other lengths is passed over.
    Without `covers`, the task's own (COVERS): `ask` goes to a student trained on grounded answers."""
    return registry.default_for(task, lambda e: serves(e, task), covers or COVERS.get(task))


def resolve(spec: str | None, task: str, base_url: str | None = None, covers: str | tuple[str, ...] | None = None) -> ChatModel:
    """A ChatModel from a --model value: None (the default for `task`, trained for `covers`), a name, a .gguf
    path, or openai:NAME."""
    return registry.resolve(spec or default_for(task, covers), base_url)


def set_default(task: str, name: str) -> None:
    """Make `name` the default for `task`; refused for a student whose manifest lists other tasks (it would be
    passed over)."""
    e = registry.all_models().get(name)
    if e is not None and not registry.trained_for(e, COVERS.get(task)):
        raise AssistantError(f"{name} was trained for {', '.join(registry.manifest_field(e, 'tasks'))}, "
                                      f"not {COVERS[task]}: it cannot be the default for {task}")
    registry.set_default(task, name, RUNTIME_TASKS)


def listing() -> list[dict]:
    """Every model with what the list shows: source, size, the tasks it is the default for, and
    whether its prompt is current."""
    defaults = {t: default_for(t) for t in RUNTIME_TASKS}
    return [{"name": e.name, "path": e.path, "lora_path": e.lora_path, "task": e.task, "source": e.source,
             "size": e.size_bytes(), "default_for": [t for t, n in defaults.items() if n == e.name],
             "prompt_current": prompt_current(e)} for e in registry.all_models().values()]


all_models = registry.all_models
add_model = registry.add_model
remove_model = registry.remove_model
merge_kind = registry.merge_kind
load_config = registry.load_config


def decode_speed(name: str, prompt: str = "Write a short note about tea.", max_tokens: int = 64) -> float:
    """Tokens a second `name` decodes after its first token, on a short chat prompt."""
    import time

    model = resolve(name, "chat")
    t0, n = None, 0
    for _ in model.stream([{"role": "user", "content": prompt}], max_tokens=max_tokens):
        n += 1
        t0 = t0 or time.time()
    return (n - 1) / max(1e-6, time.time() - t0) if t0 else 0.0


def task_of_student(e: ModelEntry) -> str | None:
    """The runtime task a student is made the default for: the first its kind serves that its manifest's
    tasks cover (a grounded student: ask), else its kind's first."""
    if not e.task:
        return None
    kind = SERVES.get(e.task, (e.task,))
    return next((t for t in kind if registry.trained_for(e, COVERS.get(t))), kind[0])


def prepare() -> Iterator[tuple[str, Path]]:
    """Build each student's merged GGUF now (else built on first use): (name, merged file) as each is ready.
    Nothing when the runtime merge is off."""
    from assistant.engine.gguf_tools import merged

    kind = merge_kind()
    for e in all_models().values() if kind else ():
        if e.mergeable:
            yield e.name, merged(Path(e.path), Path(e.lora_path), kind, e.name)
