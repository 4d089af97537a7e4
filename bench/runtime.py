"""Runtime benchmark: the assistant engine vs bare llama-cpp-python, prefix caching, whole-command throughput.

    python bench/runtime.py [--model NAME]

Rows: decode tokens/s through `assistant` vs bare llama-cpp-python on the same GGUF, the chat default
writing a long reply (goal ≥ 0.95);
time to first token for a 150-token email with the system prefix cached vs uncached (goal ≤ 0.5 s);
`assistant summarize --length line` on 30 AESLC dev emails as a whole command (goal ≥ 60 messages/min);
peak RSS of the summarize command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, report  # noqa: E402


def decode_speed(model_name: str, rounds: int = 8) -> tuple[float, float, int]:
    """Median decode tokens/s through the engine and through bare llama-cpp-python, runs interleaved.

    Both run the same GGUF files with the same sampling settings and stop at the same end-of-turn
    tokens, so both decode the same tokens. Single runs here swing by ±8%, so the two are alternated
    (each going first in half the rounds) and the medians compared. Returns the token count too.
    """
    import statistics

    import llama_cpp

    from assistant.services import models as registry
    from assistant.engine.models import physical_cores

    prompt = [{"role": "user", "content": "Write a long, detailed letter to a customer about a delayed order."}]
    m = registry.resolve(model_name, "chat")
    llm = m.load()
    toks = m.tokens(prompt)
    gguf_file, lora = llm.model_path, llm.lora_path  # the files the engine really runs (a merged student: one file)
    bare = llama_cpp.Llama(gguf_file, lora_path=lora, n_ctx=2048, n_threads=physical_cores(), n_batch=512,
                           flash_attn=True, verbose=False)
    counts = []

    def ours():
        n, first = 0, None
        llm.reset()
        for _ in m.stream(prompt, max_tokens=300):
            n += 1
            first = first or time.time()
        return (n - 1) / (time.time() - first)

    def raw():
        n, first = 0, None
        for tok in bare.generate(toks, temp=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.05, reset=True):
            if tok in m._end:
                break
            n += 1
            first = first or time.time()
            if n >= 300:
                break
        bare.reset()
        counts.append(n)
        return (n - 1) / (time.time() - first)

    ours(), raw()  # warm-up
    speeds = []
    for i in range(rounds):  # which one goes first alternates too
        if i % 2:
            b, a = raw(), ours()
        else:
            a, b = ours(), raw()
        speeds.append((a, b))
    bare.close()
    return statistics.median(s[0] for s in speeds), statistics.median(s[1] for s in speeds), int(statistics.median(counts))


EMAIL_TOKENS = 150


def ttft(model_name: str) -> tuple[float, float, int, int]:
    from assistant.services import models as registry
    from assistant.tasks import summarize

    body = json.loads(open(SHARED / "aeslc" / "dev.jsonl").readline())["email_body"]
    m = registry.resolve(model_name, "summarize")
    llm = m.load()
    # the case: an email of about 150 tokens (the first dev email, repeated to reach that length)
    toks = llm.tokenize(body.encode(), add_bos=False)
    while len(toks) < EMAIL_TOKENS:
        body += "\n" + body
        toks = llm.tokenize(body.encode(), add_bos=False)
    email = llm.detokenize(toks[:EMAIL_TOKENS]).decode(errors="ignore")
    msgs, _ = summarize.build_messages(email, "short")
    n_email = len(llm.tokenize(email.encode(), add_bos=False))
    n_tokens = len(llm.tokenize(m.prompt_text(msgs).encode(), add_bos=False, special=True))

    def first_token(reset: bool) -> float:
        if reset:
            llm.reset()
        t0 = time.time()
        next(iter(m.stream(msgs, max_tokens=8)))
        return time.time() - t0

    other, _ = summarize.build_messages("A different email entirely, about lunch.", "short")
    cached = []
    for _ in range(2):
        list(m.stream(other, max_tokens=2))  # another email: only the system prefix stays in the KV cache
        cached.append(first_token(False))
    uncached = min(first_token(True) for _ in range(2))
    cached = min(cached)
    return cached, uncached, n_tokens, n_email


# Runs a command and prints its peak RSS (KB). A child's peak RSS counts the pages it shares with
# its parent between fork and exec, so the command is started from this small process, not from
# the bench, which by then holds models (and the numpy arrays of a first-use merge) in memory.
_LAUNCH = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def whole_command(model_name: str, n: int = 30) -> tuple[float, float, float]:
    """(messages/min, seconds, peak RSS in MB) of `assistant summarize --length line` on n AESLC dev emails."""
    rows = [json.loads(l) for l in open(SHARED / "aeslc" / "dev.jsonl")][:n]
    with tempfile.TemporaryDirectory() as d:
        for r in rows:
            Path(d, f"{r['id']}.eml").write_text(f"From: someone@example.com\nSubject: \n\n{r['email_body']}\n")
        cmd = ["assistant", "summarize", d, "--length", "line", "--json", "--no-log", "--model", model_name]
        t0 = time.time()
        p = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], capture_output=True, text=True)
        dt = time.time() - t0
        assert p.returncode == 0, p.stderr
        ok = sum(1 for l in p.stdout.splitlines() if "summary" in json.loads(l))
        peak_mb = int(p.stderr.strip().splitlines()[-1]) / 1024
    return ok / dt * 60, dt, peak_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name (default: the summarize default)")
    args = ap.parse_args()
    from assistant.services import models as registry

    name = args.model or registry.default_for("summarize")
    from assistant.engine.gguf_tools import run_files

    m = registry.resolve(name, "summarize")
    for f in run_files(m.path, m.lora_path, m.merge, m.name):  # the model in the page cache, as on any second run
        if f:
            Path(f).read_bytes()
    per_min, secs, peak = whole_command(name)
    chat_model = registry.default_for("chat")  # a long reply; the summarize student stops after a line
    ours, bare, n_dec = decode_speed(chat_model)
    cached, uncached, n_tok, n_email = ttft(name)
    rows = [
        {"measure": f"decode tok/s, assistant engine ({chat_model}, {n_dec} tokens)", "value": round(ours, 1), "goal": ""},
        {"measure": "decode tok/s, bare llama-cpp-python (same file, same tokens)", "value": round(bare, 1), "goal": ""},
        {"measure": "ratio assistant / bare", "value": round(ours / bare, 3), "goal": ">= 0.95"},
        {"measure": f"first token, {n_email}-token email ({n_tok}-token prompt), system prefix cached (s)", "value": round(cached, 3), "goal": "<= 0.5"},
        {"measure": f"first token, {n_email}-token email ({n_tok}-token prompt), uncached (s)", "value": round(uncached, 3), "goal": ""},
        {"measure": "summarize --length line, 30 AESLC dev emails, whole command (msgs/min)", "value": round(per_min, 1), "goal": ">= 60"},
        {"measure": "peak RSS of `assistant summarize` (MB)", "value": round(peak, 1), "goal": "< 400"},
    ]
    report("runtime", rows, {"model": name, "decode_model": chat_model})


if __name__ == "__main__":
    main()
