"""A whole inbox: batched summaries, the summary cache, the digest and the mail screen on a Maildir of AESLC emails.

    python bench/inbox.py                  # 2,000 messages (dev, then train): every row below
    python bench/inbox.py --n 300          # a smaller mailbox on a busy machine
    python bench/inbox.py --parity 100     # batched vs one-at-a-time greedy outputs on 100 dev emails
    python bench/inbox.py --gaps 100       # where batched and one-at-a-time short summaries part: the logit gap there

The Maildir is built in a temp dir: one .eml per AESLC email with From, Date (30 minutes apart),
Message-ID and Subject, one in ten a reply to the one before (In-Reply-To), two in three seen (cur/,
`:2,S`). Each command runs as a subprocess with empty user dirs (students merged beforehand, as
after install), so times are whole commands; peak RSS is the command's own.

Rows: `summarize --length line` cold, consensus on (goal >= 120 messages/min) and with --samples 0,
with prompt tokens/s (the prompts' tokens, each message's counted once, over the command's time);
a warm re-run with no new mail (goal < 2 s); 20 new messages (goal: only those 20 summarized);
`digest --since` over the mailbox (time, peak RSS, goal < 600 MB); first paint of the mail screen
(goal < 1 s).
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, report  # noqa: E402

AESLC = SHARED / "aeslc"
T0 = 1_000_000_000  # 2001-09-09: AESLC's time
# a command's peak RSS (KB) on stderr, measured from a small parent (see bench/runtime.py)
_LAUNCH = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def aeslc(n: int, skip: int = 0) -> list[dict]:
    rows = []
    for name in ("dev.jsonl", "train.jsonl"):
        with open(AESLC / name) as f:
            for line in f:
                if skip:
                    skip -= 1
                    continue
                rows.append(json.loads(line))
                if len(rows) == n:
                    return rows
    return rows


def build_maildir(dest: Path, rows: list[dict], start: int = 0) -> Path:
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(rows, start):
        user = r["id"].split("_")[0]
        reply = f"In-Reply-To: <aeslc{i - 1}@enron.example>\n" if i % 10 == 9 else ""
        subject = ("Re: " if reply else "") + r["subject"]
        raw = (f"From: {user} <{user}@enron.example>\nTo: you@example.com\nSubject: {subject}\n"
               f"Date: {email.utils.formatdate(T0 + i * 1800, usegmt=True)}\nMessage-ID: <aeslc{i}@enron.example>\n"
               f"{reply}\n{r['email_body']}\n")
        name = f"{T0 + i * 1800}.{i}.bench"
        (dest / "cur" / f"{name}:2,S" if i % 3 else dest / "new" / name).write_text(raw)
    return dest


def run(home: Path, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout) of `assistant ARGS` with ASSISTANT_HOME=home."""
    env = {**os.environ, "ASSISTANT_HOME": str(home)}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _LAUNCH, sys.executable, "-m", "assistant.cli", *args], env=env,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    return dt, int(p.stderr.strip().splitlines()[-1]) / 1024, p.stdout


def cached_rows(home: Path) -> int:
    with sqlite3.connect(home / "data" / "summaries.db") as db:
        return db.execute("SELECT count(*) FROM summaries").fetchone()[0]


def prompt_tokens(box: Path, length: str) -> int:
    """Tokens of every message's summary prompt (each counted once), as the summarize command builds them."""
    from assistant import tasks
    from assistant.mail import Message
    from assistant.services import inbox, models
    from assistant.services.prompting import email_of, fit, version_for

    model = models.resolve(None, "summarize")
    t = tasks.for_summary(length)
    total = 0
    for h in inbox.scan(box):
        msg = inbox.load(h)
        if isinstance(msg, Message):
            p = fit(model, t.run_text(email_of(msg)), lambda x: t.prompt(x, version_for(model, t)), t.max_tokens)
            total += len(model.tokens(p.messages))
    return total


PAINT = """
import asyncio, os, sys, time
from assistant.tui.app import make_app
from assistant.tui.mail_screen import MailScreen

async def main():
    app = make_app(mail_path=sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()  # the chat screen's model loaded: the app as a user finds it
        await pilot.pause()
        t0 = time.perf_counter()
        app.push_screen(MailScreen(sys.argv[1]))
        while not (app.screen.query("#threads") and app.screen.query_one("#threads").row_count):
            await asyncio.sleep(0.005)
        painted = asyncio.Event()
        app.screen.call_after_refresh(painted.set)  # the first screen refresh with the rows in it
        await painted.wait()
        print(time.perf_counter() - t0, app.screen.query_one("#threads").row_count, flush=True)
        os._exit(0)  # leave the one-line summaries unmade

asyncio.run(main())
"""


def first_paint(home: Path, box: Path) -> tuple[float, int]:
    env = {**os.environ, "ASSISTANT_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", PAINT, str(box)], env=env, capture_output=True, text=True, timeout=300)
    secs, rows = out.stdout.split()
    return float(secs), int(rows)


def inbox_rows(n: int) -> tuple[list[dict], dict]:
    rows, extra = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        home, box = Path(tmp) / "home", build_maildir(Path(tmp) / "Maildir", aeslc(n))
        subprocess.run([sys.executable, "-m", "assistant.cli", "models", "prepare"], check=True, capture_output=True,
                       env={**os.environ, "ASSISTANT_HOME": str(home)})  # merged students, as after install
        os.environ["ASSISTANT_HOME"] = str(home)  # the bench's own model look-ups: the same merged files
        line_tokens = prompt_tokens(box, "line")
        extra["prompt_tokens_line"] = line_tokens
        for label, more in (("consensus (1 + 8 samples)", []), ("--samples 0", ["--samples", "0"])):
            secs, rss, out = run(home, "summarize", str(box), "--length", "line", "--json", "--no-log", *more)
            ok = sum(1 for line in out.splitlines() if "summary" in json.loads(line))
            rows.append({"measure": f"summarize --length line, {n} msgs, cold, {label}: msgs/min",
                         "value": round(ok / secs * 60, 1), "goal": ">= 120" if not more else "",
                         "detail": f"{secs:.0f} s, {line_tokens / secs:.0f} prompt tok/s, peak {rss:.0f} MB"})
        secs, rss, _ = run(home, "summarize", str(box), "--length", "line", "--json", "--no-log")
        rows.append({"measure": "summarize re-run, no new mail (s)", "value": round(secs, 2), "goal": "< 2",
                     "detail": f"peak {rss:.0f} MB"})
        before = cached_rows(home)
        build_maildir(box, aeslc(20, skip=n), start=n)
        secs, rss, out = run(home, "summarize", str(box), "--length", "line", "--json", "--no-log")
        rows.append({"measure": "summarize re-run, 20 new messages: summarized", "value": cached_rows(home) - before,
                     "goal": "20", "detail": f"{secs:.1f} s, {len(out.splitlines())} lines out"})
        since = time.strftime("%Y-%m-%d", time.gmtime(T0))
        secs, rss, out = run(home, "digest", str(box), "--since", since, "--json")
        threads = [json.loads(line) for line in out.splitlines()]
        several = sum(1 for t in threads if len(t["messages"]) > 1)
        rows.append({"measure": f"digest --since {since}: {len(threads)} threads ({several} of several messages), s",
                     "value": round(secs, 1), "goal": "", "detail": "single-message lines from the cache"})
        rows.append({"measure": "digest peak RSS (MB)", "value": round(rss), "goal": "< 600", "detail": ""})
        paint, shown = first_paint(home, box)
        rows.append({"measure": f"mail screen first paint, {shown} threads (s)", "value": round(paint, 2),
                     "goal": "< 1", "detail": "headers only; one-liners filled after"})
    return rows, extra


def parity_rows(n: int) -> list[dict]:
    """Greedy outputs of generate_many vs LlamaCppModel.stream one prompt at a time (its prefix cache warm,
    as a command runs them), and one-at-a-time with the cache cleared before each prompt vs warm: the
    spread a prompt's chunking alone gives."""
    from assistant import tasks
    from assistant.engine.models import complete
    from assistant.services import models

    model = models.resolve(None, "summarize")
    llm = model.load()
    rows = []
    for length in ("line", "short"):
        t = tasks.for_summary(length)
        jobs = [dict(messages=t.prompt(t.text(tasks.Email(r["email_body"])), model.prompt_version).messages,
                     max_tokens=t.max_tokens) for r in aeslc(n)]
        t0 = time.perf_counter()
        warm = [complete(model, **job) for job in jobs]
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        many = dict(model.generate_many(iter(jobs)))
        t_many = time.perf_counter() - t0
        cold = []
        for job in jobs:
            llm.reset()
            cold.append(complete(model, **job))
        same = sum(warm[i] == many[i] for i in range(n))
        rows.append({"measure": f"{length}: batched == one at a time (of {n})", "value": same, "goal": "",
                     "detail": f"{same / n:.0%}; one at a time {t_one:.0f} s, batched {t_many:.0f} s"})
        same_cold = sum(warm[i] == cold[i] for i in range(n))
        rows.append({"measure": f"{length}: one at a time, prefix cache cleared == warm (of {n})", "value": same_cold,
                     "goal": "", "detail": f"{same_cold / n:.0%}: the spread chunking alone gives"})
    return rows


NEAR_TIE = 0.5  # logits between the best and second-best token: below it, a kernel's rounding can swap them


def gap_rows(n: int, length: str = "short") -> list[dict]:
    """Where batched and one-at-a-time greedy outputs part, and why: at each first differing token, the gap
    between the one-at-a-time run's two best logits (repeat penalty applied, as the sampler applies it),
    against the gap at every step the two outputs share. Near ties where they part, and not elsewhere,
    say the difference is batching's arithmetic, not a bug in what the batch computes. The outputs are
    re-tokenized from their text and scored in one pass over prompt and answer: close to, not exactly,
    the one-at-a-time run's own arithmetic."""
    import llama_cpp
    import numpy as np

    from assistant import tasks
    from assistant.engine.batched import REPEAT_PENALTY
    from assistant.engine.gguf_tools import run_files
    from assistant.engine.models import complete
    from assistant.services import models

    model = models.resolve(None, "summarize")
    model.load()
    t = tasks.for_summary(length)
    jobs = [dict(messages=t.prompt(t.text(tasks.Email(r["email_body"])), model.prompt_version).messages,
                 max_tokens=t.max_tokens) for r in aeslc(n)]
    one = [complete(model, **job) for job in jobs]
    many = dict(model.generate_many(iter(jobs)))
    path, lora = run_files(model.path, model.lora_path, model.merge, model.name)
    scorer = llama_cpp.Llama(model_path=str(path), lora_path=str(lora) if lora else None, n_ctx=model.n_ctx,
                             n_batch=512, logits_all=True, flash_attn=True, verbose=False)

    def gaps(prompt: list[int], out: list[int]) -> list[tuple[float, int, int]]:
        """(gap, best, second) before each token of `out`, the repeat penalty over the last 64 generated."""
        scorer.reset()
        scorer.eval(prompt + out)
        rows = []
        for j in range(len(out) + 1):
            z = np.array(scorer.scores[len(prompt) - 1 + j], dtype=np.float64)
            for tok in set(out[max(0, j - 64):j]):
                z[tok] = z[tok] / REPEAT_PENALTY if z[tok] > 0 else z[tok] * REPEAT_PENALTY
            a, b = np.argsort(z)[-2:][::-1]
            rows.append((float(z[a] - z[b]), int(a), int(b)))
        return rows

    tok = lambda text: scorer.tokenize(text.encode(), add_bos=False)
    end = scorer.tokenize(b"<|im_end|>", add_bos=False, special=True)[0]  # where an output ended
    parted, shared, swapped = [], [], 0
    for i, job in enumerate(jobs):
        if one[i] == many[i]:
            continue
        prompt = model.tokens(job["messages"])
        a, b = tok(one[i]), tok(many[i])
        k = len(os.path.commonprefix([a, b]))
        g = gaps(prompt, a[:k])
        parted.append(g[k][0])
        shared += [x[0] for x in g[:k]]
        swapped += {g[k][1], g[k][2]} == {a[k] if k < len(a) else end, b[k] if k < len(b) else end}
    m = len(parted)
    near = sum(x < NEAR_TIE for x in parted)
    med = lambda xs: float(np.median(xs)) if xs else float("nan")
    return [{"measure": f"{length}: outputs that differ, batched vs one at a time (of {n})", "value": m, "goal": "",
             "detail": f"{(n - m) / n:.0%} the same"},
            {"measure": f"{length}: of those, parted at a near tie (top-2 gap < {NEAR_TIE} logit)", "value": near, "goal": "",
             "detail": f"median gap where they part {med(parted):.3f}; at the {len(shared)} steps before it {med(shared):.2f}; "
                       f"share of those steps under {NEAR_TIE}: {np.mean([x < NEAR_TIE for x in shared]) if shared else 0:.1%}"},
            {"measure": f"{length}: of those, the batch took the second-best token", "value": swapped, "goal": "",
             "detail": "the two outputs' tokens are the one-at-a-time run's two best there"}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="messages in the Maildir")
    ap.add_argument("--parity", type=int, default=0, metavar="N", help="only the parity rows, on N dev emails")
    ap.add_argument("--gaps", type=int, default=0, metavar="N",
                    help="only where batched and one-at-a-time short summaries part, and the logit gap there, on N dev emails")
    args = ap.parse_args()
    if args.gaps:
        report("inbox-gaps", gap_rows(args.gaps), {"n": args.gaps, "near_tie": NEAR_TIE})
        return
    if args.parity:
        report("inbox-parity", parity_rows(args.parity), {"n": args.parity})
        return
    rows, extra = inbox_rows(args.n)
    report("inbox" if args.n == 2000 else f"inbox-{args.n}", rows, {"n": args.n, **extra})


if __name__ == "__main__":
    main()
