"""Stage 4, `distill eval`: the report card, student vs teacher vs untrained base on held-out items.

    distill eval configs/summarize.toml                 # ROUGE, lengths, format, speed, RSS
    distill eval configs/support.toml eval.judge=true   # plus win rates, the teacher judging by a rubric

Each system generates in its own process (`distill.generate`), so its peak RSS and decode
speed are its own; generations are cached in `<run>/eval/<system>.jsonl` and resumable.
Writes `report.json`, `report.md` and PNG plots (loss curves, score vs speed) in `<run>/eval/`.
"""

from __future__ import annotations

import collections
import json
import math
import re
import subprocess
import sys
from pathlib import Path

from assistant.tasks import summarize as summarize_task
from assistant.tasks.reply import has_house_style as house_style_ok
from distill.config import Config
from distill.data import examples_path, read_examples
from distill.teach import max_tokens_for

JUDGE_PROMPT = "{intro}\n\"\"\"\n{input}\n\"\"\"\n\n{label}\n\"\"\"\n{answer}\n\"\"\"\n\n{question} Answer Yes or No."
RUBRIC = {  # yes/no questions; an answer's score is the judge's mean P(Yes)
    "support": ("A customer wrote to support:", "The support agent replied:", (
        "Does the reply respond to what the customer actually asked for?",
        "Does the reply give the customer concrete next steps?",
        "Is the reply complete, clear and professional?",
        "Does the reply avoid making up order numbers, dates, prices or policies?")),
    "summarize": ("Here is an email (or thread):", "Here is a summary of it:", (
        "Does the summary capture the main point of the email?",
        "Is everything in the summary supported by the email?",
        "Is the summary clear and in the asked-for format?")),
}
# Score differences at or below this are ties. 0: the sign of any difference decides. Against a blind
# reading of 140 answer pairs (bench/judge_check/support-v3-*-blind.jsonl and summarize-v4-*-{teacher,base}.jsonl)
# it gave the same verdict on 104; with 0.03 it called most pairs ties and gave the same verdict on 60.
MARGIN = 0.0


def eval_dir(cfg: Config) -> Path:
    return cfg.run_dir / "eval"


def items(cfg: Config, eval_file: str = "") -> list[dict]:
    src = cfg.resolve(eval_file) if eval_file else examples_path(cfg)
    rows = [e for e in read_examples(src) if e.get("split", "val") == "val"]
    by_task: dict[str, list[dict]] = {}
    for e in rows:  # up to `eval.examples` of each task, tasks in the order they first appear
        by_task.setdefault(e.get("task", cfg.task), []).append(e)
    return [e for group in by_task.values() for e in group[: cfg.eval.examples]]


def task_order(rows: list[dict]) -> list[str]:
    """The tasks of the report card, the headline first: the task with the most held-out items (the
    first seen among equals). A summarize student's 100 subject lines, not the 6 threads that came first."""
    counts = collections.Counter(ex["task"] for ex in rows)
    return sorted(counts, key=lambda t: -counts[t])


def clean(task: str, text: str) -> str:
    """The same cleanup the assistant applies before showing an answer."""
    from assistant.tasks import reply as reply_task

    if task.startswith("summarize"):
        return summarize_task.clean(text, task.rpartition("-")[2])
    return reply_task.clean(text)


def student_files(cfg: Config) -> tuple[str, str | None] | None:
    """The exported student as (model GGUF, LoRA GGUF or None); None before `distill export`."""
    from distill.export import export_dir
    from distill.student import resolve_base

    exp = export_dir(cfg) / "export.json"
    if not exp.exists():
        return None
    info = json.loads(exp.read_text())
    f = str(export_dir(cfg) / info["file"])
    return (str(resolve_base(cfg.train.base)), f) if info["kind"] == "adapter" else (f, None)


def as_run(model: str, lora: str | None, kind: str | None, name: str) -> tuple[str, str | None]:
    """(model, LoRA) as the assistant runs them: the adapter folded into a cached GGUF of `kind`
    (assistant.engine.gguf_tools.run_files), or left apart when `kind` is None or the merge fails."""
    if not lora or not kind:
        return model, lora
    from assistant.engine.gguf_tools import run_files

    m, a = run_files(Path(model), Path(lora), kind, name)
    return str(m), str(a) if a else None


def systems(cfg: Config, extra: dict[str, tuple[str, str | None]] | None = None) -> dict[str, tuple[str, str | None]]:
    """name → (model GGUF, LoRA GGUF or None). The student runs as in the assistant (eval.merge)."""
    from distill.student import resolve_base
    from distill.teachers import ensure_teacher

    out: dict[str, tuple[str, str | None]] = {}
    student = student_files(cfg) if "student" in cfg.eval.compare else None
    if student:
        out["student"] = as_run(*student, None if cfg.eval.merge == "none" else cfg.eval.merge, cfg.name)
    if "base" in cfg.eval.compare:
        out["base"] = (str(resolve_base(cfg.train.base)), None)
    if "teacher" in cfg.eval.compare and not cfg.teach.teacher.startswith("openai:"):
        out["teacher"] = (str(ensure_teacher(cfg.teach.teacher)), None)
    out.update(extra or {})
    return out


def cache_file(out_dir: Path, name: str, model: str, lora: str | None) -> Path:
    """Generations are cached per system and per exact model files: a re-exported student is generated anew."""
    import hashlib

    stamp = "|".join(f"{p}:{Path(p).stat().st_size}:{Path(p).stat().st_mtime}" for p in (model, lora) if p)
    return out_dir / f"{name}-{hashlib.sha1(stamp.encode()).hexdigest()[:8]}.jsonl"


def generate(name: str, model: str, lora: str | None, prompts: Path, out_dir: Path, progress: bool = False) -> dict:
    """One model's answers to `prompts` in a subprocess (cached, resumable); returns its speed and RSS.
    With `progress`, its progress bar and messages go to this process's stderr."""
    cmd = [sys.executable, "-m", "distill.generate", model, str(prompts), str(cache_file(out_dir, name, model, lora)), "--name", name]
    if lora:
        cmd += ["--lora", lora]
    show = progress and sys.stderr.isatty()  # else its stderr is kept, for the error line
    if show:
        cmd += ["--progress"]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if show else subprocess.PIPE, text=True)
    if res.returncode != 0:
        why = (res.stderr or "").strip().splitlines()
        raise RuntimeError(f"{name}: generation failed: {why[-1] if why else f'exit code {res.returncode}' + (', see above' if show else '')}")
    return json.loads(res.stdout.strip().splitlines()[-1])


_SCORER = None


def rouge(pred: str, refs) -> dict:
    """ROUGE-1/2/L F1 (x100), averaged over the references; one scorer built once per process."""
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    refs = refs if isinstance(refs, list) else [refs]
    scores = [_SCORER.score(r, pred) for r in refs]
    return {k: 100 * sum(s[k].fmeasure for s in scores) / len(scores) for k in ("rouge1", "rouge2", "rougeL")}


_INVENTED = re.compile(r"\b(order|ticket|case|invoice)\s*(number|no\.?|#)?\s*[:#]?\s*\d{5,}", re.I)


def format_ok(task: str, text: str, prompt_text: str) -> bool:
    if task.endswith("-line"):
        return bool(text) and "\n" not in text and len(text.split()) <= 12
    if task.endswith("-short"):
        return bool(text) and len(text.split()) <= 60
    if task == "reply":
        invented = [m.group(0) for m in _INVENTED.finditer(text) if m.group(0) not in prompt_text]
        return len(text.split()) >= 15 and not invented
    return bool(text)


def judge(cfg: Config, rows: list[dict], outputs: dict[str, dict], a: str, b: str, n: int) -> dict:
    """Win rate of system a over b with the teacher as judge; a tie counts half.

    Each answer is scored on its own by a rubric of yes/no questions, read from the judge's
    next-token probabilities of "Yes" and "No"; a wins when its mean P(Yes) beats b's by more
    than MARGIN (0: any difference). A pairwise "which is better, A or B?" does not work with a small judge: the
    1.5B teacher answered "A" 29 times in 29, and its A/B probabilities moved with the position
    (0.59 for whichever came first), not with the answers. Scores are cached per answer.
    """
    scores = {name: rubric_scores(cfg, rows[:n], outputs, name) for name in (a, b)}
    wins = [verdict(scores[a][ex["id"]]["score"] - scores[b][ex["id"]]["score"]) for ex in rows[:n]]
    return {"win_rate": round(100 * sum(wins) / max(1, len(wins)), 1), "items": len(wins),
            "wins": wins.count(1.0), "ties": wins.count(0.5), "losses": wins.count(0.0),
            f"mean_score_{a}": round(sum(scores[a][ex["id"]]["score"] for ex in rows[:n]) / max(1, len(wins)), 3),
            f"mean_score_{b}": round(sum(scores[b][ex["id"]]["score"] for ex in rows[:n]) / max(1, len(wins)), 3)}


def verdict(difference: float) -> float:
    """1 (win), 0.5 (tie) or 0 (loss) for a rubric score minus the other system's."""
    return 1.0 if difference > MARGIN else 0.0 if difference < -MARGIN else 0.5


def cached_rubric(cfg: Config, name: str) -> dict[str, dict]:
    """{id: {"output", "score", "answers"}} as last judged for one system (bench scripts read these)."""
    return {d["id"]: d for d in map(json.loads, open(eval_dir(cfg) / f"rubric-{name}.jsonl"))}


def rubric_scores(cfg: Config, rows: list[dict], outputs: dict[str, dict], name: str) -> dict[str, dict]:
    """{id: {"score", "answers"}} for one system's outputs, cached in <eval>/rubric-<name>.jsonl (resumable)."""
    path = eval_dir(cfg) / f"rubric-{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if path.exists():
        for line in open(path):
            d = json.loads(line)
            if d.get("output") == outputs[name].get(d["id"]):  # a regenerated output is judged again
                done[d["id"]] = d
    todo = [ex for ex in rows if ex["id"] not in done]
    if not todo:
        return done
    import llama_cpp

    from assistant.engine.models import LlamaCppModel
    from distill.teachers import ensure_teacher

    intro, label, questions = RUBRIC["support" if cfg.task == "support" else "summarize"]
    model = LlamaCppModel("judge", ensure_teacher(cfg.teach.teacher), n_ctx=4096)
    llm = model.load()
    yes = [llm.tokenize(x, add_bos=False)[0] for x in (b"Yes", b" Yes", b"yes")]
    no = [llm.tokenize(x, add_bos=False)[0] for x in (b"No", b" No", b"no")]
    with open(path, "a") as f:
        for ex in todo:
            answer = outputs[name][ex["id"]]
            probs = []
            asked = _asked_for(ex.get("task", ""))
            for q in questions:  # the questions share everything up to themselves: that prefix is evaluated once
                prompt = JUDGE_PROMPT.format(intro=intro, input=_judge_input(ex)[:2500], label=asked + label,
                                             answer=answer[:2000] or "(empty)", question=q)
                _eval_reusing(llm, model.tokens([{"role": "user", "content": prompt}]))
                logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
                py, pn = _logsumexp([logits[t] for t in yes]), _logsumexp([logits[t] for t in no])
                probs.append(round(1 / (1 + math.exp(pn - py)), 4))
            done[ex["id"]] = {"id": ex["id"], "output": answer, "score": round(sum(probs) / len(probs), 4), "answers": probs}
            f.write(json.dumps(done[ex["id"]]) + "\n")
            f.flush()
    model.unload()
    return done


def _asked_for(task: str) -> str:
    """For a summary, the format it was asked for, said before the answer (the judge sees only the email)."""
    kind, _, length = task.rpartition("-")
    if not kind.startswith("summarize") or length not in summarize_task.INSTRUCTION:
        return ""
    ask = (summarize_task.THREAD_INSTRUCTION if "thread" in kind else summarize_task.INSTRUCTION)[length]
    return f"The request was: {ask.replace(' above', '')}\n"


def _judge_input(ex: dict) -> str:
    """The mail or request the answer was written for, without the prompt's own instructions."""
    text = ex["messages"][-1]["content"]
    m = re.search(r'"""\n(.*)\n"""', text, re.S) or re.search(r"<<<[A-Z]+\n(.*)\n[A-Z]+>>>", text, re.S)
    return m.group(1) if m else text


def _eval_reusing(llm, tokens: list[int]) -> None:
    """llm.eval(tokens), keeping the KV cache of the prefix shared with the previous call."""
    common = 0
    for x, y in zip(llm._input_ids[: llm.n_tokens], tokens):
        if x != y:
            break
        common += 1
    common = min(common, len(tokens) - 1)  # at least one token is evaluated, for fresh logits
    if common and llm._ctx.kv_cache_seq_rm(-1, common, -1):
        llm.n_tokens = common
    else:
        llm.reset()
        common = 0
    llm.eval(tokens[common:])


def _logsumexp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def write_prompts(rows: list[dict], path: Path) -> Path:
    """The prompts file `distill.generate` reads: each example's messages and answer budget, and a
    subject line's sample count (the assistant makes a line from the consensus of several)."""
    with open(path, "w") as f:
        for ex in rows:
            samples = summarize_task.LINE_SAMPLES if ex["task"].endswith("-line") else 0
            f.write(json.dumps({"id": ex["id"], "messages": ex["messages"], "max_tokens": max_tokens_for(ex["task"]),
                                **({"samples": samples} if samples else {})}) + "\n")
    return path


def installed(name: str) -> tuple[str, str | None]:
    """(model, LoRA) of an installed model as the assistant runs it."""
    from assistant.engine import registry

    e = registry.all_models().get(name)
    if e is None:
        raise ValueError(f"no installed model named {name!r}")
    return as_run(e.path, e.lora_path, registry.merge_kind() if e.mergeable else None, e.name)


def run(cfg: Config, extra_systems: dict | None = None) -> Path:
    out = eval_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    rows = items(cfg, cfg.eval.eval_file)
    prompts = write_prompts(rows, out / "prompts.jsonl")
    report = {"name": cfg.name, "task": cfg.task, "items": len(rows), "systems": {}}
    outputs: dict[str, dict] = {}
    tasks = task_order(rows)
    for name, (model, lora) in systems(cfg, extra_systems).items():
        speed = generate(name, model, lora, prompts, out, progress=True)
        gens = {json.loads(l)["id"]: json.loads(l)["output"] for l in open(cache_file(out, name, model, lora))}
        outputs[name] = {ex["id"]: clean(ex["task"], gens.get(ex["id"], "")) for ex in rows}
        for task in tasks:
            scored = score_rows(cfg, [ex for ex in rows if ex["task"] == task], outputs[name])
            report.setdefault("tasks", {}).setdefault(task, {})[name] = scored
        report["systems"][name] = {**report["tasks"][tasks[0]][name], **speed, "model": Path(model).name,
                                   "lora": Path(lora).name if lora else None}
    if len(tasks) == 1:
        report.pop("tasks", None)
    if cfg.eval.judge and "student" in outputs:
        for task in [t for t in tasks if not cfg.eval.judge_tasks or t in cfg.eval.judge_tasks]:
            key = "" if task == tasks[0] else f"{task}: "
            task_rows = [ex for ex in rows if ex["task"] == task]
            report.setdefault("judge", {}).update(
                {f"{key}student_vs_{o}": judge(cfg, task_rows, outputs, "student", o, cfg.eval.judge_examples)
                 for o in outputs if o != "student" and not o.startswith("student-")})  # not its own other forms
    if "teacher" in report["systems"] and "student" in report["systems"]:
        report["speedup_vs_teacher"] = round(report["systems"]["student"]["decode_tok_s"] / report["systems"]["teacher"]["decode_tok_s"], 2)
    shown = [ex for t in tasks for ex in [r for r in rows if r["task"] == t][: 5 if t == tasks[0] else 2]]
    samples = [{"id": ex["id"], "reference": ex["reference"], **{n: outputs[n][ex["id"]] for n in outputs}} for ex in shown]
    (out / "report.json").write_text(json.dumps({**report, "samples": samples}, indent=2, ensure_ascii=False))
    (out / "report.md").write_text(render_markdown(report, samples))
    plots(cfg, report)
    return out


def score_rows(cfg: Config, rows: list[dict], outputs: dict[str, str]) -> dict:
    """ROUGE against the references, mean length and format checks of one system on one task's rows."""
    scores = [rouge(outputs[ex["id"]], ex["reference"]) for ex in rows]
    fmt = [format_ok(ex["task"], outputs[ex["id"]], ex["messages"][-1]["content"]) for ex in rows]
    words = [len(outputs[ex["id"]].split()) for ex in rows]
    n = max(1, len(rows))
    return {**{k: round(sum(s[k] for s in scores) / n, 2) for k in ("rouge1", "rouge2", "rougeL")},
            "mean_words": round(sum(words) / n, 1), "format_ok": round(100 * sum(fmt) / n, 1), "items": len(rows),
            **({"house_style": round(100 * sum(house_style_ok(outputs[ex["id"]]) for ex in rows) / n, 1)}
               if cfg.task == "support" else {})}


def render_markdown(report: dict, samples: list[dict]) -> str:
    lines = [f"# Report card: {report['name']}", "", f"{report['items']} held-out items, never used in training.", "",
             "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | words | format ok % | decode tok/s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in report["systems"].items():
        lines.append(f"| {name} | {s['rouge1']} | {s['rouge2']} | {s['rougeL']} | {s['mean_words']} | {s['format_ok']} "
                     f"| {s['decode_tok_s']} | {s['peak_rss_mb']} |")
    for task, by_system in list(report.get("tasks", {}).items())[1:]:
        n = next(iter(by_system.values()))["items"]
        lines += ["", f"`{task}` ({n} item{'s' if n != 1 else ''}; its references, where any, are "
                      "the data set's own lines, so the judge decides):", "",
                  "| system | ROUGE-L | words | format ok % |", "|---|---|---|---|"]
        lines += [f"| {n} | {s['rougeL']} | {s['mean_words']} | {s['format_ok']} |" for n, s in by_system.items()]
    styled = {n: s["house_style"] for n, s in report["systems"].items() if "house_style" in s}
    if styled:
        lines += ["", "House style (greets first, signs off last): " + ", ".join(f"{n} {v}%" for n, v in styled.items()) + "."]
    if "speedup_vs_teacher" in report:
        sy = report["systems"]
        how = " (one GGUF with the adapter folded in, as the assistant runs it)" if not sy["student"].get("lora") else ""
        lines += ["", f"Student decode speed{how}: {report['speedup_vs_teacher']}× the teacher's."]
        if "student-adapter" in sy:
            lines[-1] += (f" As base + adapter applied at run time: "
                          f"{round(sy['student-adapter']['decode_tok_s'] / sy['teacher']['decode_tok_s'], 2)}×.")
    for k, v in report.get("judge", {}).items():
        lines += ["", f"Judge (teacher, rubric of yes/no questions per answer, ties half): {k.replace('_', ' ')}: "
                      f"{v['win_rate']}% over {v['items']} items ({v['wins']} wins, {v['ties']} ties, {v['losses']} losses)."]
    lines += ["", "![loss](loss.png) ![score vs speed](score_speed.png)", "", "## Samples", ""]
    for s in samples:
        lines.append(f"- **{s['id']}** reference: {s['reference'][0] if isinstance(s['reference'], list) else s['reference'][:200]!r}")
        for k, v in s.items():
            if k not in ("id", "reference"):
                lines.append(f"  - {k}: {v[:300]!r}")
    return "\n".join(lines) + "\n"


def plots(cfg: Config, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = eval_dir(cfg)
    log = cfg.run_dir / "train" / "log.jsonl"
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if log.exists():
        recs = [json.loads(l) for l in open(log)]
        ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], label="train", lw=0.8)
        ev = [r for r in recs if "val_loss" in r]
        ax.plot([r["step"] for r in ev], [r["val_loss"] for r in ev], "o-", label="held-out")
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, s in report["systems"].items():
        ax.scatter(s["decode_tok_s"], s["rougeL"])
        ax.annotate(name, (s["decode_tok_s"], s["rougeL"]))
    ax.set_xlabel("decode tokens/s (this machine)")
    ax.set_ylabel("ROUGE-L")
    fig.tight_layout()
    fig.savefig(out / "score_speed.png", dpi=100)
    plt.close(fig)
