"""Every reader of mail and documents over the hostile corpus, each input in a process of its own.

The corpus is the bombs of tests/hostile/bombs.py, built here in a temporary folder, and the 79
real edge-case messages of ../shared/data/email-edge-cases, read in place. For each input and
each reader (read_mail, parse_message, documents' read_file + chunk_text, `assistant mail show`)
tests/hostile/probe.py forks a child and measures it. Each must: print no traceback, finish
within 10 s, peak below 10x the input's size + 300 MB, and report a bad file as one line naming it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tests.hostile import bombs

pytestmark = pytest.mark.slow  # about 20 s on 2 busy cores

ROOT = Path(__file__).resolve().parents[2]
READERS = ("read_mail", "parse_message", "documents", "cli")
SECONDS, MB = 10.0, 1 << 20
# what each bomb must come to: the error it gives, or None when its message is read
EXPECTED = {
    "header-bomb-16000.eml": None, "many-headers.eml": None, "nested-mime-2000.eml": None,
    "nested-html-100000.eml": None, "unknown-charset.eml": None, "double-plain.eml": None,
    "reply-regex-bomb.eml": None, "reply-fragments.eml": None, "part-header-bomb.eml": None, "raw-8bit.eml": None,
    "address-bomb.eml": None, "many-parts.eml": None,
    "nul.eml": "not an email", "random.eml": "not an email", "fifo.eml": "a FIFO",
    "outlook.msg": "unsupported format: Outlook .msg",
}
EXPECTED_DOCS = {"zip-bomb.docx": "zip bomb", "lying-size.docx": "BadZipFile", "one-line.txt": "too long",
                 "one-word.txt": "too long", "nested-html-100000.html": None, "tag-soup.html": None,
                 "long-line.jsonl": "line longer than"}
PARTIAL = {"too long", "line longer than"}  # the rest of the file is read


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    built = bombs.build_all(tmp_path_factory.mktemp("hostile"))
    edge = SHARED / "email-edge-cases"
    real = sorted(p for p in edge.rglob("*") if p.is_file() and p.name != "manifest.jsonl") if edge.exists() else []
    return built + real


@pytest.fixture(scope="module")
def probes(corpus) -> list[dict]:
    jobs = [f"{reader}:{path}" for path in corpus for reader in READERS]
    done = subprocess.run([sys.executable, "-m", "tests.hostile.probe", *jobs], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def _problems(p: dict) -> list[str]:
    name, problems = f"{p['reader']} {p['path']}", []
    if "Traceback" in p["stderr"]:
        problems.append(f"{name}: traceback: {p['stderr'].strip().splitlines()[-1]}")
    if p["seconds"] > SECONDS:
        problems.append(f"{name}: {p['seconds']:.1f} s")
    if p["peak_rss"] > 10 * p["size"] + 300 * MB:
        problems.append(f"{name}: peak RSS {p['peak_rss'] // MB} MB for {p['size'] // 1024} KB")
    lines = [json.loads(line) for line in p["lines"]] if p["reader"] == "cli" else []
    errors = [e["error"] for e in lines if "error" in e] if p["reader"] == "cli" else (p["result"] or {}).get("errors", [])
    if any("\n" in e or not e for e in errors):
        problems.append(f"{name}: an error that is not one line")
    if p["reader"] == "cli" and p["exit"] != 0 and any("error" not in line for line in lines):
        problems.append(f"{name}: exit {p['exit']} although messages were read")
    if p["reader"] != "cli" and p["exit"] != 0:
        problems.append(f"{name}: exit {p['exit']}")
    return problems


def test_every_reader_survives_every_input(probes, corpus):
    assert len(probes) == len(corpus) * len(READERS)
    problems = [problem for p in probes for problem in _problems(p)]
    assert not problems, "\n".join(problems)


def test_bombs_read_or_refused_with_one_line_naming_the_file(probes):
    seen = set()
    for p in probes:
        name = Path(p["path"]).name
        expected = {**EXPECTED, **EXPECTED_DOCS} if p["reader"] == "documents" else EXPECTED
        if name not in expected or p["reader"] == "cli":
            continue
        seen.add(name)
        result, error = p["result"], expected[name]
        if error is None:
            assert result["read"] >= 1 and not result["errors"], (p["reader"], name, result)
        elif p["reader"] != "parse_message" or name != "fifo.eml":  # parse_message gets bytes: never a FIFO
            assert result["read"] == 0 or error in PARTIAL, (p["reader"], name, result)
            assert any(error in e for e in result["errors"]), (p["reader"], name, result)
            assert p["reader"] == "parse_message" or all(e.startswith(p["path"]) for e in result["errors"])
    assert seen == set(EXPECTED) | set(EXPECTED_DOCS)


def test_symlink_loop_folder_reports_the_loops_and_reads_the_rest(probes):
    [p] = [p for p in probes if p["reader"] == "read_mail" and Path(p["path"]).name == "symlink-loop"]
    assert p["result"]["read"] == 1 and sorted(Path(e.split(":")[0]).name for e in p["result"]["errors"]) == ["a.eml", "b.eml"]


def test_cli_over_the_whole_corpus_in_one_run(corpus):
    """The real entry point: `assistant mail show` over both folders and the FIFO, /dev/null, a missing file."""
    folders = sorted({str(p.parent) for p in corpus[:3]} | ({str(SHARED / "email-edge-cases")} if len(corpus) > 30 else set()))
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "mail", "show", *folders, "/dev/null", "/no/such.eml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr and done.returncode == 0, done.stderr[-2000:]
    items = [json.loads(line) for line in done.stdout.splitlines()]
    errors = {Path(i["path"]).name: i["error"] for i in items if "error" in i}
    assert errors["null"] == "not a mail file or folder: a character device"
    assert errors["such.eml"] == "no such file or folder"
    assert sum("error" not in i for i in items) >= 20
