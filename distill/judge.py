"""The judge: the teacher scores each answer alone on a rubric of yes/no questions; win rates from those scores.

    distill eval configs/support.toml eval.judge=true eval.judge_examples=30

An answer's score is the judge's mean P(Yes) over the rubric's questions, read from its
next-token probabilities of "Yes" and "No". Scores are cached per answer in
`<run>/eval/rubric-<system>.jsonl` (resumable; a changed answer is judged again); bench scripts
read them back with `cached_rubric`.
"""

from __future__ import annotations

import json
import math
import re

from assistant.tasks import summarize as summarize_task
from distill.config import Config
from distill.layout import eval_dir

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
# reading of 140 answer pairs (experiments/judge_check/support-v3-*-blind.jsonl and summarize-v4-*-{teacher,base}.jsonl)
# it gave the same verdict on 104; with 0.03 it called most pairs ties and gave the same verdict on 60.
MARGIN = 0.0


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
    rubric = Rubric(cfg)
    with open(path, "a") as f:
        for ex in todo:
            answer = outputs[name][ex["id"]]
            probs = rubric.p_yes(ex, answer)
            done[ex["id"]] = {"id": ex["id"], "output": answer, "score": round(sum(probs) / len(probs), 4), "answers": probs}
            f.write(json.dumps(done[ex["id"]]) + "\n")
            f.flush()
    rubric.close()
    return done


class Rubric:
    """The teacher loaded as the judge, with the task's rubric."""

    def __init__(self, cfg: Config):
        from assistant.engine.models import LlamaCppModel
        from distill.teachers import ensure_teacher

        self.intro, self.label, self.questions = RUBRIC["support" if cfg.task == "support" else "summarize"]
        self.model = LlamaCppModel("judge", ensure_teacher(cfg.teach.teacher), n_ctx=4096)
        self.llm = self.model.load()
        self.yes = [self.llm.tokenize(x, add_bos=False)[0] for x in (b"Yes", b" Yes", b"yes")]
        self.no = [self.llm.tokenize(x, add_bos=False)[0] for x in (b"No", b" No", b"no")]

    def p_yes(self, ex: dict, answer: str) -> list[float]:
        """P(Yes) for each question about `answer` to example `ex`."""
        import llama_cpp

        probs = []
        asked = _asked_for(ex.get("task", ""))
        for q in self.questions:  # the questions share everything up to themselves: that prefix is evaluated once
            prompt = JUDGE_PROMPT.format(intro=self.intro, input=_judge_input(ex)[:2500], label=asked + self.label,
                                         answer=answer[:2000] or "(empty)", question=q)
            _eval_reusing(self.llm, self.model.tokens([{"role": "user", "content": prompt}]))
            logits = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
            py, pn = _logsumexp([logits[t] for t in self.yes]), _logsumexp([logits[t] for t in self.no])
            probs.append(round(1 / (1 + math.exp(pn - py)), 4))
        return probs

    def close(self) -> None:
        self.model.unload()


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
