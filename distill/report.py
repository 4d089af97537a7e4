"""The report card as people read it: report.md (tables, judge verdicts, samples) and PNG plots.

    (out / "report.md").write_text(render_markdown(report, samples))
    plots(cfg, report)            # loss.png (train and held-out loss), score_speed.png (ROUGE-L vs decode speed)
"""

from __future__ import annotations

import json

from distill.config import Config
from distill.layout import eval_dir, train_dir


def render_markdown(report: dict, samples: list[dict]) -> str:
    lines = [f"# Report card: {report['name']}", "", f"{report['items']} held-out items, never used in training.", "",
             "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | words | format ok % | decode tok/s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in report["systems"].items():
        lines.append(f"| {name} | {s['rouge1']} | {s['rouge2']} | {s['rougeL']} | {s['mean_words']} | {s['format_ok']} "
                     f"| {s['decode_tok_s']} | {s['peak_rss_mb']} |")
    for task, by_system in list(report.get("tasks", {}).items())[1:]:
        n = next(iter(by_system.values()))["items"]
        invented = all("invented" in s for s in by_system.values())
        lines += ["", f"`{task}` ({n} item{'s' if n != 1 else ''}; its references, where any, are "
                      "the data set's own lines, so the judge decides):", "",
                  "| system | ROUGE-L | words | format ok % |" + (" invented facts % |" if invented else ""),
                  "|---|---|---|---|" + ("---|" if invented else "")]
        lines += [f"| {n} | {s['rougeL']} | {s['mean_words']} | {s['format_ok']} |" + (f" {s['invented']} |" if invented else "")
                  for n, s in by_system.items()]
    if any("invented" in s for by in report.get("tasks", {}).values() for s in by.values()):
        lines += ["", "Invented facts: the share of answers that state a name, number, date or email address "
                      "their email does not contain (assistant.tasks.facts; lexical, the same rule for every system)."]
    lines += grounded_lines(report)
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


def grounded_lines(report: dict) -> list[str]:
    """For each task answered from knowledge-base passages, how each system used them (distill.metrics.grounded_scores)."""
    lines = []
    by_task = report.get("tasks") or {report.get("scored_task") or report.get("task", ""): report.get("systems", {})}
    for task, by_system in by_task.items():
        if not by_system or not all("citation_precision" in s for s in by_system.values()):
            continue
        first = next(iter(by_system.values()))
        lines += ["", f"`{task}`, grounded: {first['retrieved']}% of the answerable questions had their known source among "
                      "the passages. On each system's own [n] marks:", "",
                  "| system | cites % | citation precision % | source recall % | abstention % | false abstention % | "
                  "abstention, source not retrieved % |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {n} | {s['cites']} | {s['citation_precision']} | {s['source_recall']} | {s['abstention']} | "
                  f"{s['false_abstention']} | {s.get('abstention_unretrieved')} |" for n, s in by_system.items()]
    if lines:
        lines += ["", "Cites, source recall and false abstention are over the answerable questions whose source was "
                      "retrieved: cites, answers with a mark; source recall, the known source cited; false abstention, "
                      "answered with 'the passages do not cover it'. Citation precision: marks whose sentence's content "
                      "words are mostly in the passage named. Abstention: unanswerable questions answered so; the last "
                      "column, answerable questions whose source was not among the passages (right there too)."]
    return lines


def plots(cfg: Config, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = eval_dir(cfg)
    log = train_dir(cfg) / "log.jsonl"
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
