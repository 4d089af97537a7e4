"""Generation of many prompts at once through llama.cpp's multi-sequence batch API.

One context holds B sequences (slots) plus one for the prompts' shared prefix (the system
prompt and the instruction), which is evaluated once and copied into each slot. Every decode
step advances all busy slots by one token together; when a sequence ends, the next prompt
takes its slot in the same step (continuous batching). A 2-core CPU spends a decode step
mostly on reading the weights, so B sequences cost little more than one."""

from __future__ import annotations

import os
from collections import deque
from typing import Iterator

import numpy as np


class BatchedGenerator:
    def __init__(self, llm, n_seq: int, n_ctx_per_seq: int, n_threads: int, n_batch: int = 512) -> None:
        import llama_cpp

        self.L, self.llm, self.n_seq, self.n_batch = llama_cpp, llm, n_seq, n_batch
        self.n_ctx_per_seq = n_ctx_per_seq
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = n_ctx_per_seq * (n_seq + 1)  # one more sequence holds the shared prefix
        cp.n_batch = cp.n_ubatch = n_batch
        cp.n_seq_max = n_seq + 1
        cp.n_threads = cp.n_threads_batch = n_threads
        cp.kv_unified = True
        cp.flash_attn_type = llm.context_params.flash_attn_type  # same kernels, same greedy answers as llm alone
        self.ctx = llama_cpp.llama_init_from_model(llm._model.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a batched context")
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, n_seq)
        self.vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self.n_vocab = llm.n_vocab()

    def close(self) -> None:
        self.L.llama_batch_free(self.batch)
        self.L.llama_free(self.ctx)

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
        """Completions of any number of prompts, yielded as (index, token ids) when each ends.

        Greedy by default; with a temperature, each prompt samples from its own generator seeded
        by (seed, index), so a prompt listed n times gives n different samples, the same ones on
        every run. Continuous batching: when a sequence ends, the next prompt takes its slot in
        the same decode call, so every step advances n_seq sequences instead of waiting for a
        group's longest answer. A prompt reuses the KV cells of the longest prompt it shares
        with: the first prompts' common prefix (evaluated once, into its own sequence) or a busy
        slot's prompt (a repeated prompt is evaluated once for all its samples). A unified KV
        cache shares those cells instead of duplicating them. `max_tokens` is one limit for all
        or one per prompt.
        """
        limits = list(max_tokens) if isinstance(max_tokens, (list, tuple)) else [max_tokens] * len(prompts)
        for p, n in zip(prompts, limits, strict=True):
            if not p or len(p) + n > self.n_ctx_per_seq:
                raise ValueError(f"a prompt of {len(p)} tokens (+ {n} to generate) is empty or does not "
                                 f"fit a sequence of {self.n_ctx_per_seq} tokens")
        L, mem = self.L, self.L.llama_get_memory(self.ctx)
        L.llama_memory_clear(mem, True)
        # os.path.commonprefix works on any sequences
        prefix = os.path.commonprefix(prompts[: max(2, self.n_seq)])
        prefix_seq = self.n_seq
        if prefix:
            self._decode([(t, i, prefix_seq, False) for i, t in enumerate(prefix)])
        queue, free = deque(range(len(prompts))), list(range(self.n_seq))
        state: dict[int, list] = {}  # slot -> [prompt index, next position, output tokens]
        fresh: set[int] = set()  # slots filled in this step: their prompts are not evaluated yet
        entries: list[tuple[int, int, int, bool]] = []
        rngs: dict[int, np.random.Generator] = {}

        def shared(p: list[int], q: list[int]) -> int:
            return min(len(os.path.commonprefix([p, q])), len(p) - 1)  # prefill at least one token

        def fill() -> None:
            while free and queue:
                p = prompts[queue[0]]
                ready = [(prefix_seq, prefix)] + [(s, prompts[state[s][0]]) for s in state if s not in fresh]
                src, k = max(((seq, shared(p, q)) for seq, q in ready), key=lambda x: x[1])
                if any(shared(p, prompts[state[s][0]]) > k + 16 for s in fresh):
                    return  # a prompt being evaluated now shares more: wait one step and copy it
                s, i = free.pop(), queue.popleft()
                L.llama_memory_seq_rm(mem, s, -1, -1)
                if k:
                    L.llama_memory_seq_cp(mem, src, s, 0, k)
                entries.extend((t, j, s, j == len(p) - 1) for j, t in enumerate(p[k:], start=k))
                state[s] = [i, len(p), []]
                fresh.add(s)
                if temperature > 0:
                    rngs[s] = np.random.default_rng([seed, i])

        fill()
        while state:
            logits = self._decode(entries)
            entries.clear()
            fresh.clear()
            for s in sorted(state):
                i, pos, out = state[s]
                tok = self._pick(logits[s], temperature, top_p, rngs.get(s))
                eog = L.llama_vocab_is_eog(self.vocab, tok)
                if not eog:
                    out.append(tok)
                if eog or len(out) >= limits[i]:
                    del state[s]
                    free.append(s)
                    yield i, out
                    continue
                entries.append((tok, pos, s, True))
                state[s][1] = pos + 1
            fill()

    @staticmethod
    def _pick(logits: np.ndarray, temperature: float, top_p: float, rng) -> int:
        if temperature <= 0 or rng is None:
            return int(logits.argmax())
        top = np.argpartition(logits, -64)[-64:]  # nucleus sampling inside the 64 best tokens
        top = top[np.argsort(-logits[top])]
        z = logits[top] / temperature
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        keep = int(np.searchsorted(np.cumsum(probs), top_p)) + 1
        return int(rng.choice(top[:keep], p=probs[:keep] / probs[:keep].sum()))

    def text(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore").strip()
