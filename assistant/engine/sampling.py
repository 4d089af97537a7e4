"""llama.cpp's sampler chain, as `Llama.generate` sets it up, on a row of logits in numpy.

    row = Row(logits, generated_so_far, Sampling(repeat_penalty=1.05))
    token = row.pick(temperature=0.0, rng=None)          # greedy; or a draw with a numpy Generator

The chain: the repeat penalty over the last `penalty_last_n` generated tokens (a positive logit
divided by it, a negative one multiplied), then for sampling top-k, typical (off), top-p and
min-p on the untempered distribution, the temperature, and a draw. A Row applies the penalty and
the truncation once for all the sequences that read the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """The sampler chain of `Llama.generate`, with its defaults (repeat_penalty 1.0 is none)."""

    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    penalty_last_n: int = 64  # Llama(last_n_tokens_size=64): the generated tokens the penalty looks back over


class Row:
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
