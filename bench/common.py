"""Shared helpers for the benchmarks: machine description, table printing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict:
    import psutil

    cpu = platform.processor() or ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores_physical": psutil.cpu_count(logical=False), "cores_logical": os.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}


def report(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    payload = {"bench": name, "machine": machine(), "rows": rows, **(extra or {})}
    out.write_text(json.dumps(payload, indent=2))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    print(" | ".join(k.ljust(widths[k]) for k in keys))
    print("-+-".join("-" * widths[k] for k in keys))
    for r in rows:
        print(" | ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys))
    m = payload["machine"]
    print(f"\n{m['cpu']}, {m['cores_physical']} cores, {m['ram_gb']} GB; written {out}")
    return out
