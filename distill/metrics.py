"""Scores of one system's answers on one task: ROUGE against the references, length, format, house style,
and for summaries the share that state a name, number or address the email does not hold.

    score_rows(cfg, rows, outputs)   # {"rouge1", "rouge2", "rougeL", "mean_words", "format_ok", "items", ...}
"""

from __future__ import annotations

import re

from assistant.tasks import summarize as summarize_task
from assistant.tasks.facts import invented_facts
from assistant.tasks.reply import has_house_style as house_style_ok
from distill.config import Config


def clean(task: str, text: str) -> str:
    """The same cleanup the assistant applies before showing an answer."""
    from assistant.tasks import reply as reply_task

    if task.startswith("summarize"):
        return summarize_task.clean(text, task.rpartition("-")[2])
    return reply_task.clean(text)


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


def score_rows(cfg: Config, rows: list[dict], outputs: dict[str, str]) -> dict:
    """ROUGE against the references, mean length and format checks of one system on one task's rows."""
    scores = [rouge(outputs[ex["id"]], ex["reference"]) for ex in rows]
    fmt = [format_ok(ex["task"], outputs[ex["id"]], ex["messages"][-1]["content"]) for ex in rows]
    words = [len(outputs[ex["id"]].split()) for ex in rows]
    n = max(1, len(rows))
    return {**{k: round(sum(s[k] for s in scores) / n, 2) for k in ("rouge1", "rouge2", "rougeL")},
            "mean_words": round(sum(words) / n, 1), "format_ok": round(100 * sum(fmt) / n, 1), "items": len(rows),
            **({"house_style": round(100 * sum(house_style_ok(outputs[ex["id"]]) for ex in rows) / n, 1)}
               if cfg.task == "support" else {}),
            **({"invented": invented_share(rows, outputs)} if cfg.task == "summarize" else {}),
            **(grounded_scores(rows, outputs) if rows and "passage_texts" in rows[0].get("meta", {}) else {})}


def grounded_scores(rows: list[dict], outputs: dict[str, str]) -> dict:
    """How an answer grounded in numbered passages uses them, on its own [n] marks (not the overlap marks the
    assistant adds where a model cites nothing), in %. Of the answerable questions whose known source was
    retrieved (`retrieved`: their share of the answerable): cites, the answers that cite a passage;
    source_recall, those citing the source; false_abstention, those saying the passages do not answer.
    citation_precision: marks whose sentence's content words are mostly in the passage it names, as the prompt
    cut it. abstention: unanswerable questions whose answer says the passages do not answer it;
    abstention_unretrieved: the same for answerable questions whose source was not retrieved (right there too)."""
    from assistant.tasks.ask import PASSAGE_CHARS, abstains, cited_sentences, keep_valid, supported

    answerable = [ex for ex in rows if ex["meta"]["source"]]
    unanswerable = [ex for ex in rows if not ex["meta"]["source"]]
    retrieved = [ex for ex in answerable if ex["meta"]["source"] in ex["meta"]["passages"]]
    unretrieved = [ex for ex in answerable if ex["meta"]["source"] not in ex["meta"]["passages"]]
    marks, right, cites, recalled = 0, 0, 0, 0
    was_retrieved = {ex["id"] for ex in retrieved}
    for ex in rows:
        texts = [t[:PASSAGE_CHARS] for t in ex["meta"]["passage_texts"]]
        pairs = cited_sentences(keep_valid(outputs[ex["id"]], len(texts)))
        marks += len(pairs)
        right += sum(supported(sentence, texts[n - 1]) for sentence, n in pairs)
        if ex["id"] in was_retrieved:
            cites += bool(pairs)
            recalled += (ex["meta"]["passages"].index(ex["meta"]["source"]) + 1) in {n for _, n in pairs}
    pct = lambda a, b: round(100 * a / b, 1) if b else None
    abstaining = lambda group: pct(sum(abstains(outputs[ex["id"]]) for ex in group), len(group))
    return {"cites": pct(cites, len(retrieved)), "citation_precision": pct(right, marks),
            "source_recall": pct(recalled, len(retrieved)), "abstention": abstaining(unanswerable),
            "false_abstention": abstaining(retrieved), "abstention_unretrieved": abstaining(unretrieved),
            "retrieved": pct(len(retrieved), len(answerable))}


def invented_share(rows: list[dict], outputs: dict[str, str]) -> float:
    """% of answers stating a name, number, date or email address that their email (or whole thread) does not hold."""
    from distill.data import source_text

    hits = sum(bool(invented_facts(outputs[ex["id"]], source_text(ex))) for ex in rows if outputs[ex["id"]])
    return round(100 * hits / max(1, len(rows)), 1)
