"""Configs: unknown keys, types and ranges are refused at load with one line naming the key."""

import re

import pytest

from distill.config import load_config
from tests.distill.helpers import write_config


def test_unknown_config_key_is_rejected(tmp_path, shared):
    cfg = write_config(tmp_path, shared, extra="warmup_stepz = 3")
    with pytest.raises(ValueError, match="warmup_stepz"):
        load_config(cfg)


def test_keep_chooses_the_exported_weights(tmp_path, shared):
    from distill.layout import weights_dir

    assert weights_dir(load_config(write_config(tmp_path, shared))).name == "best"
    assert weights_dir(load_config(write_config(tmp_path, shared), ["train.keep=last"])).name == "final"
    with pytest.raises(ValueError, match="train.keep"):
        load_config(write_config(tmp_path, shared), ["train.keep=newest"])


@pytest.mark.parametrize("override, message", [
    ("train.max_steps=three", "train.max_steps must be an integer, not 'three'"),
    ("train.max_steps=-5", "train.max_steps must be at least 1, not -5"),
    ("train.max_steps=true", "train.max_steps must be an integer, not True"),  # a bool is not an integer
    ("train.max_steps=2.5", "train.max_steps must be an integer, not 2.5"),
    ("train.lr=0", "train.lr must be greater than 0, not 0"),
    ("train.lr=fast", "train.lr must be a number, not 'fast'"),
    ("train.kd_weight=nan", "train.kd_weight must be a number, not nan"),
    ("train.batch_tokens=0", "train.batch_tokens must be at least 1, not 0"),
    ("train.eval_every=0", "train.eval_every must be at least 1, not 0"),
    ("train.autocast=fp8", "train.autocast must be auto, bf16 or none, not 'fp8'"),
    ("train.init=x.gguf train.method=full", "train.init starts a LoRA"),
    ("data.val_percent=150", "data.val_percent must be between 0 and 100, not 150"),
    ("teach.allow_remote=1", "teach.allow_remote must be true or false, not 1"),
    ("teach.samples=0", "teach.samples must be at least 1, not 0"),
    ("eval.compare=[1]", "eval.compare must be a list of strings, not (1,)"),
    ("eval.compare=['student','judge']", "eval.compare must list student, base or teacher, not 'judge'"),
    ("export.min_agreement=2", "export.min_agreement must be between 0 and 1, not 2"),
    ("export.quant=Q2", "export.quant must be F16, Q8_0 or Q4_K_M, not 'Q2'"),
    ("name=7", "name must be a string, not 7"),
    ("train=5", "train must be a table, not 5"),
])
def test_types_and_ranges_are_checked_at_load(tmp_path, shared, override, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)) as e:
        load_config(write_config(tmp_path, shared), override.split(" "))
    assert "\n" not in str(e.value)


def test_a_source_field_names_its_section(tmp_path, shared):
    c = write_config(tmp_path, shared)
    c.write_text(c.read_text().replace("limit = 40", 'limit = "all"'))
    with pytest.raises(ValueError, match=r"^data\.sources\.limit must be an integer, not 'all'$"):
        load_config(c)


def test_numbers_are_accepted_where_numbers_are_due(tmp_path, shared):
    cfg = load_config(write_config(tmp_path, shared), ["train.lr=1", "data.val_percent=5", "teach.pregenerated=a.jsonl.gz"])
    assert cfg.train.lr == 1 and cfg.data.val_percent == 5
    assert cfg.teach.pregenerated == ("a.jsonl.gz",)  # one file on the command line is a list of one


def test_dataclasses_check_their_fields_when_built_directly():
    from distill.config import TrainConfig

    with pytest.raises(ValueError, match="train.max_steps must be an integer"):
        TrainConfig(max_steps="3")
    assert TrainConfig(max_steps=3).max_steps == 3


def test_reply_names_the_support_student(tmp_path, shared):
    """`assistant` calls the job reply, distill's configs call its student support: either name works."""
    assert load_config(write_config(tmp_path, shared), ["task=reply"]).task == "support"
    with pytest.raises(ValueError, match="^task must be summarize, support or reply, not 'draft'$"):
        load_config(write_config(tmp_path, shared), ["task=draft"])
