"""gguf_check: a bad model file is one line naming it, never a traceback, a hang or a wrong reason."""

import os
import struct
import threading

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli import cli
from assistant.engine.gguf_check import InvalidModelFile, read_header
from tests.assistant.engine.ggufs import header


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


@pytest.mark.parametrize("cut", [2, 20, 1000, 100_000])
def test_truncated_file_says_where_it_ends(tmp_path, cut):
    """Cut in the magic, the counts, the metadata or the tensor infos: the reason is truncation at that byte
    (a file cut before byte 24 was reported as "bad magic b'GGUF'")."""
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(paths.base_model_path().read_bytes()[:cut])
    with pytest.raises(InvalidModelFile) as e:
        read_header(bad)
    assert str(e.value) == f"{bad}: truncated: file ends at byte {cut}"


@pytest.mark.parametrize("alignment", [0, 3, 48, "32", ""])
def test_bad_alignment_is_one_line(tmp_path, alignment):
    """general.alignment 0 raised ZeroDivisionError, a string ValueError."""
    f = tmp_path / "a.gguf"
    f.write_bytes(header(general__architecture="llama", general__alignment=alignment))
    with pytest.raises(InvalidModelFile) as e:
        read_header(f)
    assert str(e.value).startswith(f"{f}: bad general.alignment ") and "\n" not in str(e.value)


def test_huge_array_count_in_short_file_fails_at_once(tmp_path):
    """An array that claims 2^27 strings in a file of a few bytes: truncation, found before looping over it."""
    f = tmp_path / "arr.gguf"
    f.write_bytes(header(general__architecture="llama", tokens=struct.pack("<IIQ", 9, 8, 1 << 27)))
    with pytest.raises(InvalidModelFile) as e:
        read_header(f)
    assert str(e.value) == f"{f}: truncated: file ends at byte {f.stat().st_size}"


def _bounded(fn, seconds=20.0):
    """fn() in a daemon thread; fail instead of hanging the suite when it blocks."""
    out = {}
    t = threading.Thread(target=lambda: out.update(result=_catch(fn)), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds}s"
    return out["result"]


def _catch(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 (returned to the test to look at)
        return e


def _one_line_cli_error(result, path) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(path) in lines[0], result.output


def test_fifo_named_gguf_is_refused_not_waited_on(tmp_path):
    """`models add x.gguf` on a FIFO blocked forever in open()."""
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    err = _bounded(lambda: read_header(fifo))
    assert isinstance(err, InvalidModelFile) and str(err) == f"{fifo}: cannot read (not a regular file)"
    result = _bounded(lambda: CliRunner().invoke(cli, ["models", "add", str(fifo), "--name", "p"]))
    _one_line_cli_error(result, fifo)


def test_folder_named_gguf_is_refused(tmp_path):
    folder = tmp_path / "dir.gguf"
    folder.mkdir()
    with pytest.raises(InvalidModelFile, match="cannot read \\(a folder\\)"):
        read_header(folder)


def test_symlink_loop_is_one_line(tmp_path):
    """A symlink loop raised RuntimeError from Path.resolve() in `models add`."""
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(InvalidModelFile, match="cannot read"):
        read_header(a)
    _one_line_cli_error(CliRunner().invoke(cli, ["models", "add", str(a), "--name", "loop"]), a)
    lora = CliRunner().invoke(cli, ["models", "add", str(paths.base_model_path()), "--name", "l", "--lora", str(a)])
    _one_line_cli_error(lora, a)


def test_file_name_with_newline_stays_one_line(tmp_path):
    f = tmp_path / "two\nlines.gguf"
    f.write_bytes(b"nope")
    with pytest.raises(InvalidModelFile) as e:
        read_header(f)
    assert "\n" not in str(e.value) and "two\\nlines.gguf" in str(e.value)
