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
