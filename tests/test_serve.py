"""`assistant serve` (llama-cpp-python's server) on loopback, used through the OpenAI backend."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from assistant.cli import cli


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.slow
def test_serve_then_summarize_through_openai_backend(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                models = json.load(urllib.request.urlopen(f"{url}/models", timeout=2))
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"server did not start: {proc.stderr.read1().decode()[-500:]}")
        names = [m["id"] for m in models["data"]]
        assert "smollm2-135m" in names
        f = tmp_path / "m.eml"
        f.write_text("Subject: Lunch\nFrom: a@example.com\n\nLunch moved to 1pm on Friday, same place.\n")
        r = CliRunner().invoke(cli, ["summarize", str(f), "--json", "--model", "openai:smollm2-135m", "--base-url", url])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output.splitlines()[-1])
        assert out["summary"] and out["model"] == "smollm2-135m"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
