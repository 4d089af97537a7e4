"""The shape of distill: no import cycle between its modules, and a `distill` command that starts light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def cycles(graph, package: str) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), lazy imports included."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in modules) for m in modules}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for m in modules:
        if m not in index:
            visit(m)
    return found


def test_no_import_cycle_inside_distill():
    grimp = pytest.importorskip("grimp")
    assert cycles(grimp.build_graph("distill"), "distill") == []


def test_the_command_starts_without_torch():
    probe = ("import sys, json; import distill.cli; "
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'peft'))))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_every_stage_is_a_command_of_python_m_distill_cli():
    r = subprocess.run([sys.executable, "-m", "distill.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for command in ("data", "teach", "teacher", "train", "answers", "eval", "export", "install", "run"):
        assert f"\n  {command} " in r.stdout, command
