"""GGUF files for tests, made at test time: a hand-written header, or the base model with another chat template."""

from __future__ import annotations

import struct
from pathlib import Path

from assistant import paths
from assistant.engine.gguf_check import read_header


def _string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def header(**meta) -> bytes:
    """A GGUF v3 header with no tensors (`general__name` is the key general.name): str values are strings
    (type 8), ints uint32 (type 4), bytes the raw type and value."""
    out = [b"GGUF", struct.pack("<IQQ", 3, 0, len(meta))]
    for key, value in meta.items():
        out.append(_string(key.replace("__", ".")))
        if isinstance(value, bytes):
            out.append(value)
        else:
            out.append(struct.pack("<I", 8) + _string(value) if isinstance(value, str) else struct.pack("<II", 4, value))
    return b"".join(out)


def with_template(dest: Path, template: str) -> Path:
    """A copy of the base model whose chat template is `template` (padded in place to the original's length)."""
    base = paths.base_model_path()
    original = read_header(base).metadata["tokenizer.chat_template"].encode()
    new = template.encode()
    assert len(new) + 4 <= len(original), "template too long to patch in place"
    data = base.read_bytes()
    assert data.count(original) == 1
    dest.write_bytes(data.replace(original, new + b"{#" + b" " * (len(original) - len(new) - 4) + b"#}"))
    return dest


# a template that loops 10^10 times: hung `prompt` and every `serve` request before render_chat had bounds
NESTED_RANGES = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
# one the sandbox refuses (a 40-line SecurityError traceback before)
UNSAFE = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
# passes the startup probe (one short message) but refuses two messages, and is quadratic in a message's length
PICKY = ("{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}"
         "{% for m in messages %}{% for a in m.content %}{% for b in m.content %}{% endfor %}{% endfor %}"
         "<|im_start|>user\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n")
