"""The grounded question corpus: questions over real knowledge bases, each with the passage that answers it
or none (the knowledge base cannot answer it), for teaching and judging answers that use and cite a KB.

    python -m distill.grounded ../shared/data data/grounded      # writes data/grounded/questions.jsonl.gz

A `grounded` data source asks these questions with the passages the assistant's own retrieval finds
(Index.passages) in an index of each KB, built in the data dir on first use.

Knowledge bases:
- demo: the shipped demo KB (assets/demo/kb, ABCD's agent guidelines, MIT). Questions are customer
  requests from Bitext (CDLA-Sharing-1.0; none that the support student trains on) whose intent one
  guideline covers (INTENT_SOURCE); requests of
  intents no guideline covers (UNCOVERED) are the questions it cannot answer.
- stackfaq: 125 web-app how-to threads (StackExchange, CC BY-SA), one file each, with its 400 paraphrased
  user queries and the thread that answers each; customer-order requests are asked of it too, unanswerable.
- tickets: a support team's library of past answers: the English tickets of one synthetic ticket file
  (CC BY-NC 4.0), one file each holding its subject and the answer it got. A ticket picked by a hash of its
  text (TICKET_QUESTION_PERCENT) is asked by its body, its own answer the source; Bitext requests of
  intents no ticket is about (UNCOVERED) are asked too, unanswerable. The support student also trains on
  these tickets as plain replies: a `tickets` data source of a reply or chat task skips the ones asked
  here as dev questions (`held_out_ticket`), so no dev question's answer is trained on.
Each line: {"id", "kb", "question", "source" (a file name in the KB folder, or null), "split"}. The split
is a hash of the id (DEV_PERCENT held out), so it never moves; StackFAQ's paraphrased queries are split by
their thread instead, and its queries asked of the demo KB keep their thread's split, so that no dev
question has its own text or a paraphrase of it in training.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import sys
from pathlib import Path

DEV_PERCENT = 15
# the support student trains on bitext_v2_train.csv's requests as plain replies: the questions are drawn from
# the other Bitext file's requests that it does not hold, so that none is seen in training as anything else
TRAINED_BITEXT = "bitext_v2_train.csv"
QUESTIONS_BITEXT = "Bitext_Sample_Customer_support_Training_Dataset_GPT3.5_6480rows.csv"
DEMO_KB = Path(__file__).resolve().parents[1] / "assets" / "demo" / "kb"
# Bitext intent → the guideline that answers it (only where one guideline clearly does)
INTENT_SOURCE = {
    "recover_password": "account-access-recover-password.md",
    "change_shipping_address": "shipping-issue-manage-shipping.md",
    "cancel_order": "order-issue-manage-cancel.md",
    "place_order": "order-issue-manage-create.md",
    "get_refund": "product-defect-initiate-refund.md",
    "track_refund": "product-defect-refund-status.md",
    "track_order": "shipping-issue-shipping-status.md",
    "delivery_period": "order-issue-status-delivery-time.md",
    "check_refund_policy": "storewide-query-policy-faq.md",
}
TICKETS = "support-tickets-synthetic/tickets_v4_20k_prefix_train.csv"  # the ticket KB's file, under the shared data
TICKET_QUESTION_PERCENT = 12  # of its English tickets, those asked by their body (the rest stand as distractors)
UNCOVERED = ("newsletter_subscription", "review", "create_account", "delete_account")  # no guideline for these
PER_INTENT, PER_UNCOVERED, STACKFAQ_UNANSWERABLE, DEMO_UNANSWERABLE_FROM_STACKFAQ = 35, 15, 60, 40


def split_of(qid: str) -> str:
    return "dev" if int(hashlib.sha1(qid.encode()).hexdigest()[:8], 16) % 100 < DEV_PERCENT else "train"


def _bucket(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % 100


def ticket_body(raw: str) -> str:
    """A ticket's body as the KB and its questions hold it (some rows write newlines as a literal \\n)."""
    return raw.replace("\\n", "\n").replace("\r\n", "\n").strip()


def in_ticket_kb(row: dict) -> bool:
    return row.get("language") == "en" and bool(ticket_body(row.get("body") or "")) and bool((row.get("answer") or "").strip())


def ticket_rows(path: Path) -> list[tuple[str, dict]]:
    """(file name, row) of the ticket KB's tickets: English, with a body and an answer."""
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:  # as the `tickets` data source reads it
        table = list(csv.DictReader(f))
    for r in table:
        if in_ticket_kb(r):
            body, answer = ticket_body(r["body"]), ticket_body(r["answer"])
            rows.append((f"ticket-{hashlib.sha1((r['subject'] + body).encode()).hexdigest()[:12]}.md",
                         {**r, "body": body, "answer": answer}))
    return rows


def _asked(body: str) -> bool:
    return _bucket("asked:" + body) < TICKET_QUESTION_PERCENT


def held_out_ticket(row: dict, path: Path) -> bool:
    """Whether a row of a ticket file is a dev question of the ticket KB: a KB ticket, asked, in the dev split."""
    if path.name != Path(TICKETS).name or not in_ticket_kb(row):
        return False
    body = ticket_body(row["body"])
    return _asked(body) and split_of(question_id("tickets", body)) == "dev"


def write_tickets_kb(shared: Path, dest: Path) -> None:
    """One Markdown file a ticket: its subject as the title, then the answer it got (not the customer's text)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, r in ticket_rows(shared / TICKETS):
        (dest / name).write_text(f"# {r['subject'].strip() or 'Support answer'}\n\n{r['answer']}\n", encoding="utf-8")


def question_id(kb: str, text: str) -> str:
    return f"{kb}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def write_stackfaq_kb(shared: Path, dest: Path) -> dict[str, str]:
    """The StackFAQ threads as one Markdown file each (title, then the answers); doc id → file name."""
    dest.mkdir(parents=True, exist_ok=True)
    names = {}
    for line in open(shared / "stackfaq-retrieval" / "corpus.jsonl", encoding="utf-8"):
        d = json.loads(line)
        names[d["doc_id"]] = name = f"{d['doc_id']}.md"
        (dest / name).write_text(f"# {d['title']}\n\n{d['text'].strip()}\n", encoding="utf-8")
    return names


def questions(shared: Path, stackfaq_names: dict[str, str]) -> list[dict]:
    rng = random.Random(0)
    bitext = shared / "bitext-customer-support"
    trained = {r["instruction"].strip() for r in csv.DictReader(open(bitext / TRAINED_BITEXT, encoding="utf-8"))}
    by_intent: dict[str, list[str]] = {}
    for r in csv.DictReader(open(bitext / QUESTIONS_BITEXT, encoding="utf-8")):
        if (text := r["instruction"].strip()) not in trained and text not in by_intent.get(r["intent"], []):
            by_intent.setdefault(r["intent"], []).append(text)
    for qs in by_intent.values():
        rng.shuffle(qs)

    def q(kb: str, text: str, source: str | None, split: str = "") -> dict:
        qid = question_id(kb, text)
        return {"id": qid, "kb": kb, "question": text, "source": source, "split": split or split_of(qid)}

    out = [q("demo", t, src) for intent, src in INTENT_SOURCE.items() for t in by_intent[intent][:PER_INTENT]]
    out += [q("demo", t, None) for intent in UNCOVERED for t in by_intent[intent][:PER_UNCOVERED]]
    for line in open(shared / "stackfaq-retrieval" / "queries.jsonl", encoding="utf-8"):
        r = json.loads(line)
        # split by thread: a thread's paraphrased queries all train or all stay out
        out.append(q("stackfaq", r["text"].strip(), stackfaq_names[r["thread_id"]], split_of(f"stackfaq-thread:{r['thread_id']}")))
    # the other KB's questions, which this one cannot answer (drawn past those used above)
    orders = [t for intent in INTENT_SOURCE for t in by_intent[intent][PER_INTENT:PER_INTENT + 10]]
    out += [q("stackfaq", t, None) for t in rng.sample(orders, STACKFAQ_UNANSWERABLE)]
    out += [q("tickets", r["body"], name) for name, r in ticket_rows(shared / TICKETS) if _asked(r["body"])]
    out += [q("tickets", t, None) for intent in UNCOVERED for t in by_intent[intent][PER_UNCOVERED:PER_UNCOVERED + 8]]
    web = [r for r in out if r["kb"] == "stackfaq" and r["source"]]
    # asked of the demo KB too (unanswerable there), in the split of their thread: no text is in both splits
    out += [q("demo", r["question"], None, r["split"]) for r in rng.sample(web, DEMO_UNANSWERABLE_FROM_STACKFAQ)]
    seen, unique = set(), []
    for r in out:
        if r["id"] not in seen:
            seen.add(r["id"])
            unique.append(r)
    return unique


PASSAGES = 4  # passages in a grounded prompt, as `assistant ask` and `reply --kb` use


def collection(kb: str) -> str:
    return f"grounded-{kb}"


def index_for(kbs: set[str], questions_dir: Path, kb_data: Path | None):
    """An index (in the data dir, apart from the user's own) holding a collection per KB the questions ask,
    each indexed from its files: the demo KB as shipped, StackFAQ written from `kb_data` first."""
    from assistant import paths
    from assistant.index import Index

    home = paths.data_dir() / "grounded"
    home.mkdir(parents=True, exist_ok=True)
    idx = Index.open(home / "index.db")
    for kb in sorted(kbs):
        if kb == "demo":
            folder = DEMO_KB
        elif kb == "stackfaq":
            if kb_data is None or not (kb_data / "stackfaq-retrieval").exists():
                raise ValueError(f"{questions_dir}: StackFAQ questions need kb_data, the folder holding stackfaq-retrieval/")
            folder = home / "kbs" / kb
            write_stackfaq_kb(kb_data, folder)
        elif kb == "tickets":
            if kb_data is None or not (kb_data / TICKETS).exists():
                raise ValueError(f"{questions_dir}: ticket questions need kb_data, the folder holding {TICKETS}")
            folder = home / "kbs" / kb
            write_tickets_kb(kb_data, folder)
        else:
            raise ValueError(f"{questions_dir}: unknown knowledge base {kb!r}")
        idx.add([folder], collection(kb))
    return idx


def build(shared: Path, out: Path) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        names = write_stackfaq_kb(shared, Path(tmp))
    rows = questions(shared, names)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "questions.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    counts: dict[str, int] = {}
    for r in rows:
        key = f"{r['kb']}/{r['split']}/{'answerable' if r['source'] else 'unanswerable'}"
        counts[key] = counts.get(key, 0) + 1
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m distill.grounded SHARED_DATA_DIR OUT_DIR")
    print(json.dumps(build(Path(sys.argv[1]), Path(sys.argv[2])), indent=1, sort_keys=True))
