"""Hardening: a hostile or damaged checkpoint, a mistyped config and stages run out of order each end the real
`distill` command with one line on stderr and a non-zero exit, never a traceback (and never run the file)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from distill import checkpoint
from distill import data as data_stage
from distill.config import load_config
from distill.layout import checkpoint_path
from tests.distill.helpers import distill, write_config


class Hostile:
    """Unpickled, it would run a shell command that leaves a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def one_line_error(res, *wanted: str) -> str:
    err = res.stderr.strip()
    assert res.returncode != 0, res
    assert "Traceback" not in res.stderr and len(err.splitlines()) == 1, res.stderr
    for w in wanted:
        assert w in err, err
    return err


def write_hostile(path, marker, how: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"weights": {}, "opt": {}, "step": Hostile(marker), "best": 0.0, "rng": torch.get_rng_state()}
    if how == "torch.save":  # the zip format torch writes, with the payload in data.pkl
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_hostile_checkpoint_is_data_not_code(tmp_path, how):
    ckpt, marker = tmp_path / "ckpt.pt", tmp_path / "pwned"
    write_hostile(ckpt, marker, how)
    with pytest.raises(ValueError, match="not a readable checkpoint") as e:
        checkpoint.read(ckpt)
    assert not marker.exists() and str(ckpt) in str(e.value) and "\n" not in str(e.value)


def test_a_checkpoint_round_trips_through_the_safe_loader(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    checkpoint.save(tmp_path / "ckpt.pt", model, opt, 7, float("inf"))
    other = torch.nn.Linear(3, 2)
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-3)
    assert checkpoint.load(tmp_path / "ckpt.pt", other, other_opt) == (7, float("inf"))
    assert torch.equal(other.weight, model.weight) and other_opt.state_dict()["state"][0]["step"] == 1


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "not a checkpoint"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    good, ckpt = tmp_path / "good.pt", tmp_path / "ckpt.pt"
    model = torch.nn.Linear(3, 2)
    checkpoint.save(good, model, torch.optim.AdamW(model.parameters()), 1, 0.5)
    ckpt.write_bytes({"random": os.urandom(4096), "truncated": good.read_bytes()[: good.stat().st_size // 2],
                      "empty": b""}.get(damage, b""))
    if damage == "not a checkpoint":
        torch.save({"step": "three"}, ckpt)
    with pytest.raises(ValueError) as e:
        checkpoint.read(ckpt)
    assert str(ckpt) in str(e.value) and "\n" not in str(e.value)


@pytest.fixture
def trained_data(tmp_path, shared, tiny_model):
    """A config on the tiny model whose data is built, and its checkpoint path (nothing there yet)."""
    c = write_config(tmp_path, shared, tiny_model)
    cfg = load_config(c)
    data_stage.run(cfg)
    return c, checkpoint_path(cfg)


@pytest.mark.parametrize("command", [["train", "--resume"], ["run", "--json-progress"]])  # run: progress on stdout
def test_resume_from_a_hostile_checkpoint_runs_nothing(tmp_path, trained_data, command):
    c, ckpt = trained_data
    marker = tmp_path / "pwned"
    write_hostile(ckpt, marker, "torch.save")
    res = distill(command[0], c, *command[1:], env={**os.environ, "OMP_NUM_THREADS": "1"})
    one_line_error(res, str(ckpt), "not a readable checkpoint")
    assert not marker.exists()


def test_resume_from_random_bytes_is_one_line(trained_data):
    c, ckpt = trained_data
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(os.urandom(1000))
    one_line_error(distill("train", c, "--resume", env={**os.environ, "OMP_NUM_THREADS": "1"}), str(ckpt))


@pytest.mark.parametrize("override, wanted", [
    ("train.max_steps=three", "train.max_steps must be an integer, not 'three'"),
    ("train.max_steps=-5", "train.max_steps must be at least 1, not -5"),
])
def test_a_mistyped_config_fails_at_load(tmp_path, shared, override, wanted):
    c = write_config(tmp_path, shared)
    one_line_error(distill("train", c, override), str(c), wanted)
    assert not (tmp_path / "run").exists()  # nothing ran


def test_a_mistyped_config_file_fails_at_load(tmp_path, shared):
    c = write_config(tmp_path, shared)
    c.write_text(c.read_text().replace("max_steps = 6", 'max_steps = "three"'))
    one_line_error(distill("data", c), "train.max_steps must be an integer, not 'three'")


@pytest.mark.parametrize("command, needs", [
    (["train"], "data"), (["export"], "train"), (["eval"], "data"), (["install"], "export"),
    (["answers", "--model", "x.gguf", "--out", "own.jsonl.gz"], "data"),
])
def test_a_stage_before_its_input_says_what_to_run(tmp_path, shared, command, needs):
    c = write_config(tmp_path, shared)
    one_line_error(distill(command[0], c, *command[1:]), f"run `distill {needs} {c}` first")


def test_eval_before_export_says_what_to_run(tmp_path, shared):
    c = write_config(tmp_path, shared)
    data_stage.run(load_config(c))
    one_line_error(distill("eval", c), "export.json does not exist", f"run `distill export {c}` first")


def test_a_teacher_download_that_fails_is_one_line_naming_the_package(monkeypatch):
    """pip's failure comes back as one line naming the package, not pip's whole output or a traceback."""
    from distill import teachers

    bad = "not a requirement=="  # pip refuses it at once, without the network
    monkeypatch.setitem(teachers.TEACHERS, "broken", {"packages": [bad], "sha256": "0" * 64, "size": 1})
    with pytest.raises(ValueError) as e:
        teachers.ensure_teacher("broken", quiet=True)
    assert str(e.value).startswith(f"broken: pip could not download {bad}: ERROR: Invalid requirement")
