"""Greedy generation of several prompts at once through llama.cpp's multi-sequence batch API.

One context holds B sequences. The prompts' shared prefix (the system prompt and the
instruction) is evaluated once and copied to every sequence's KV cache; each prompt's own
suffix is prefilled in shared batches; then every decode step advances all unfinished
sequences by one token together. A 2-core CPU spends a decode step mostly on reading the
weights, so B sequences cost little more than one.
"""

from __future__ import annotations

import ctypes

import numpy as np


class BatchedGenerator:
    def __init__(self, llm, n_seq: int, n_ctx_per_seq: int, n_threads: int, n_batch: int = 512) -> None:
        import llama_cpp

        self.L, self.llm, self.n_seq, self.n_batch = llama_cpp, llm, n_seq, n_batch
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = n_ctx_per_seq * n_seq
        cp.n_batch = cp.n_ubatch = n_batch
        cp.n_seq_max = n_seq
        cp.n_threads = cp.n_threads_batch = n_threads
        cp.kv_unified = True
        self.ctx = llama_cpp.llama_init_from_model(llm._model.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a batched context")
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, n_seq)
        self.vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self.n_vocab = llm.n_vocab()

    def close(self) -> None:
        self.L.llama_batch_free(self.batch)
        self.L.llama_free(self.ctx)

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> dict[int, int]:
        """Submit (token, pos, seq, want_logits) entries; return seq → greedy next token for those that asked."""
        out: dict[int, int] = {}
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
                    out[seq] = int(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).argmax())
        return out

    def generate(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        """Greedy completions (token ids, end-of-generation token excluded) for up to n_seq prompts."""
        assert 0 < len(prompts) <= self.n_seq
        mem = self.L.llama_get_memory(self.ctx)
        self.L.llama_memory_clear(mem, True)
        common = 0
        shortest = min(len(p) for p in prompts)
        while common < shortest - 1 and all(p[common] == prompts[0][common] for p in prompts):
            common += 1
        if common:
            self._decode([(t, i, 0, False) for i, t in enumerate(prompts[0][:common])])
            for s in range(1, len(prompts)):
                self.L.llama_memory_seq_cp(mem, 0, s, -1, -1)
        entries = []
        for s, p in enumerate(prompts):
            entries += [(t, common + i, s, common + i == len(p) - 1) for i, t in enumerate(p[common:])]
        nxt = self._decode(entries)
        outputs: list[list[int]] = [[] for _ in prompts]
        pos = [len(p) for p in prompts]
        active = set(range(len(prompts)))
        while active:
            step = []
            for s in sorted(active):
                tok = nxt[s]
                if self.L.llama_vocab_is_eog(self.vocab, tok) or len(outputs[s]) >= max_tokens:
                    active.discard(s)
                    continue
                outputs[s].append(tok)
                step.append((tok, pos[s], s, True))
                pos[s] += 1
            if step:
                nxt = self._decode(step)
        return outputs

    def text(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore").strip()
