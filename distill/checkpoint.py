"""Training checkpoints (`<run>/train/ckpt.pt`): trainable weights, optimizer state, step, best loss, RNG.

    state = checkpoint.resume_state(path, resume=True)           # None for a fresh run
    step, best = checkpoint.restore(state, path, core, opt)
    checkpoint.save(path, core, opt, step, best)                  # atomic: a kill leaves the last one whole

A checkpoint holds tensors and plain Python values only, and is read with
`torch.load(weights_only=True)`: a file is data, never code. A pickle that would run something
on load, a truncated file or random bytes give a one-line `ValueError` naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch


def save(path: Path, core, opt, step: int, best: float) -> None:
    weights = {k: v.detach().clone() for k, v in core.named_parameters() if v.requires_grad}
    state = {"weights": weights, "opt": opt.state_dict(), "step": step, "best": best, "rng": torch.get_rng_state()}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read(path: Path) -> dict:
    """The checkpoint as data (tensors, numbers, lists, dicts), checked for the keys training needs."""
    try:
        with warnings.catch_warnings():  # e.g. a pickle protocol note: the error below says it in one line
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  torch raises UnpicklingError, RuntimeError, EOFError, IndexError...
        why = "it holds more than tensors and plain values" if "Weights only load failed" in str(e) else \
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e).strip() else 'unreadable'}"
        raise ValueError(f"{path}: not a readable checkpoint ({why}); delete it to train from the start") from None
    ok = (isinstance(state, dict) and isinstance(state.get("weights"), dict) and isinstance(state.get("opt"), dict)
          and isinstance(state.get("step"), int) and isinstance(state.get("best"), float)
          and isinstance(state.get("rng"), torch.Tensor))
    if not ok:
        raise ValueError(f"{path}: not a distill training checkpoint; delete it to train from the start")
    return state


def restore(state: dict, path: Path, core, opt) -> tuple[int, float]:
    """Put a checkpoint read by `read` back: weights, optimizer and torch RNG; returns (step, best held-out loss)."""
    named = dict(core.named_parameters())
    try:
        for k, v in state["weights"].items():
            named[k].data.copy_(v)
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["rng"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise ValueError(f"{path}: does not fit this model and config ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); delete it to train from the start") from None
    return state["step"], state["best"]


def load(path: Path, core, opt) -> tuple[int, float]:
    """`read` then `restore`."""
    return restore(read(path), path, core, opt)


def resume_state(path: Path, resume: bool) -> dict | None:
    """The checkpoint to continue from with `resume` (None: start fresh), read before anything is built;
    without `resume` an existing checkpoint is refused rather than overwritten."""
    if resume and path.exists():
        return read(path)
    if not resume and path.exists():
        raise ValueError(f"{path} exists: pass --resume to continue it, or delete {path.parent} to start over")
    return None
