"""Typed, validated configuration for a distillation run, loaded from TOML plus `key=value` overrides.

    cfg = load_config("configs/summarize.toml", ["train.max_steps=20"])

Unknown keys are rejected, so a typo in a config fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


# ── checks used by the dataclasses' __post_init__: one-line ValueErrors naming the key ──

_WHAT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false", "dict": "a table"}


def _key(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def _fits(ftype: str, value) -> bool:
    """Does `value` have the field type `ftype` (an annotation string: int, float, str, bool, dict,
    tuple[X, ...], or a section class name)? An int is a number; a bool is not an integer."""
    if ftype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if ftype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ftype in ("str", "bool", "dict"):
        return isinstance(value, {"str": str, "bool": bool, "dict": dict}[ftype])
    if ftype.startswith("tuple["):
        item = ftype[len("tuple["):].split(",")[0]
        return isinstance(value, tuple) and all(_fits(item, v) for v in value)
    return type(value).__name__ == ftype


def _what(ftype: str) -> str:
    if ftype.startswith("tuple["):
        item = ftype[len("tuple["):].split(",")[0]
        return {"str": "a list of strings", "int": "a list of integers", "float": "a list of numbers"}.get(item, "a list of tables")
    return _WHAT.get(ftype, "a table")


def check_types(obj, section: str) -> None:
    """Every field of the dataclass `obj` has its declared type (ValueError naming `section.key` if not)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _fits(f.type, value):
            raise ValueError(f"{_key(section, f.name)} must be {_what(f.type)}, not {value!r}")


def one_of(obj, section: str, **choices: tuple) -> None:
    for name, allowed in choices.items():
        if getattr(obj, name) not in allowed:
            raise ValueError(f"{_key(section, name)} must be {', '.join(allowed[:-1])} or {allowed[-1]}, "
                             f"not {getattr(obj, name)!r}")


def at_least(obj, section: str, **lows: float) -> None:
    for name, low in lows.items():
        if getattr(obj, name) < low:
            raise ValueError(f"{_key(section, name)} must be at least {low}, not {getattr(obj, name)!r}")


def above(obj, section: str, **lows: float) -> None:
    for name, low in lows.items():
        if getattr(obj, name) <= low:
            raise ValueError(f"{_key(section, name)} must be greater than {low}, not {getattr(obj, name)!r}")


def between(obj, section: str, **ranges: tuple[float, float]) -> None:
    for name, (low, high) in ranges.items():
        if not low <= getattr(obj, name) <= high:
            raise ValueError(f"{_key(section, name)} must be between {low} and {high}, not {getattr(obj, name)!r}")


@dataclass(frozen=True)
class Source:
    kind: str = field(metadata={"help": "aeslc | bitext | tickets | abcd | mail | threads | csv | jsonl | feedback | grounded"})
    path: str = field(metadata={"help": "file or folder, relative to the config file"})
    task: str = field(default="", metadata={"help": "summarize-line|short|long, summarize-thread-*, reply, chat; default from kind"})
    target: str = field(default="reference", metadata={"help": "reference (the source's own answer) or teacher"})
    limit: int = field(default=0, metadata={"help": "at most this many examples (0 = all)"})
    weight: float = field(default=1.0, metadata={"help": "repeat factor in the training mix"})
    inject: float = field(default=0.0, metadata={"help": "share of examples given a prompt injection in the input (target unchanged)"})
    house_style: bool = field(default=False, metadata={"help": "reply targets get a greeting and sign-off in the customer's language (train split)"})
    split: str = field(default="auto", metadata={"help": "auto (by hash), train, or val (e.g. a dev file)"})
    val_percent: float = field(default=-1.0, metadata={"help": "held-out share of this source when split is auto (-1: data.val_percent)"})
    columns: dict = field(default_factory=dict, metadata={"help": "csv/jsonl column mapping: text, subject, target, id, language"})
    kb_data: str = field(default="", metadata={"help": "grounded: the folder of the shared data sets the StackFAQ "
                                                       "knowledge base is written from"})
    without_source: float = field(default=0.0, metadata={"help": "grounded ask, train: share of the answerable questions "
                                                         "asked again with their answering passage left out (the next "
                                                         "retrieved takes its place), answered that the passages do "
                                                         "not cover it"})

    def __post_init__(self):
        where = "data.sources"
        check_types(self, where)
        one_of(self, where, kind=("aeslc", "bitext", "tickets", "abcd", "mail", "threads", "csv", "jsonl", "feedback",
                                  "grounded"),
               split=("auto", "train", "val"), target=("reference", "teacher"))
        at_least(self, where, limit=0, weight=0)
        between(self, where, inject=(0, 1), without_source=(0, 1))
        if self.val_percent != -1:
            between(self, where, val_percent=(0, 100))


@dataclass(frozen=True)
class DataConfig:
    sources: tuple[Source, ...] = ()
    val_percent: float = field(default=5.0, metadata={"help": "held-out share, fixed by a hash of each example id"})
    max_prompt_chars: int = 3500
    min_target_chars: int = 2
    max_target_chars: int = 2000

    def __post_init__(self):
        check_types(self, "data")
        between(self, "data", val_percent=(0, 100))
        at_least(self, "data", max_prompt_chars=1, min_target_chars=0, max_target_chars=1)


@dataclass(frozen=True)
class TeachConfig:
    teacher: str = field(default="qwen2.5-coder-1.5b", metadata={"help": "a known teacher name, a .gguf path, or openai:MODEL"})
    base_url: str = ""
    allow_remote: bool = field(default=False, metadata={"help": "required for a non-loopback server: the data leaves this machine"})
    concurrency: int = 4
    batch: int = field(default=16, metadata={"help": "sequences decoded together by the local teacher (16: 2.5x one at a time here)"})
    samples: int = field(default=1, metadata={"help": "samples per prompt; the best by score is kept"})
    temperature: float = 0.0
    top_k_logits: int = field(default=0, metadata={"help": "store the teacher's top-k log-probs per answer token (logit KD)"})
    limit: int = field(default=0, metadata={"help": "stop after this many examples in all (0 = all)"})
    n_ctx: int = 2048
    pregenerated: tuple[str, ...] = field(default=(), metadata={"help": "teacher JSONL(.gz) files (globs allowed) reused by id before generating"})
    chunk_dir: str = field(default="", metadata={"help": "also write finished answers here as numbered gzip JSONL chunks "
                                                 "(teacher-0001.jsonl.gz, ...) to commit as a long run goes; read back as pregenerated"})
    chunk_size: int = field(default=400, metadata={"help": "answers per chunk file"})
    tasks: tuple[str, ...] = field(default=(), metadata={"help": "answer only prompts of these tasks on this run "
                                   "(teach.tasks=ask: the grounded questions before the replies); empty = all"})

    def __post_init__(self):
        if isinstance(self.tasks, str):  # `teach.tasks=ask` on the command line
            object.__setattr__(self, "tasks", tuple(t for t in self.tasks.split(",") if t))
        check_types(self, "teach")
        at_least(self, "teach", concurrency=1, batch=1, samples=1, temperature=0, top_k_logits=0, limit=0, n_ctx=1,
                 chunk_size=1)


@dataclass(frozen=True)
class TrainConfig:
    base: str = field(default="smollm2-135m", metadata={"help": "student: smollm2-135m, a .gguf path or an HF folder"})
    method: str = field(default="lora", metadata={"help": "lora | full"})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lr: float = 3e-4
    warmup_steps: int = 10
    max_steps: int = 200
    batch_tokens: int = field(default=2048, metadata={"help": "tokens per packed micro-batch"})
    grad_accum: int = 1
    max_len: int = 512
    row_len: int = field(default=0, metadata={"help": "tokens per packed row (0 = max_len): short examples share rows "
                                             "of this length, a longer one has a row of its own (attention costs "
                                             "length squared: rows of 512 train about 1.5x faster than rows of 2048)"})
    eval_every: int = 50
    save_every: int = 25
    eval_examples: int = 64
    seed: int = 1337
    kd: str = field(default="none", metadata={"help": "none | forward_kl | reverse_kl | jsd"})
    kd_weight: float = field(default=0.5, metadata={"help": "share of the KD loss mixed with the SFT loss"})
    threads: int = 0
    abstain_weight: float = field(default=1.0, metadata={"help": "repeat factor of grounded answers that say the passages "
                                  "do not cover the question (unanswerable ones, and the teacher's where the source was "
                                  "not retrieved), on top of their source's weight: too many teach a student to say it "
                                  "to every question"})
    shuffle_passages: float = field(default=0.0, metadata={"help": "share of the grounded answer copies that cite, trained "
                                    "with their passages in another order and the marks renumbered to match (retrieval "
                                    "puts the answering passage first for most questions: the student learned to cite [1])"})
    drop_invented: bool = field(default=False, metadata={"help": "leave out teacher summaries that state a name, number, "
                                                              "date or address their email does not hold"})
    dpo_weight: float = field(default=0.0, metadata={"help": "weight of a DPO loss on (edited final, model draft) "
                                         "pairs and train.rejected pairs, against the model training starts from; 0 = off"})
    dpo_beta: float = 0.1
    dpo_pairs: int = field(default=1, metadata={"help": "preference pairs per micro-batch, drawn in a seeded order"})
    rejected: tuple[str, ...] = field(default=(), metadata={"help": "JSONL(.gz) files of {id, output}: a model's own "
                                      "answers to training prompts, the rejected side of DPO pairs against the target "
                                      "(self-play, as SPIN); used when dpo_weight > 0"})
    init: str = field(default="", metadata={"help": "start the LoRA from this adapter (a student's adapter.gguf or a "
                                             "peft folder) instead of zeros; its rank and alpha replace lora_r/lora_alpha"})
    autocast: str = field(default="auto", metadata={"help": "bf16 (about 1.45x faster on CPUs with AVX512-BF16 or AMX; "
                                                             "many times slower without), none, or auto: bf16 where the CPU has it"})
    keep: str = field(default="best", metadata={"help": "weights to export: best (lowest held-out loss) or last; last "
                                                "when the held-out references differ in style from the targets"})

    def __post_init__(self):
        if isinstance(self.rejected, str):  # `train.rejected=own.jsonl.gz` on the command line
            object.__setattr__(self, "rejected", (self.rejected,))
        check_types(self, "train")
        between(self, "train", shuffle_passages=(0, 1))
        one_of(self, "train", method=("lora", "full"), kd=("none", "forward_kl", "reverse_kl", "jsd"),
               keep=("best", "last"), autocast=("auto", "bf16", "none"))
        at_least(self, "train", lora_r=1, warmup_steps=0, max_steps=1, batch_tokens=1, grad_accum=1, max_len=2, row_len=0,
                 eval_every=1, save_every=1, eval_examples=0, threads=0, dpo_weight=0, dpo_pairs=1,
                 abstain_weight=0)
        above(self, "train", lora_alpha=0, lr=0, dpo_beta=0)
        between(self, "train", lora_dropout=(0, 1), kd_weight=(0, 1))
        if self.rejected and self.dpo_weight <= 0:
            raise ValueError("train.rejected gives DPO pairs: set train.dpo_weight > 0 (e.g. 1.0) to use them")
        if self.init and self.method != "lora":
            raise ValueError("train.init starts a LoRA from an adapter: it needs train.method=lora")


@dataclass(frozen=True)
class EvalConfig:
    examples: int = 100
    judge: bool = False
    judge_examples: int = field(default=40, metadata={"help": "items judged per task"})
    judge_tasks: tuple[str, ...] = field(default=(), metadata={"help": "tasks to judge (empty: all)"})
    compare: tuple[str, ...] = ("student", "base", "teacher")
    merge: str = field(default="Q8_0", metadata={"help": "a LoRA student is judged as the assistant runs it: folded into "
                                                          "one GGUF of this type (its runtime default), or none (base + adapter)"})
    eval_file: str = field(default="", metadata={"help": "JSONL of held-out items with references (default: the val split)"})
    long_threads: str = field(default="map", metadata={"help": "a thread too long for one prompt: map (each system "
                                                                "summarizes its messages, then those summaries, as the "
                                                                "assistant does) or cut (the thread cut to fit, to compare)"})

    def __post_init__(self):
        check_types(self, "eval")
        at_least(self, "eval", examples=1, judge_examples=1)
        one_of(self, "eval", merge=("Q8_0", "F16", "Q4_0", "Q4_K_M", "none"), long_threads=("map", "cut"))
        for system in self.compare:
            if system not in ("student", "base", "teacher"):
                raise ValueError(f"eval.compare must list student, base or teacher, not {system!r}")


@dataclass(frozen=True)
class ExportConfig:
    kind: str = field(default="adapter", metadata={"help": "adapter (LoRA GGUF on the base) or merged"})
    quant: str = field(default="Q8_0", metadata={"help": "for merged: F16, Q8_0 or Q4_K_M"})
    min_agreement: float = field(default=0.9, metadata={"help": "fail below this top-1 agreement with torch"})
    tasks: tuple[str, ...] = field(default=(), metadata={"help": "the tasks the assistant may make it the default for "
                                   "(its manifest's tasks: ask, reply+kb, reply, chat, summarize-*); empty = every task "
                                   "it has training examples for (replayed replies count: a grounded student names ask)"})

    def __post_init__(self):
        if isinstance(self.tasks, str):  # `export.tasks=ask,reply+kb` on the command line
            object.__setattr__(self, "tasks", tuple(t for t in self.tasks.split(",") if t))
        check_types(self, "export")
        one_of(self, "export", kind=("adapter", "merged"), quant=("F16", "Q8_0", "Q4_K_M"))
        between(self, "export", min_agreement=(0, 1))


@dataclass(frozen=True)
class Config:
    name: str
    task: str = field(metadata={"help": "summarize, or support (the student of `assistant reply` and the app's "
                                        "chat; 'reply' is accepted as the same)"})
    out_dir: str = field(default="", metadata={"help": "run folder (default: runs/<name> in the data dir)"})
    data: DataConfig = DataConfig()
    teach: TeachConfig = TeachConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    export: ExportConfig = ExportConfig()
    root: str = field(default=".", metadata={"help": "folder relative paths are resolved against (the config's)"})

    def __post_init__(self):
        check_types(self, "")
        if self.task == "reply":  # the runtime's name for what the support student does
            object.__setattr__(self, "task", "support")  # frozen
        one_of(self, "", task=("summarize", "support", "reply"))
        if not self.name.strip():
            raise ValueError("name must not be empty: it names the run folder and the installed model")

    @property
    def run_dir(self) -> Path:
        if self.out_dir:
            return self.resolve(self.out_dir)
        from assistant import paths

        return paths.data_dir() / "runs" / self.name

    def resolve(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else (Path(self.root) / path).resolve()


SECTIONS = {"data": "DataConfig", "teach": "TeachConfig", "train": "TrainConfig", "eval": "EvalConfig", "export": "ExportConfig"}


def _build(cls, raw: dict, where: str):
    """`cls` from a TOML table: unknown keys refused, sections and sources built, lists as tuples."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"unknown config key(s) in [{where or 'top'}]: {', '.join(sorted(unknown))}")
    kwargs = {}
    for key, value in raw.items():
        ftype = known[key].type
        if key == "sources":
            if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
                raise ValueError(f"data.sources must be a list of tables ([[data.sources]]), not {value!r}")
            value = tuple(_build(Source, s, "data.sources") for s in value)
        elif isinstance(value, dict) and ftype in SECTIONS.values():
            value = _build(globals()[ftype], value, key)
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, str) and ftype == "tuple[str, ...]":  # `key=one.jsonl` on the command line
            value = (value,)
        kwargs[key] = value
    return cls(**kwargs)


def _set(raw: dict, dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {dotted}: {p} is not a section")
    try:
        node[leaf] = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        node[leaf] = value  # a bare string


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    path = Path(path)
    raw = tomllib.loads(path.read_text())
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        _set(raw, *item.split("=", 1))
    raw.setdefault("root", str(path.parent.resolve()))
    return _build(Config, raw, "")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)
