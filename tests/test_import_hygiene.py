"""The runtime commands must stay small and fast: no torch, no transformers, no textual, no NLTK."""

import json
import subprocess
import sys

PROBE = """
import sys, json
sys.argv = ["assistant"] + {args!r}
from assistant.cli import cli
try:
    cli.main(args={args!r}, standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'textual', 'distill', 'sentence_transformers', 'nltk', 'rouge_score'))))
"""


def heavy_modules(args):
    r = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, input="x",
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_summarize_reply_prompt_never_import_torch(tmp_path):
    f = tmp_path / "m.eml"
    f.write_text("Subject: hi\nFrom: a@example.com\n\nThe meeting moved to Friday.")
    for args in (["summarize", str(f), "--length", "line", "--no-log"], ["reply", str(f), "--json", "--no-log"],
                 ["prompt", "hi", "-o", "max_tokens", "4", "--no-log"], ["mail", "show", str(f)]):
        assert heavy_modules(args) == [], args


def test_every_package_folder_is_installed():
    """A plain (non-editable) install takes only the packages pyproject.toml lists: a new sub-package
    left out works in the checkout and is missing after `scripts/install.sh`."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for top in ("assistant", "distill")
             for p in (root / top).rglob("__init__.py")}
    assert found - listed == set()
