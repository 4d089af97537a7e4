"""The model card (README.md) written beside an installed or shipped student."""

from __future__ import annotations

LICENSES = {
    "aeslc": "AESLC (Enron subject lines): CC BY-NC-SA 4.0, non-commercial",
    "tickets": "synthetic support tickets (Tobi-Bueck): CC BY-NC 4.0, non-commercial",
    "bitext": "Bitext customer-support data: CDLA-Sharing-1.0",
    "abcd": "ABCD sample dialogues (ASAPP): MIT",
    "mail": "your own mail",
    "feedback": "your own accepted and edited drafts",
}
BY_PATH = {  # public sets read by a generic kind (mail, csv): their own license, not "your own mail"
    "maildir-notmuch": "notmuch mailing-list messages (maildir-notmuch): GPL-3.0-or-later",
}
USES = {
    "summarize": "Email summaries for `assistant summarize` (`--length line|short|long`, `--threads`).",
    "support": "Support reply drafts for `assistant reply` and the chat in the app.",
    "ask": "Grounded answers for `assistant ask` and the app's grounded chat: from retrieved passages, cited as [n].",
}


def use_of(m: dict) -> str:
    """What the student is the default for: its manifest's tasks when they name only grounded answers, else its kind's."""
    tasks = set(m.get("tasks") or ())
    return USES["ask"] if "ask" in tasks and not tasks & {"reply", "chat"} else USES.get(m["task"], m["task"])


def render(m: dict, report_md: str, notes: str = "") -> str:
    """The card from a manifest, the report card and the author's notes (notes.md beside it, kept across installs)."""
    kinds = sorted({s["kind"] for s in m["training_data"]})
    noncommercial = any(k in ("aeslc", "tickets") for k in kinds)
    def named(s):
        return f"{s['kind']} `{s['path']}`"

    def line(s):
        extra = (f", limit {s['limit']}" if s["limit"] else "") + (f", {s['inject']:.0%} with injected instructions" if s.get("inject") else "") \
            + (", greeting and sign-off added (house style)" if s.get("house_style") else "")
        task = f"{s['task']}, " if s.get("task") else ""
        return f"- {named(s)} ({task}target: {s['target']}{extra})"

    train_src = [s for s in m["training_data"] if s.get("split") != "val"]
    eval_src = [s for s in m["training_data"] if s.get("split") == "val"]
    data = "\n".join(line(s) for s in train_src) + (f"\n\n{m['train_examples']} training examples in all (after dedup, "
                                                     "length limits and the held-out split)." if m.get("train_examples") else "")
    if eval_src:
        data += "\n\nHeld out for the report card, never trained on: " + ", ".join(named(s) + (f" ({s['task']})" if s.get("task") else "") for s in eval_src) + "."
    injected = any(s.get("inject") for s in train_src)
    lic = "\n".join(f"- {x}" for x in sorted({BY_PATH.get(s["path"]) or LICENSES.get(s["kind"], s["kind"])
                                                for s in m["training_data"]}))
    kb_hint = (", and it knows nothing about your company's\n  policies unless you give them (`assistant reply --kb`)"
               if m["task"] == "support" else "")
    notes_block = f"\n{notes.strip()}\n" if notes.strip() else ""
    return f"""# {m['name']}

{use_of(m)} A LoRA adapter ({m['train']['method']}, r={m['train'].get('lora_r')},
{m['train']['max_steps']} steps) on SmolLM2-135M-Instruct (`{m['base_file']}`, sha256 `{m['base_sha256'][:16]}…`),
trained by `distill`. Targets (see below): `reference` is the data set's own answer (human subject lines for
AESLC; answers written by large models for Bitext and the tickets), `teacher` is the local teacher's
({m['teacher']}) answer: sequence-level distillation.
Prompt version `{m['prompt_version']}`: prompts come from the assistant's own task code.

## Intended use and limits

- Drafts and summaries for a person to read before anything is sent. It is a 135M-parameter model:
  it can miss details, get names or numbers wrong{kb_hint}.
- Mail text is data: the assistant fences it and removes instructions aimed at an AI before the
  model sees them{', and training included messages carrying such instructions with honest targets' if injected else ''}.
- English first{"; it also saw German tickets" if "tickets" in kinds else ""}.
{'- **Non-commercial use only**: trained on data licensed for non-commercial use (below).' if noncommercial else ''}

## Training data

{data}

Licenses:

{lic}
{notes_block}
## Export

`{m.get('adapter') or m.get('model')}` (sha256 `{m['sha256'][:16]}…`): top-1 next-token agreement with the
torch model on held-out prompts: {m['export'].get('agreement')}.

## Report card

{report_md.split(chr(10), 1)[1] if report_md else '(no evaluation yet)'}
"""
