"""Generation of many prompts at once through llama.cpp's multi-sequence batch API.

    gen = BatchedGenerator(llm, n_seq=16, n_ctx_per_seq=2048, n_threads=2)
    for i, tokens in gen.run(Request(p, max_tokens=24) for p in prompts):   # as each one ends
        print(i, gen.text(tokens))
    gen.close()

One context holds `n_seq` sequences (slots) plus one for the prompts' shared prefix (the system
prompt), which is evaluated once and copied into each slot. Every decode step advances all busy
slots by one token together; when a sequence ends, the next request takes its slot in the same
step (continuous batching). A 2-core CPU spends a decode step mostly on reading the weights, so
B sequences cost little more than one. Requests are pulled from an iterable as slots free up, so
a caller can stream a whole mailbox through without holding it.

Tokens are picked as llama-cpp-python's `Llama.generate` picks them (its llama.cpp sampler
chain: repeat penalty over the last `penalty_last_n` generated tokens, then top-k, top-p and
min-p on the untempered distribution, then the temperature), so greedy answers are the ones a
one-at-a-time run gives, except where batched kernels round differently after a near tie.
Sampling draws from numpy generators seeded per request: the same samples on every run, but
not the ones llama.cpp's own generator would draw.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np


@dataclass(frozen=True)
class Request:
    """One prompt to complete: its tokens, a token limit, a temperature (0: greedy) and a seed."""

    tokens: list[int]
    max_tokens: int
    temperature: float = 0.0
    seed: int | tuple[int, ...] | None = 0


@dataclass(frozen=True)
class Sampling:
    """The sampler chain of `Llama.generate`, with its defaults (repeat_penalty 1.0 is none)."""

    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    penalty_last_n: int = 64  # Llama(last_n_tokens_size=64): the generated tokens the penalty looks back over


class BatchedGenerator:
    """Continuous batching of many requests in one llama.cpp context made from a loaded `Llama`.

    `n_ctx` is the KV cells of the whole context (all sequences share them); by default every
    sequence and the prefix can use `n_ctx_per_seq` cells at once. A smaller `n_ctx` saves
    memory: a request then waits for a slot until the cells it could need are free.
    """

    def __init__(self, llm, n_seq: int, n_ctx_per_seq: int, n_threads: int, n_batch: int = 512,
                 n_ctx: int | None = None, end: Iterable[int] | None = None) -> None:
        import llama_cpp

        self.L, self.llm, self.n_seq, self.n_batch = llama_cpp, llm, n_seq, n_batch
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_ctx = n_ctx or n_ctx_per_seq * (n_seq + 1)  # one more sequence holds the shared prefix
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = self.n_ctx
        cp.n_batch = cp.n_ubatch = n_batch
        cp.n_seq_max = n_seq + 1
        cp.n_threads = cp.n_threads_batch = n_threads
        cp.kv_unified = True  # copied prompts share their cells instead of duplicating them
        cp.flash_attn_type = llm.context_params.flash_attn_type  # same kernels, same greedy answers as llm alone
        self.ctx = llama_cpp.llama_init_from_model(llm._model.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a batched context")
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, n_seq + 1)
        self.vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self.n_vocab = llm.n_vocab()
        self.end = frozenset(end) if end is not None else None
        self.prompt_tokens = 0  # prompt tokens evaluated (not copied) since the generator was made

    def close(self) -> None:
        if self.ctx:
            self.L.llama_batch_free(self.batch)
            self.L.llama_free(self.ctx)
            self.ctx = None

    def __enter__(self) -> "BatchedGenerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _decode(self, entries: list[tuple[int, int, tuple[int, ...], bool]]) -> dict[int, np.ndarray]:
        """Submit (token, pos, sequences, want_logits) entries (a token in several sequences is evaluated
        once, its KV cell shared); return first sequence → next-token logits for the entries that asked."""
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start : start + self.n_batch]
            b = self.batch
            b.n_tokens = len(chunk)
            for i, (tok, pos, seqs, want) in enumerate(chunk):
                b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, len(seqs), want
                for j, seq in enumerate(seqs):
                    b.seq_id[i][j] = seq
            if self.L.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed (context full?)")
            for i, (_, _, seqs, want) in enumerate(chunk):
                if want:
                    ptr = self.L.llama_get_logits_ith(self.ctx, i)
                    out[seqs[0]] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        return out

    def stream(self, prompts: list[list[int]], max_tokens: int | list[int], temperature: float = 0.0,
               top_p: float = 0.95, seed: int = 0) -> Iterator[tuple[int, list[int]]]:
        """`run` for a list of prompts with one temperature, no repeat penalty and nucleus sampling
        in the 64 best tokens (as distill's teacher asks): a prompt listed n times gives n
        different samples, seeded by (seed, index)."""
        limits = list(max_tokens) if isinstance(max_tokens, (list, tuple)) else [max_tokens] * len(prompts)
        requests = [Request(p, n, temperature, (seed, i)) for i, (p, n) in enumerate(zip(prompts, limits, strict=True))]
        return self.run(requests, Sampling(top_k=64, top_p=top_p, min_p=0.0))

    def run(self, requests: Iterable[Request], sampling: Sampling = Sampling()) -> Iterator[tuple[int, list[int]]]:
        """Completions of any number of requests, yielded as (index, token ids) when each ends.

        Requests are read from the iterable as slots free up. Sequences that have read the same
        tokens so far form a group that is evaluated as one (its tokens' KV cells shared): the same
        prompt asked for back to back (a greedy answer and its samples) is evaluated once, and a
        row is decoded per distinct continuation, not per sequence. A new prompt also reuses the
        cells of the longest prompt it shares a start with: the first requests' common prefix
        (evaluated once, into its own sequence) or a busy sequence's prompt.

        Raises:
            ValueError: a prompt is empty or cannot fit a sequence with its answer.
        """
        L, mem = self.L, self.L.llama_get_memory(self.ctx)
        L.llama_memory_clear(mem, True)
        it, pending = enumerate(requests), deque()

        def pull(n: int) -> bool:
            while len(pending) < n and (nxt := next(it, None)) is not None:
                self._check(nxt[1])
                pending.append(nxt)
            return len(pending) >= n

        pull(max(2, self.n_seq))
        prefix = os.path.commonprefix([r.tokens for _, r in pending]) if len(pending) > 1 else []
        prefix_seq, room, used = self.n_seq, self.n_ctx - len(prefix), 0
        if prefix:
            self._decode([(t, i, (prefix_seq,), False) for i, t in enumerate(prefix)])
            self.prompt_tokens += len(prefix)
        free = list(range(self.n_seq))
        seqs: dict[int, _Seq] = {}  # busy slot -> its request
        groups: list[_Group] = []  # sequences by what they have read: each decodes one row a step
        fresh: list[_Group] = []  # groups made in this step: their prompts are not evaluated yet

        def fill() -> None:
            nonlocal used
            while free and pull(1):
                i, r = pending[0]
                p = r.tokens
                join = next((g for g in fresh if g.tokens == p), None)
                ready = [(prefix_seq, prefix)] + [(s, q.request.tokens) for s, q in seqs.items()
                                                  if not any(s in g.slots for g in fresh)]
                src, k = max(((seq, _shared(p, q)) for seq, q in ready), key=lambda x: x[1])
                new_cells = 0 if join else len(p) - k
                if seqs and used + new_cells + r.max_tokens > room:
                    return  # wait for cells
                if not join and any(_shared(p, g.tokens) > k + 16 for g in fresh):
                    return  # a prompt being evaluated now shares more: wait one step and copy it
                pending.popleft()
                s = free.pop()
                cells = join.cells if join else _Cells(new_cells)
                if join:
                    src, k = join.src, join.k
                    join.slots.append(s)
                else:
                    fresh.append(_Group([s], p, [], len(p), src, k, cells))
                    self.prompt_tokens += len(p) - k
                if k:
                    L.llama_memory_seq_cp(mem, src, s, 0, k)
                inherited = seqs[src].cells if src in seqs else []
                seqs[s] = _Seq(i, r, [cells, *inherited], np.random.default_rng(r.seed) if r.temperature > 0 else None)
                for c in seqs[s].cells:
                    c.refs += 1
                used += new_cells + r.max_tokens

        def finish(s: int) -> None:
            nonlocal used
            q = seqs.pop(s)
            used -= q.request.max_tokens
            for c in q.cells:
                c.refs -= 1
                used -= c.n if c.refs == 0 else 0
            L.llama_memory_seq_rm(mem, s, -1, -1)
            free.append(s)

        fill()
        while groups or fresh:
            # rows that continue a sequence in one call; each new prompt in calls of its own, from the
            # first row of a batch, as a one-at-a-time run evaluates it (llama.cpp's CPU kernels round
            # a row differently by its place in a batch)
            logits = self._decode([(g.out[-1], g.pos - 1, tuple(g.slots), True) for g in groups]) if groups else {}
            for g in fresh:
                logits.update(self._decode([(t, j, tuple(g.slots), j == len(g.tokens) - 1)
                                            for j, t in enumerate(g.tokens[g.k:], start=g.k)]))
            stepped, groups = groups + fresh, []
            fresh = []
            for g in stepped:
                row = _Row(logits[g.slots[0]], g.out, sampling)
                branches: dict[int, list[int]] = {}
                for s in g.slots:
                    q = seqs[s]
                    tok = row.pick(q.request.temperature, q.rng)
                    end = tok in self.end if self.end is not None else L.llama_vocab_is_eog(self.vocab, tok)
                    if end or len(g.out) + 1 >= q.request.max_tokens:
                        out = g.out if end else g.out + [tok]
                        finish(s)
                        yield q.index, out
                    else:
                        branches.setdefault(tok, []).append(s)
                for tok, members in branches.items():
                    groups.append(_Group(members, g.tokens, g.out + [tok], g.pos + 1, g.src, g.k, g.cells))
            fill()

    def _check(self, r: Request) -> None:
        if not r.tokens or len(r.tokens) + r.max_tokens > min(self.n_ctx_per_seq, self.n_ctx):
            raise ValueError(f"a prompt of {len(r.tokens)} tokens (+ {r.max_tokens} to generate) is empty or "
                             f"does not fit a sequence of {min(self.n_ctx_per_seq, self.n_ctx)} tokens")

    def text(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore").strip()


@dataclass
class _Cells:
    """KV cells a prompt evaluation added, held while any sequence reading them is busy."""

    n: int
    refs: int = 0


@dataclass
class _Seq:
    index: int
    request: Request
    cells: list[_Cells]
    rng: np.random.Generator | None


@dataclass
class _Group:
    """Sequences that have read the same tokens: one row a step for all of them."""

    slots: list[int]
    tokens: list[int]  # the prompt
    out: list[int]  # generated so far
    pos: int  # the position of the next token to evaluate
    src: int  # the sequence the prompt's first k cells were copied from
    k: int
    cells: _Cells


def _shared(p: list[int], q: list[int]) -> int:
    return min(len(os.path.commonprefix([p, q])), len(p) - 1)  # prefill at least one token


class _Row:
    """One row of logits with the repeat penalty applied once, picked from by every sequence of a group."""

    def __init__(self, logits: np.ndarray, out: list[int], sampling: Sampling) -> None:
        recent = out[-sampling.penalty_last_n:] if sampling.penalty_last_n > 0 else []
        self.logits, self.sampling = penalize(logits, recent, sampling.repeat_penalty), sampling
        self._greedy: int | None = None
        self._kept: tuple[np.ndarray, np.ndarray] | None = None

    def pick(self, temperature: float, rng) -> int:
        if temperature <= 0 or rng is None:
            if self._greedy is None:
                self._greedy = int(self.logits.argmax())
            return self._greedy
        if self._kept is None:
            self._kept = truncate(self.logits, self.sampling)
        return draw(*self._kept, temperature, rng)


def penalize(logits: np.ndarray, recent: list[int], penalty: float) -> np.ndarray:
    """llama.cpp's repeat penalty, in place: a seen token's positive logit divided by it, a negative one multiplied."""
    if penalty != 1.0 and recent:
        ids = np.unique(np.asarray(recent))
        seen = logits[ids]
        logits[ids] = np.where(seen <= 0, seen * penalty, seen / penalty)
    return logits


def truncate(logits: np.ndarray, sampling: Sampling) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, their logits) that top-k, then top-p and min-p on the untempered probabilities, keep; best first."""
    k = min(sampling.top_k, len(logits)) if sampling.top_k > 0 else len(logits)
    top = np.argpartition(-logits, k - 1)[:k]
    top = top[np.argsort(-logits[top], kind="stable")]
    z = logits[top].astype(np.float64)
    probs = np.exp(z - z[0])
    probs /= probs.sum()
    keep = min(len(top), int(np.searchsorted(np.cumsum(probs), sampling.top_p)) + 1) if sampling.top_p < 1 else len(top)
    if sampling.min_p > 0:
        keep = max(1, min(keep, int(np.sum(z[:keep] >= z[0] + np.log(sampling.min_p)))))
    return top[:keep], z[:keep]


def draw(ids: np.ndarray, z: np.ndarray, temperature: float, rng) -> int:
    """A token drawn from the kept ones at `temperature`."""
    z = z / temperature
    p = np.exp(z - z[0])
    return int(rng.choice(ids, p=p / p.sum()))


def pick(logits: np.ndarray, recent: list[int], temperature: float, sampling: Sampling, rng) -> int:
    """llama.cpp's chain on one row of logits (changed in place): the repeat penalty on the `recent`
    tokens, then greedy (the first of equal maxima), or top-k, top-p and min-p on the untempered
    probabilities, the temperature, and a draw from `rng`."""
    penalize(logits, recent, sampling.repeat_penalty)
    if temperature <= 0 or rng is None:
        return int(logits.argmax())
    return draw(*truncate(logits, sampling), temperature, rng)

REPEAT_PENALTY = 1.05  # what LlamaCppModel.stream passes to Llama.generate


def complete_many(model, llm, jobs: Iterable[dict], n_seq: int = 16,
                  n_cells: int | None = None) -> Iterator[tuple[int, str | Exception]]:
    """(index, text) for each job as it ends: the text `complete(model, **job)` gives, where a job
    holds the keyword arguments of `model.stream` (messages, max_tokens, temperature, seed, stop).
    A job whose prompt cannot fit the model's context gives (index, PromptTooLong) instead.

    `model` is a loaded LlamaCppModel and `llm` its Llama. Decoding uses a context of its own whose
    `n_cells` KV cells all sequences share (default: two full contexts, or 384 a sequence if more).
    """
    from assistant.engine.loops import stop_loops
    from assistant.engine.models import PromptTooLong, physical_cores, trim_history

    errors: deque[tuple[int, Exception]] = deque()
    job_of: list[int] = []  # request number -> job index (a job that cannot fit sends no request)
    stops: dict[int, list[str]] = {}

    def requests() -> Iterator[Request]:
        for i, job in enumerate(jobs):
            max_tokens = job.get("max_tokens", 256)
            tokens = model.tokens(trim_history(model, job["messages"], max_tokens))
            if len(tokens) > model.n_ctx - max_tokens:
                errors.append((i, PromptTooLong(len(tokens), model.n_ctx - max_tokens)))
                continue
            if job.get("stop"):
                stops[i] = job["stop"]
            seed = job.get("seed")
            job_of.append(i)
            yield Request(tokens, max_tokens, job.get("temperature", 0.0),
                          seed if seed is not None else int(np.random.SeedSequence().entropy % 2**32))

    cells = n_cells or max(2 * model.n_ctx, n_seq * 384)
    with BatchedGenerator(llm, n_seq, model.n_ctx, model.n_threads or physical_cores(), n_ctx=cells,
                          end=model._end) as gen:
        for r, tokens in gen.run(requests(), Sampling(repeat_penalty=REPEAT_PENALTY)):
            while errors:
                yield errors.popleft()
            i = job_of[r]
            yield i, "".join(stop_loops(_pieces(llm, tokens, stops.pop(i, None)))).strip()
    while errors:
        yield errors.popleft()


def _pieces(llm, tokens: list[int], stop: list[str] | None) -> Iterator[str]:
    """The text pieces LlamaCppModel.stream yields for these tokens: one per token (UTF-8 split
    across tokens held back), ended at the first stop string."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    held = ""
    for tok in tokens:
        held += decoder.decode(llm.detokenize([tok]))
        if stop:
            hit = min((i for i in (held.find(s) for s in stop) if i >= 0), default=-1)
            if hit >= 0:
                held = held[:hit]
                break
            keep = max((k for s in stop for k in range(1, len(s)) if held.endswith(s[:k])), default=0)
            out, held = held[: len(held) - keep], held[len(held) - keep:]
        else:
            out, held = held, ""
        if out:
            yield out
    held += decoder.decode(b"", final=True)
    if held:
        yield held
