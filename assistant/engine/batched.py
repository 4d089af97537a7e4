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

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> dict[int, np.ndarray]:
        """Submit (token, pos, seq, want_logits) entries; return seq → next-token logits for those that asked."""
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start : start + self.n_batch]
            b = self.batch
            b.n_tokens = len(chunk)
            for i, (tok, pos, seq, want) in enumerate(chunk):
                b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos, 1
                b.seq_id[i][0] = seq
                b.logits[i] = want
            if self.L.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed (context full?)")
            for i, (_, _, seq, want) in enumerate(chunk):
                if want:
                    ptr = self.L.llama_get_logits_ith(self.ctx, i)
                    out[seq] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
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

        Requests are read from the iterable as slots free up. A request reuses the KV cells of the
        longest prompt it shares with: the first requests' common prefix (evaluated once, into its
        own sequence) or a busy slot's prompt (a prompt repeated back to back is evaluated once
        for all its samples).

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
        prefix_seq, room = self.n_seq, self.n_ctx - len(prefix)
        if prefix:
            self._decode([(t, i, prefix_seq, False) for i, t in enumerate(prefix)])
            self.prompt_tokens += len(prefix)
        free = list(range(self.n_seq))
        state: dict[int, list] = {}  # slot -> [index, request, next position, output tokens, cells charged]
        fresh: set[int] = set()  # slots filled in this step: their prompts are not evaluated yet
        entries: list[tuple[int, int, int, bool]] = []
        rngs: dict[int, np.random.Generator] = {}

        def shared(p: list[int], q: list[int]) -> int:
            return min(len(os.path.commonprefix([p, q])), len(p) - 1)  # prefill at least one token

        def fill() -> None:
            while free and pull(1):
                i, r = pending[0]
                p, charge = r.tokens, len(r.tokens) + r.max_tokens  # as if nothing were shared: never too few
                if state and sum(s[4] for s in state.values()) + charge > room:
                    return  # wait for cells
                ready = [(prefix_seq, prefix)] + [(s, state[s][1].tokens) for s in state if s not in fresh]
                src, k = max(((seq, shared(p, q)) for seq, q in ready), key=lambda x: x[1])
                if any(shared(p, state[s][1].tokens) > k + 16 for s in fresh):
                    return  # a prompt being evaluated now shares more: wait one step and copy it
                pending.popleft()
                s = free.pop()
                if k:
                    L.llama_memory_seq_cp(mem, src, s, 0, k)
                entries.extend((t, j, s, j == len(p) - 1) for j, t in enumerate(p[k:], start=k))
                self.prompt_tokens += len(p) - k
                state[s] = [i, r, len(p), [], charge]
                fresh.add(s)
                if r.temperature > 0:
                    rngs[s] = np.random.default_rng(r.seed)

        fill()
        while state:
            logits = self._decode(entries)
            entries.clear()
            fresh.clear()
            for s in sorted(state):
                i, r, pos, out, _ = state[s]
                tok = self._pick(logits[s], out, r.temperature, sampling, rngs.get(s))
                end = tok in self.end if self.end is not None else L.llama_vocab_is_eog(self.vocab, tok)
                if not end:
                    out.append(tok)
                if end or len(out) >= r.max_tokens:
                    del state[s]
                    L.llama_memory_seq_rm(mem, s, -1, -1)
                    free.append(s)
                    yield i, out
                    continue
                entries.append((tok, pos, s, True))
                state[s][2] = pos + 1
            fill()

    def _check(self, r: Request) -> None:
        if not r.tokens or len(r.tokens) + r.max_tokens > min(self.n_ctx_per_seq, self.n_ctx):
            raise ValueError(f"a prompt of {len(r.tokens)} tokens (+ {r.max_tokens} to generate) is empty or "
                             f"does not fit a sequence of {min(self.n_ctx_per_seq, self.n_ctx)} tokens")

    @staticmethod
    def _pick(logits: np.ndarray, out: list[int], temperature: float, sampling: Sampling, rng) -> int:
        """The next token, as llama.cpp's sampler chain picks it (see `pick`)."""
        return pick(logits, out[-sampling.penalty_last_n:] if sampling.penalty_last_n > 0 else [],
                    temperature, sampling, rng)

    def text(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore").strip()


def pick(logits: np.ndarray, recent: list[int], temperature: float, sampling: Sampling, rng) -> int:
    """llama.cpp's chain on one row of logits (changed in place): the repeat penalty on the `recent`
    tokens (a positive logit divided by it, a negative one multiplied), then greedy, or top-k,
    top-p and min-p on the untempered probabilities, the temperature, and a draw from `rng`."""
    if sampling.repeat_penalty != 1.0 and recent:
        ids = np.unique(np.asarray(recent))
        seen = logits[ids]
        logits[ids] = np.where(seen <= 0, seen * sampling.repeat_penalty, seen / sampling.repeat_penalty)
    if temperature <= 0 or rng is None:
        return int(logits.argmax())  # the first of equal maxima, as llama.cpp's greedy sampler
    k = min(sampling.top_k, len(logits)) if sampling.top_k > 0 else len(logits)
    top = np.argpartition(-logits, k - 1)[:k]
    top = top[np.argsort(-logits[top], kind="stable")]
    z = logits[top].astype(np.float64)
    probs = np.exp(z - z[0])
    probs /= probs.sum()
    keep = min(len(top), int(np.searchsorted(np.cumsum(probs), sampling.top_p)) + 1) if sampling.top_p < 1 else len(top)
    if sampling.min_p > 0:
        keep = max(1, min(keep, int(np.sum(z[:keep] >= z[0] + np.log(sampling.min_p)))))
    z = z[:keep] / temperature
    p = np.exp(z - z[0])
    return int(rng.choice(top[:keep], p=p / p.sum()))


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
