"""Generate answers for a file of prompts with one GGUF model, in its own process (so its RSS is its own).

    python -m distill.generate MODEL.gguf PROMPTS.jsonl OUT.jsonl [--lora ADAPTER.gguf]

PROMPTS lines: {"id", "messages", "max_tokens"}, and "samples": N for a subject line made the way
the assistant makes one (the consensus of the greedy line and N samples). OUT gets {"id", "output",
"tokens", "seconds"} per line (an empty output and "error" for a prompt longer than the model's context), appended and resumable; the last line printed is a JSON summary with
decode tokens/s and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own high-water RSS. ru_maxrss is not: Linux carries the parent's over fork and exec,
    so a generator started by a training process would report the trainer's gigabytes."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("prompts")
    ap.add_argument("out")
    ap.add_argument("--lora")
    ap.add_argument("--name", default="")
    ap.add_argument("--progress", action="store_true", help="a progress bar on stderr (when it is a terminal)")
    args = ap.parse_args()

    from assistant.engine.models import LlamaCppModel, PromptTooLong
    from assistant.tasks.summarize import summary_of
    from distill.teach import load_done, prompt_key

    model = LlamaCppModel(args.name or Path(args.model).stem, Path(args.model), Path(args.lora) if args.lora else None)
    done = load_done(Path(args.out))
    llm = model.load()
    from tqdm import tqdm

    lines = Path(args.prompts).read_text().splitlines()
    with open(args.out, "a") as f:
        for line in tqdm(lines, desc=model.name, file=sys.stderr, disable=None if args.progress else True, dynamic_ncols=True):
            p = json.loads(line)
            samples = p.get("samples", 0)
            mapped = bool(p.get("map"))
            key = prompt_key({k: p.get(k) for k in ("messages", "max_tokens", "samples", "map")})
            if done.get(p["id"], {}).get("key") == key:
                continue  # else asked anew (a new prompt, or a cache from before keys): the later line wins
            t0, error = time.time(), {}
            try:
                if samples:  # a subject line as the assistant makes it: the consensus of greedy and sampled lines
                    text = summary_of(model, p["messages"], "line", samples)
                else:
                    messages = map_reduce_prompt(model, p["map"]) if mapped else p["messages"]
                    text = "".join(model.stream(messages, max_tokens=p.get("max_tokens", 256))).strip()
            except PromptTooLong as e:  # an empty answer, and the rest goes on
                tqdm.write(f"{args.prompts}: {p['id']}: {e}", file=sys.stderr)
                text, error = "", {"error": str(e)}
            dt = time.time() - t0
            n = len(llm.tokenize(text.encode(), add_bos=False)) if text else 0
            f.write(json.dumps({"id": p["id"], "output": text, "tokens": n, "seconds": round(dt, 3), "key": key,
                                **({"samples": samples} if samples else {}), **({"map": True} if mapped else {}),
                                **error}) + "\n")
            f.flush()
    print(json.dumps({"decode_tok_s": round(decode_speed(llm), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}))


def map_reduce_prompt(model, spec: dict) -> list[dict]:
    """A long thread's prompt as the assistant builds it: this model's short summary of each message (the
    map step; its opening words where the summary comes out empty), then the thread as those summaries."""
    from assistant import tasks
    from assistant.tasks.summarize import MAX_TOKENS
    from distill.data import reduce_prompt, thread_emails

    t = tasks.task(f"summarize-{tasks.SummarizeTask.MAP_LENGTH}")
    summaries = []
    for email in thread_emails(spec["thread"]):
        out = "".join(model.stream(t.prompt(t.text(email), spec.get("prompt_version")).messages, max_tokens=MAX_TOKENS[t.length]))
        summaries.append(t.clean(out) or " ".join(email.body.split()[:40]))
    return reduce_prompt({"task": spec["task"], "thread": spec["thread"], "prompt_version": spec.get("prompt_version")},
                         summaries)


def decode_speed(llm, runs: int = 3) -> float:
    """Tokens/s of 128 greedy tokens from a short prompt: the median of `runs` (one run moved by 15% between evals)."""
    no_eos = {t: -1e9 for t in {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}}
    speeds = []
    for _ in range(runs):
        llm.reset()
        t0 = time.time()
        out = llm.create_completion("Write a long, friendly letter to a customer about their order.", max_tokens=128,
                                    temperature=0.0, stop=[], logit_bias=no_eos)
        speeds.append(out["usage"]["completion_tokens"] / (time.time() - t0))
    return statistics.median(speeds)


if __name__ == "__main__":
    main()
