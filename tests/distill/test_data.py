"""`distill data`: AESLC, Bitext and ticket rows become examples with the assistant's own prompts."""

import json

from assistant import tasks
from assistant.paths import data_dir as user_dir
from assistant.tasks import ask as ask_task
from distill import data as data_stage
from distill.config import load_config
from tests.distill.helpers import write_config


def test_data_split_is_fixed_and_prompts_match_the_assistant(tmp_path, shared):
    cfg = load_config(write_config(tmp_path, shared))
    rows = data_stage.read_examples(data_stage.run(cfg))
    again = data_stage.read_examples(data_stage.run(cfg))
    assert [(r["id"], r["split"]) for r in rows] == [(r["id"], r["split"]) for r in again]
    assert sum(r["split"] == "val" for r in rows) == 8
    from assistant.tasks.summarize import build_messages

    first = rows[0]
    body = json.loads(next(l for l in open(shared / "aeslc" / "train.jsonl") if first["id"].split(":")[1] in l))["email_body"]
    assert first["messages"] == build_messages(body.strip(), "line")[0]


def test_manifest_names_the_prompt_version_the_examples_were_built_with(tmp_path, shared):
    """Each example records the prompt version it was built with; the run's version is the first task
    example's (a chat turn first says nothing), today's for a file from before versions were recorded."""
    from assistant import tasks
    from assistant.tasks import reply, summarize

    rows = data_stage.read_examples(data_stage.run(load_config(write_config(tmp_path, shared))))
    assert {r["prompt_version"] for r in rows} == {tasks.task("summarize-line").current}
    for task, module in (("summarize", summarize), ("support", reply)):
        for version in module.VERSIONS:
            f = tmp_path / f"{version}.jsonl"
            chat = {"task": "chat", "messages": [{"role": "system", "content": reply.SYSTEM_V2}, {"role": "user", "content": "hi"}]}
            f.write_text(json.dumps(chat) + "\n" + json.dumps({"task": "reply", "prompt_version": version, "messages": []}) + "\n")
            assert data_stage.trained_prompt_version(f, task) == version
    assert data_stage.trained_prompt_version(tmp_path / "none.jsonl", "support") == reply.PROMPT_VERSION


def test_one_email_gives_one_example_per_task_and_eval_takes_each_task(tmp_path, shared):
    """A line and a short summary of the same emails are two examples with their own ids (the
    teacher's answers are keyed by id), and the report card draws items from every task."""
    from distill.evaluate import items, task_order

    extra_sources = "".join(f"""
[[data.sources]]
kind = "aeslc"
path = "{shared / 'aeslc' / f}"
task = "summarize-short"
limit = {n}
{'split = "val"' if f == 'dev.jsonl' else ''}
""" for f, n in (("train.jsonl", 5), ("dev.jsonl", 3)))
    cfg_file = write_config(tmp_path, shared)
    text = cfg_file.read_text()
    cfg_file.write_text(text.replace("[train]", extra_sources + "[eval]\nexamples = 2\n[train]"))
    cfg = load_config(cfg_file)
    rows = data_stage.read_examples(data_stage.run(cfg))
    short = [r for r in rows if r["task"] == "summarize-short"]
    assert len(short) == 8 and all(r["id"].endswith(":summarize-short") for r in short)
    line_ids = {r["id"] for r in rows if r["task"] == "summarize-line"}
    assert {r["id"].rsplit(":", 1)[0] for r in short if r["split"] == "train"} <= line_ids
    assert len({r["id"] for r in rows}) == len(rows)
    picked = items(cfg)
    assert [r["task"] for r in picked] == ["summarize-line"] * 2 + ["summarize-short"] * 2
    threads_first = [{"task": "summarize-thread-short"}] + [{"task": "summarize-line"}] * 3 + [{"task": "summarize-short"}] * 3
    assert task_order(threads_first) == ["summarize-line", "summarize-short", "summarize-thread-short"]


def test_house_style_wraps_train_replies_in_the_customers_language(tmp_path, shared):
    from distill.metrics import house_style_ok

    cfg = tmp_path / "s.toml"
    cfg.write_text(f"""
name = "s"
task = "support"
out_dir = "{tmp_path / 'run'}"
[data]
val_percent = 20.0
[[data.sources]]
kind = "bitext"
path = "{shared / 'bitext-customer-support' / 'bitext_v2_train.csv'}"
limit = 30
house_style = true
[[data.sources]]
kind = "tickets"
path = "{shared / 'support-tickets-synthetic' / 'tickets_v4_20k_prefix_train.csv'}"
limit = 60
house_style = true
""")
    rows = data_stage.read_examples(data_stage.run(load_config(cfg)))
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert train and val
    assert all(house_style_ok(r["reference"]) for r in train), [r["reference"][:80] for r in train if not house_style_ok(r["reference"])]
    assert not any(n in r["reference"] for r in train for n in ("<name>", "[Name]", "[Your Name]"))
    from assistant.tasks.reply import guess_language

    for r in train:  # greeting and sign-off in the answer's language, whatever the data set's label says
        lang = guess_language(r["reference"])
        if r["reference"].startswith(("Hello,", "Guten Tag,")):
            assert r["reference"].startswith("Guten Tag," if lang == "de" else "Hello,"), r["reference"][:200]
    assert any(r["reference"].startswith("Guten Tag,") for r in train)
    # held-out references stay the data set's own, so scores compare with other systems
    raw = [r for r in val if r["source"] == "bitext"]
    assert raw and not any(house_style_ok(r["reference"]) for r in raw)


def test_grounded_questions_are_asked_with_the_passages_the_assistant_retrieves(tmp_path):
    """The real index over the shipped demo KB: a training prompt holds the passages `assistant ask` would
    show for the question, numbered as it numbers them, and knows which of them (if any) answers it."""
    import gzip

    from assistant.index import Index
    from distill import grounded

    qs = tmp_path / "questions.jsonl.gz"
    rows = [{"id": "demo:q1", "kb": "demo", "question": "I forgot my password, how do I get a new one?",
             "source": "account-access-recover-password.md", "split": "train"},
            {"id": "demo:q2", "kb": "demo", "question": "How do I subscribe to your newsletter?", "source": None, "split": "dev"},
            {"id": "demo:q3", "kb": "demo", "question": "Which wine goes with fish?", "source": None, "split": "train"}]
    with gzip.open(qs, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'name = "g"\ntask = "support"\n[[data.sources]]\nkind = "grounded"\npath = "{qs}"\ntask = "ask"\n'
                   f'target = "teacher"\n[[data.sources]]\nkind = "grounded"\npath = "{qs}"\ntask = "reply"\ntarget = "teacher"\n')
    out = {ex["id"]: ex for ex in data_stage.build_examples(load_config(cfg))}
    ask, reply = out["demo:q1"], out["demo:q1:reply"]
    assert ask["split"] == "train" and out["demo:q2"]["split"] == "val"  # the corpus's own split
    meta = ask["meta"]
    assert meta["source"] in meta["passages"] and len(meta["passages"]) == grounded.PASSAGES
    assert meta["question"] == rows[0]["question"]  # for the prompt in another order (train.shuffle_passages)
    idx = Index.open(user_dir() / "grounded" / "index.db")
    hits = idx.passages(rows[0]["question"], grounded.collection("demo"), grounded.PASSAGES)
    assert ask["messages"] == tasks.task("ask").prompt(rows[0]["question"], [h.text for h in hits]).messages
    assert reply["messages"] == tasks.task("reply").prompt(rows[0]["question"], kb=[h.text for h in hits]).messages
    n = meta["passages"].index(meta["source"]) + 1
    assert f"[{n}] # Recover Password" in ask["messages"][-1]["content"]
    # a question the KB cannot answer is answered as the prompt asks, not by the teacher; as a reply it still is
    assert ask["use"] == "teacher" and out["demo:q1:reply"]["use"] == "teacher"
    assert out["demo:q3"]["use"] == "reference" and out["demo:q3"]["reference"] == ask_task.NOT_COVERED
    assert ask_task.NOT_COVERED in out["demo:q3"]["messages"][0]["content"]
    assert out["demo:q3:reply"]["use"] == "teacher"
    # the teacher is told which passage answers (it said "not covered" to 11 of 11 such questions); the student is not
    hint = ask["teacher_messages"][-1]["content"]
    assert hint.startswith(ask["messages"][-1]["content"]) and hint.endswith(f"Passage [{n}] holds the answer. "
                                                                            f"Answer in two to four sentences, each ending with [{n}].")
    assert ask["teacher_messages"][:-1] == ask["messages"][:-1] and "holds the answer" not in ask["messages"][-1]["content"]
    assert not any("teacher_messages" in out[k] for k in ("demo:q3", "demo:q2"))
    # a reply whose excerpt was retrieved: the teacher is told which, and that the customer reads it (it pasted
    # the agent manual's bracketed steps); the student's prompt has no hint
    told = reply["teacher_messages"][-1]["content"]
    assert told.endswith(data_stage.COVERED_REPLY_HINT.format(n=n)) and f"Excerpt [{n}] covers" in told
    assert "Excerpt [" not in reply["messages"][-1]["content"]
    # a reply to a request no excerpt covers: the teacher is told not to use them (it invented steps from them)
    uncovered = out["demo:q3:reply"]
    assert uncovered["teacher_messages"][-1]["content"].endswith(data_stage.UNCOVERED_REPLY_HINT)
    assert "None of these excerpts" not in uncovered["messages"][-1]["content"]


def test_without_source_asks_an_answerable_question_again_without_its_answering_passage(tmp_path):
    """The real index over the demo KB: with without_source = 1, each answerable training question is asked a
    second time with its answering passage left out and the next retrieved in its place, answered "not covered";
    a dev question and a question the KB cannot answer are asked once, and 0 (the default) adds nothing."""
    import gzip

    qs = tmp_path / "questions.jsonl.gz"
    rows = [{"id": "demo:q1", "kb": "demo", "question": "I forgot my password, how do I get a new one?",
             "source": "account-access-recover-password.md", "split": "train"},
            {"id": "demo:q2", "kb": "demo", "question": "How can I check the status of my order?",
             "source": "shipping-issue-shipping-status.md", "split": "dev"},
            {"id": "demo:q3", "kb": "demo", "question": "Which wine goes with fish?", "source": None, "split": "train"}]
    with gzip.open(qs, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)

    def build(share: str) -> dict:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'name = "g"\ntask = "support"\n[[data.sources]]\nkind = "grounded"\npath = "{qs}"\n'
                       f'task = "ask"\ntarget = "teacher"\n{share}')
        return {ex["id"]: ex for ex in data_stage.build_examples(load_config(cfg))}

    assert sorted(build("")) == ["demo:q1", "demo:q2", "demo:q3"]
    out = build("without_source = 1.0\n")
    assert sorted(out) == ["demo:q1", "demo:q1:without-source", "demo:q2", "demo:q3"]
    asked, without = out["demo:q1"], out["demo:q1:without-source"]
    assert without["split"] == "train" and without["use"] == "reference" and without["reference"] == ask_task.NOT_COVERED
    assert rows[0]["source"] in asked["meta"]["passages"] and rows[0]["source"] not in without["meta"]["passages"]
    assert len(without["meta"]["passages"]) == len(asked["meta"]["passages"])
    # the other passages keep their order, the next one retrieved fills the gap
    assert [p for p in asked["meta"]["passages"] if p != rows[0]["source"]] == without["meta"]["passages"][:-1]
    assert "# Recover Password" not in without["messages"][-1]["content"]
    assert without["meta"]["held_out"] == rows[0]["source"] and not without["meta"]["source"]
    assert "teacher_messages" not in without


def test_no_dev_question_has_its_text_or_a_paraphrase_in_training(tmp_path, shared):
    """StackFAQ holds several paraphrases of each thread's question, and 40 of its questions are asked of the
    demo KB too: split by question id, 6 texts were in both splits and 49 of 53 answerable StackFAQ dev
    questions had a paraphrase in training. Split by thread, none."""
    from distill import grounded

    qs = grounded.questions(shared, grounded.write_stackfaq_kb(shared, tmp_path / "faq"))
    train = [q for q in qs if q["split"] == "train"]
    dev = [q for q in qs if q["split"] == "dev"]
    assert len(dev) >= 100 and not {q["question"] for q in train} & {q["question"] for q in dev}
    faq_threads = lambda rows: {q["source"] for q in rows if q["kb"] == "stackfaq" and q["source"]}
    assert len(faq_threads(dev)) >= 10 and not faq_threads(train) & faq_threads(dev)
    thread_of = {q["question"]: q["source"] for q in qs if q["kb"] == "stackfaq" and q["source"]}
    assert not {thread_of.get(q["question"]) for q in dev if q["kb"] == "demo"} - {None} & faq_threads(train)


def test_the_ticket_kbs_dev_questions_are_never_trained_on_as_replies(tmp_path, shared):
    """The real ticket file: each dev question of the ticket KB is a ticket whose answer is its known source;
    a `tickets` data source over the same file skips exactly those tickets, and keeps the train ones."""
    from distill import grounded

    rows = grounded.ticket_rows(shared / grounded.TICKETS)
    by_name = dict(rows)
    qs = [q for q in grounded.questions(shared, grounded.write_stackfaq_kb(shared, tmp_path / "faq")) if q["kb"] == "tickets"]
    dev = [q for q in qs if q["split"] == "dev" and q["source"]]
    train = [q for q in qs if q["split"] == "train" and q["source"]]
    assert len(dev) >= 20 and len(train) > len(dev)
    assert all(by_name[q["source"]]["body"] == q["question"] for q in qs if q["source"])
    grounded.write_tickets_kb(shared, tmp_path / "kb")
    assert by_name[dev[0]["source"]]["answer"] in (tmp_path / "kb" / dev[0]["source"]).read_text()
    assert dev[0]["question"] not in (tmp_path / "kb" / dev[0]["source"]).read_text()  # the answer, not the question

    def texts(task: str, file: str = grounded.TICKETS) -> set[str]:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'name = "t"\ntask = "{"support" if task == "reply" else "summarize"}"\n'
                       f'[[data.sources]]\nkind = "tickets"\npath = "{shared / file}"\ntask = "{task}"\n')
        return {ex["messages"][-1]["content"] for ex in data_stage.build_examples(load_config(cfg))}

    replies, summaries = texts("reply"), texts("summarize-short")
    asked = lambda q, seen: any(q["question"][:200] in t for t in seen)
    assert not any(asked(q, replies) for q in dev)
    assert sum(asked(q, replies) for q in train) >= 0.9 * len(train)
    assert len(summaries) == len(replies) + len(dev)  # a summary of a dev ticket leaks nothing of its answer
    other = "support-tickets-synthetic/tickets_v5_prefix_train.csv"  # no ticket of the KB: nothing held out
    assert len(texts("reply", other)) == len(texts("summarize-short", other))


def test_grounded_kb_data_is_read_relative_to_the_config(tmp_path, monkeypatch):
    """`kb_data` is a path in the config like `path`: from another working directory it still names the
    folder beside the config (it was read from the working directory, so the shipped grounded config
    found no StackFAQ when run from the project root)."""
    (tmp_path / "cfg" / "q").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "cfg" / "q" / "questions.jsonl").write_text("")
    (tmp_path / "cfg" / "c.toml").write_text(
        'name = "g"\ntask = "reply"\n[[data.sources]]\nkind = "grounded"\npath = "q/questions.jsonl"\n'
        'kb_data = "../shared"\ntask = "ask"\ntarget = "teacher"\n')
    seen = []
    monkeypatch.setattr(data_stage, "_examples", lambda src, path: seen.append(src.kb_data) or iter(()))
    monkeypatch.chdir(tmp_path / "shared")
    list(data_stage.build_examples(load_config(tmp_path / "cfg" / "c.toml")))
    assert seen == [str((tmp_path / "shared").resolve())]


def test_a_ticket_kb_question_trains_on_its_past_answers_own_sentences_citing_it():
    from distill.data import past_answer

    passage = ("# Refund for a damaged mug\n\nDear <name>,\n\nThank you for reaching out. We will refund the mug to your "
               "card within five days. Could you send a photo of the damage? Is the box kept?\nBest regards,\n<name>")
    assert past_answer(passage, 3, sentences=2) == ("We will refund the mug to your card within five days [3]. "
                                                    "Could you send a photo of the damage [3]?")
    assert past_answer("# Only a greeting\n\nDear customer,\nBest regards", 1) == ""  # nothing to train on
