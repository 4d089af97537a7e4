"""Stage 2, `distill teach`: the teacher answers each prompt whose target is `teacher`.

    distill teach configs/summarize.toml                       # local GGUF teacher (default Qwen2.5-Coder-1.5B)
    distill teach cfg.toml teach.teacher=openai:qwen teach.base_url=http://127.0.0.1:8080/v1 teach.concurrency=8

Output `<run>/teach/teacher.jsonl` is append-only, one line per finished example, flushed
and fsynced: kill -9 and run again continues where it stopped, nothing lost or duplicated.
Rejected outputs (empty, looping, refusing, off-format) are recorded with a reason and
not retried. With `teach.top_k_logits = K` the teacher's top-K log-probs over the answer
tokens are stored too (compressed), for token-level KD. Answers made without them (the batched
run makes none) get them afterwards from `distill teach --logits`, teacher-forced, into
`<run>/teach/topk.jsonl` beside the answers.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import os
import re
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from assistant.tasks import summarize as summarize_task
from distill.config import Config, TeachConfig
from distill.data import read_examples
from distill.layout import MissingInput, examples_path, require, teacher_file

# a refusal, after a greeting too ("Hello! I'm sorry, but I can't assist with that." passed as a grounded reply);
# not an apology that goes on to answer ("I'm sorry to hear that your order is late")
_REFUSAL = re.compile(r"^(?:(?:hello|hi|hey|dear\b[^\n,!.]*)[,!.]?\s*)?(?:i'?m sorry,? but i (?:can'?t|cannot|am unable|'m unable)"
                      r"|i (?:cannot|can'?t) (?:help|assist)|as an ai|i am unable|i'?m unable)", re.I)


def max_tokens_for(task: str) -> int:
    length = task.rpartition("-")[2]
    return summarize_task.MAX_TOKENS.get(length, 400)


def reject_reason(task: str, text: str) -> str | None:
    """Why a teacher output is unusable, or None when it is fine."""
    t = text.strip()
    if not t:
        return "empty"
    if _REFUSAL.match(t):
        return "refusal"
    words = t.split()
    if len(words) >= 12:
        grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
        if len(set(grams)) < 0.6 * len(grams):
            return "looping"
    if task.endswith("-line") and (len(words) > 14 or "\n" in t):
        return "off-format: a subject line must be one short line"
    if task == "reply" and len(words) < 8:
        return "off-format: reply too short"
    return None


def score(task: str, text: str) -> float:
    """Rank several samples of one prompt: valid first, then a length close to the task's sweet spot."""
    if reject_reason(task, text):
        return -1.0
    n = len(text.split())
    ideal = {"line": 6, "short": 30, "long": 110}.get(task.rpartition("-")[2], 150)
    return 1.0 / (1.0 + abs(n - ideal) / ideal)


def pack_topk(ids, logprobs) -> dict:
    """Top-k ids (int32) and log-probs (float16), zlib-compressed and base64-encoded."""
    import numpy as np

    ids, lp = np.asarray(ids, dtype=np.int32), np.asarray(logprobs, dtype=np.float16)
    return {"shape": list(ids.shape), "ids": base64.b64encode(zlib.compress(ids.tobytes())).decode(),
            "logprobs": base64.b64encode(zlib.compress(lp.tobytes())).decode()}


def unpack_topk(d: dict):
    import numpy as np

    shape = tuple(d["shape"])
    ids = np.frombuffer(zlib.decompress(base64.b64decode(d["ids"])), dtype=np.int32).reshape(shape)
    lp = np.frombuffer(zlib.decompress(base64.b64decode(d["logprobs"])), dtype=np.float16).reshape(shape)
    return ids, lp.astype(np.float32)


class LocalTeacher:
    """A GGUF teacher run by llama-cpp-python. The shared system prompt's KV state is reused between prompts."""

    def __init__(self, path: Path, tc: TeachConfig):
        import llama_cpp

        from assistant.engine.gguf_check import read_header
        from assistant.engine.models import quiet_llama, physical_cores

        info = read_header(path)
        quiet_llama()
        self.name = info.metadata.get("general.name") or path.stem
        self.template = info.metadata.get("tokenizer.chat_template")
        self.tc = tc
        self.llm = llama_cpp.Llama(str(path), n_ctx=tc.n_ctx, n_threads=physical_cores(), n_batch=512,
                                   flash_attn=True, logits_all=tc.top_k_logits > 0, verbose=False)
        self._batched = None

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        from assistant.engine.models import render_chat

        text = render_chat(self.template, messages) if self.template else str(messages)
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def generate(self, messages: list[dict], max_tokens: int, seed: int = 0) -> str:
        toks = self.prompt_tokens(messages)[-(self.tc.n_ctx - max_tokens) :]
        out = self.llm.create_completion(toks, max_tokens=max_tokens, temperature=self.tc.temperature, seed=seed,
                                         stop=["<|im_end|>", "<|endoftext|>"], repeat_penalty=1.0)
        return out["choices"][0]["text"].strip()

    def generate_many(self, batch: list[list[dict]], max_tokens: int | list[int]) -> Iterator[tuple[int, str]]:
        """Greedy answers to many prompts, continuously batched through llama.cpp's multi-sequence
        API, yielded as (index, text) as each answer ends. Prompts run in the order given, window by window
        (4 x teach.batch), and in token order within a window, so those that share a start (one email asked
        for a short and a long summary) sit together and the shared part is evaluated once, while a run
        stopped early has answered the first prompts it was given (a sort of the whole list ran all 898
        grounded replies before the first grounded question)."""
        if self._batched is None:
            from assistant.engine.models import physical_cores
            from assistant.engine.batched import BatchedGenerator

            self._batched = BatchedGenerator(self.llm, self.tc.batch, self.tc.n_ctx, physical_cores())
        limits = max_tokens if isinstance(max_tokens, list) else [max_tokens] * len(batch)
        prompts = [self.prompt_tokens(m)[-(self.tc.n_ctx - n) :] for m, n in zip(batch, limits)]
        window = 4 * self.tc.batch
        order = sorted(range(len(prompts)), key=lambda i: (i // window, prompts[i]))
        stream = self._batched.stream([prompts[i] for i in order], [limits[i] for i in order])
        for j, toks in stream:
            yield order[j], self._batched.text(toks)

    def topk(self, messages: list[dict], answer: str, k: int, room: int | None = None) -> dict | None:
        """Teacher-forced top-k log-probs at each answer token (what the student predicts there); None when
        prompt and answer are more than `room` tokens (or the context)."""
        import numpy as np

        prompt = self.prompt_tokens(messages)
        answer_ids = self.llm.tokenize((answer + "<|im_end|>").encode(), add_bos=False, special=True)
        if len(prompt) + len(answer_ids) > min(room or self.tc.n_ctx, self.tc.n_ctx):
            return None
        self.llm.reset()
        self.llm.eval(prompt + answer_ids)
        scores = np.asarray(self.llm.scores[len(prompt) - 1 : len(prompt) + len(answer_ids) - 1], dtype=np.float32)
        top = np.argpartition(scores, -k, axis=-1)[:, -k:]  # the top k of the scores are those of the log-probs
        logz = np.logaddexp.reduce(scores, axis=-1, keepdims=True)
        d = pack_topk(top, np.take_along_axis(scores, top, axis=-1) - logz)
        d["answer_ids"] = answer_ids
        return d


def _loopback(host: str) -> bool:
    """Only this machine: localhost or a loopback address (127.0.0.1.example.net is a remote name)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAITeacher:
    """An OpenAI-compatible server, asked with N concurrent requests."""

    def __init__(self, model: str, base_url: str, tc: TeachConfig):
        host = urlparse(base_url).hostname or ""
        if not _loopback(host):
            if not tc.allow_remote:
                raise ValueError(f"{base_url} is not on this machine: your data would leave it. "
                                 "Set teach.allow_remote=true to accept that.")
            print(f"warning: sending prompts to {host}: the data leaves this machine", file=sys.stderr)
        from assistant.engine.models import OpenAIModel

        self.model, self.name, self.tc = OpenAIModel(model, base_url, os.environ.get("OPENAI_API_KEY")), model, tc

    def generate(self, messages: list[dict], max_tokens: int, seed: int = 0) -> str:
        from assistant.engine.models import complete

        return complete(self.model, messages, max_tokens=max_tokens, temperature=self.tc.temperature, seed=seed)


def make_teacher(tc: TeachConfig):
    if tc.teacher.startswith("openai:"):
        return OpenAITeacher(tc.teacher.split(":", 1)[1], tc.base_url, tc)
    from distill.teachers import ensure_teacher

    return LocalTeacher(ensure_teacher(tc.teacher), tc)


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def prompt_key(prompt) -> str:
    """A short hash of what a model was asked (messages, or a whole prompt spec): an answer is reused only for
    the same question, so a changed prompt under the same id is asked anew rather than served stale."""
    return hashlib.sha1(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


def asked(ex: dict) -> list[dict]:
    """What the teacher is asked for an example: its prompt, or the prompt with a hint only the teacher sees."""
    return ex.get("teacher_messages") or ex["messages"]


def fits(rec: dict | None, ex: dict) -> bool:
    """Whether `rec` answers `ex`'s current prompt. Records without a key (committed before keys were
    recorded) do; a reduce prompt is rebuilt from the answers, so its id alone decides."""
    return rec is not None and ("key" not in rec or "map" in ex or rec["key"] == prompt_key(asked(ex)))


def answered(done: dict[str, dict], ex: dict) -> bool:
    """Whether `done` holds an answer to `ex`'s current prompt."""
    return fits(done.get(ex["id"]), ex)


def _records(path: Path, repair: bool = False) -> Iterator[dict]:
    """The JSON lines of an append-only file, up to a torn last line (kill -9 mid-write); with `repair`
    (the writer, under the run's lock) the torn line is cut off, so that appends stay clean."""
    if not path.exists():
        return
    good = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                break
            good += len(line)
            yield rec
    if repair and good != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good)


def load_done(path: Path) -> dict[str, dict]:
    """Finished records by id. A torn last line (kill -9 mid-write) is cut off so appends stay clean."""
    return {rec["id"]: rec for rec in _records(path, repair=True)}


def read_pregenerated(files) -> Iterator[dict]:
    """Records of teacher JSONL(.gz) files; a name with a glob (`data/x/*.jsonl.gz`) reads every match in order.
    An unreadable or torn file is reported on stderr and the rest still read."""
    for f in files:
        p = Path(f)
        matches = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else [p]
        for m in matches:
            if not m.exists():
                continue
            try:
                with _open_text(m) as fh:
                    for line in fh:
                        if line.strip():
                            yield json.loads(line)
            except (OSError, EOFError, ValueError) as e:
                print(f"warning: {m}: stopped reading ({type(e).__name__}: {e})", file=sys.stderr)


def chunk_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("teacher-*.jsonl.gz"))


def write_chunks(out: Path, folder: Path, size: int, final: bool = False, skip: frozenset = frozenset()) -> int:
    """Copy the finished answers in `out` that no chunk in `folder` holds yet (nor `skip`, (id, key) pairs of
    answers committed elsewhere; key None for those without one) into new numbered chunks of
    `size` answers (and the remainder too when `final`). Each chunk is written whole or not at all, so a
    kill loses nothing: the answers stay in `out` and go into the next chunk. Returns the chunks written."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = chunk_files(folder)
    chunked = {(r["id"], r.get("key")) for r in read_pregenerated(existing)} | skip  # an answer asked anew goes in again
    fresh = [{k: v for k, v in r.items() if k != "topk"} for r in load_done(out).values()
             if (r["id"], r.get("key")) not in chunked]
    number = max((int(p.name.split("-")[1].split(".")[0]) for p in existing), default=0)
    written = 0
    while len(fresh) >= size or (final and fresh):
        part, fresh = fresh[:size], fresh[size:]
        number += 1
        dest = folder / f"teacher-{number:04d}.jsonl.gz"
        tmp = dest.with_name(dest.name + ".tmp")
        with gzip.open(tmp, "wt") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
        os.replace(tmp, dest)
        written += 1
    return written


def interleaved(examples: list[dict]) -> list[dict]:
    """The examples taken in turn from each (task, knowledge base) group, each group in its own order: a run
    stopped early has answered a fair share of each (grounded `ask` and `reply`, each KB) rather than one."""
    groups: dict[tuple, list[dict]] = {}
    for e in examples:
        groups.setdefault((e["task"], e.get("meta", {}).get("kb", "")), []).append(e)
    return [e for row in itertools.zip_longest(*groups.values()) for e in row if e is not None]


class RunLocked(ValueError):
    pass


def lock(path: Path):
    """An exclusive lock on `path` for this process's lifetime (released by the OS on exit, kill -9 too)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunLocked(f"{path.parent} is in use by another process (a second `distill teach` on the same run?)") from None
    return fh


def _answer(teacher, ex: dict, tc: TeachConfig) -> dict:
    task, t0 = ex["task"], time.time()
    samples = [teacher.generate(asked(ex), max_tokens_for(task), seed=s) for s in range(max(1, tc.samples))]
    best = max(samples, key=lambda s: score(task, s))
    rec = {"id": ex["id"], "task": task, "output": best, "ok": reject_reason(task, best) is None,
           "reason": reject_reason(task, best), "teacher": teacher.name, "seconds": round(time.time() - t0, 2),
           "key": prompt_key(asked(ex))}
    if tc.top_k_logits and rec["ok"] and isinstance(teacher, LocalTeacher):
        rec["topk"] = teacher.topk(ex["messages"], best, tc.top_k_logits)
    return rec


def run(cfg: Config, progress=None) -> Path:
    tc = cfg.teach
    out = teacher_file(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    held = lock(out.parent / ".lock")
    examples = [e for e in read_examples(require(examples_path(cfg), "data")) if e["use"] == "teacher" and e["split"] == "train"]
    done = load_done(out)
    chunks = cfg.resolve(tc.chunk_dir) if tc.chunk_dir else None
    shipped = list(read_pregenerated([cfg.resolve(p) for p in tc.pregenerated]))
    skip = frozenset((r["id"], r.get("key")) for r in shipped)  # already committed elsewhere: never chunked again
    reused: dict[str, list[dict]] = {}
    for rec in shipped + (list(read_pregenerated(chunk_files(chunks))) if chunks else []):
        reused.setdefault(rec["id"], []).append(rec)
    with open(out, "a") as f:  # for an example this run's file has no answer to, the latest one to its prompt
        for ex in examples:
            fitting = [r for r in reused.get(ex["id"], []) if fits(r, ex)]
            if fitting and not answered(done, ex):
                f.write(json.dumps(fitting[-1], ensure_ascii=False) + "\n")
                done[ex["id"]] = fitting[-1]
    wanted = [e for e in examples if not tc.tasks or e["task"] in tc.tasks]  # teach.tasks: only these on this run
    first = interleaved([e for e in wanted if not answered(done, e) and "map" not in e])
    if tc.limit:
        first = first[: max(0, tc.limit - sum(answered(done, e) for e in examples))]
    teacher, n_new = None, 0
    # two rounds: every prompt that stands alone (a long thread's messages among them), then each long
    # thread's reduce prompt, built from the teacher's summaries of its messages (see distill.data.map_examples)
    for round_ in (1, 2):
        todo = first if round_ == 1 else reduce_examples(wanted, done)
        if tc.limit and round_ == 2:
            todo = todo[: max(0, tc.limit - sum(answered(done, e) for e in examples))]
        if not todo:
            continue
        teacher = teacher or make_teacher(tc)
        batched = isinstance(teacher, LocalTeacher) and tc.batch > 1 and tc.samples == 1 and not tc.top_k_logits and tc.temperature == 0
        workers = tc.concurrency if isinstance(teacher, OpenAITeacher) else 1
        with open(out, "a") as f, ThreadPoolExecutor(workers) as pool:
            records = _batched_answers(teacher, todo) if batched else pool.map(lambda e: _answer(teacher, e, tc), todo)
            for ex, rec in _with_examples(todo, records):
                if "map" in ex:
                    rec["messages"] = ex["messages"]  # the reduce prompt, built from this run's answers: kept to train on
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                done[rec["id"]] = rec
                if progress:
                    progress(rec)
                if chunks and (n_new := n_new + 1) % tc.chunk_size == 0:
                    write_chunks(out, chunks, tc.chunk_size, skip=skip)
    if chunks:
        write_chunks(out, chunks, tc.chunk_size, final=True, skip=skip)
    held.close()
    return out


def topk_file(cfg: Config) -> Path:
    return teacher_file(cfg).with_name("topk.jsonl")


def scored_key(messages: list[dict], output: str) -> str:
    """What a set of log-probs belongs to: the prompt they were computed after and the answer they score
    (a new answer under the same prompt, or an old answer to a changed prompt, gets none)."""
    return prompt_key([messages, output])


def load_topk(cfg: Config) -> dict[tuple[str, str], dict]:
    """The teacher-forced top-k log-probs of `score_logits`, by (example id, scored_key)."""
    return {(r["id"], r["key"]): r["topk"] for r in _records(topk_file(cfg))}


def scoring_prompt(ex: dict, rec: dict) -> list[dict] | None:
    """The messages an answer was made after: a long thread's reduce prompt is kept in its record
    (none there: it cannot be trained on, see targets.pairs)."""
    return rec.get("messages") if "map" in ex else ex["messages"]


def score_logits(cfg: Config, progress=None) -> Path:
    """The local teacher's top-k log-probs (teach.top_k_logits) at each token of answers it has already
    made, teacher-forced: token-level KD (train.kd) from a batched run's answers, which carry none. At
    most teach.limit answers; append-only and resumable as `run`, and the answers are not changed.
    Answers that would not fit training's max_len (or the teacher's context) are left out."""
    tc, k = cfg.teach, cfg.teach.top_k_logits
    if k <= 0:
        raise ValueError("teach.top_k_logits is 0: give the number of log-probs to keep, e.g. teach.top_k_logits=20")
    if not teacher_file(cfg).exists():
        raise MissingInput(teacher_file(cfg), "teach")
    out = topk_file(cfg)
    held = lock(out.parent / ".lock")
    try:
        done = load_done(teacher_file(cfg))
        have = {(r["id"], r["key"]) for r in _records(out, repair=True) if r["topk"]["shape"][1] == k}  # keys, not payloads
        examples = [e for e in read_examples(require(examples_path(cfg), "data")) if e["use"] == "teacher" and e["split"] == "train"]
        todo, n_have = [], 0
        for ex in examples:
            rec = done.get(ex["id"]) if answered(done, ex) else None
            messages = scoring_prompt(ex, rec) if rec and rec.get("ok") and "topk" not in rec else None
            if messages is not None:
                key = scored_key(messages, rec["output"])
                if (ex["id"], key) in have:
                    n_have += 1
                else:
                    todo.append((ex, rec, messages, key))
        if tc.limit:
            todo = todo[: max(0, tc.limit - n_have)]
        teacher = make_teacher(tc) if todo else None
        if todo and not isinstance(teacher, LocalTeacher):
            raise ValueError(f"{tc.teacher}: log-probs come from a local GGUF teacher only")
        with open(out, "a") as f:
            for ex, rec, messages, key in todo:
                t0 = time.time()
                topk = teacher.topk(messages, rec["output"], k, cfg.train.max_len)
                if topk is not None:
                    f.write(json.dumps({"id": ex["id"], "key": key, "topk": topk}) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                if progress:
                    progress({"id": ex["id"], "ok": topk is not None, "seconds": round(time.time() - t0, 2)})
    finally:
        held.close()
    return out


def _with_examples(todo: list[dict], records) -> Iterator[tuple[dict, dict]]:
    by_id = {e["id"]: e for e in todo}
    for rec in records:
        yield by_id[rec["id"]], rec


def reduce_examples(examples: list[dict], done: dict[str, dict]) -> list[dict]:
    """The long threads' reduce examples not answered yet whose messages all have the teacher's summary (or
    its rejection: that message then stands as its opening words, as at run time), each with its prompt."""
    from assistant import tasks
    from distill.data import reduce_prompt, thread_emails

    out = []
    for ex in examples:
        if "map" not in ex or ex["id"] in done or not all(m in done for m in ex["map"]):
            continue
        emails = thread_emails(ex["thread"])
        summaries = [tasks.task(done[m]["task"]).clean(done[m]["output"]) if done[m].get("ok") else "" for m in ex["map"]]
        summaries = [s or " ".join(e.body.split()[:40]) for s, e in zip(summaries, emails)]
        out.append({**ex, "messages": reduce_prompt(ex, summaries)})
    return out


def _batched_answers(teacher: LocalTeacher, todo: list[dict]) -> Iterator[dict]:
    """All prompts through one continuous batch (`teach.batch` slots), each record yielded (and
    so written) as soon as its answer ends."""
    t0 = time.time()
    answers = teacher.generate_many([asked(e) for e in todo], [max_tokens_for(e["task"]) for e in todo])
    for n, (i, text) in enumerate(answers, 1):
        task = todo[i]["task"]
        reason = reject_reason(task, text)
        yield {"id": todo[i]["id"], "task": task, "output": text, "ok": reason is None, "reason": reason,
               "teacher": teacher.name, "seconds": round((time.time() - t0) / n, 2),  # wall time per answer so far
               "key": prompt_key(asked(todo[i]))}


def export(cfg: Config, dest: Path) -> int:
    """Write the accepted teacher outputs (keyed by id, no copies of the source texts) as gzip JSONL."""
    recs = [r for r in load_done(teacher_file(cfg)).values() if r.get("ok")]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as f:
        for r in recs:
            f.write(json.dumps({k: v for k, v in r.items() if k != "topk"}, ensure_ascii=False) + "\n")
    os.replace(tmp, dest)
    return len(recs)
