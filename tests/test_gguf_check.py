import os

import pytest

from assistant import paths
from assistant.engine.gguf_check import InvalidModelFile, read_header


def test_real_base_model_passes():
    info = read_header(paths.base_model_path())
    assert info.architecture == "llama"
    assert info.tensor_count > 0
    assert "tokenizer.chat_template" in info.metadata


@pytest.mark.parametrize("make,expect", [
    (lambda base: base[: len(base) // 2], "truncated"),
    (lambda base: base[:100], "truncated"),
    (lambda base: b"XXXX" + base[4:4096], "not a GGUF"),
    (lambda base: os.urandom(4096), "not a GGUF"),
    (lambda base: b"", "not a GGUF"),
])
def test_corrupt_files_get_one_line(tmp_path, make, expect):
    base = paths.base_model_path().read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(make(base))
    with pytest.raises(InvalidModelFile) as e:
        read_header(bad)
    assert expect in str(e.value)
    assert "\n" not in str(e.value)
