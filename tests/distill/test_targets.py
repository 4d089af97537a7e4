"""What a grounded teacher answer trains as, and the order a long teacher run asks in."""

from distill.targets import as_shown
from distill.teach import interleaved

PASSAGES = ["# Recover password\n\nOpen Settings, choose Security and press Reset password; a link is emailed to you.",
            "# Shipping\n\nAn address can be changed until the order ships: open Orders, pick the order, edit the address."]


def test_a_grounded_answer_that_cites_nothing_trains_with_the_marks_the_assistant_would_add():
    ex = {"task": "reply", "meta": {"passage_texts": PASSAGES}}
    answer = ("Hello! To change the address, open Orders, pick the order and edit the address before it ships. "
              "Have a nice day!")
    shown = as_shown(ex, answer)
    assert "edit the address before it ships [2]." in shown and "nice day!" in shown and "[1]" not in shown
    assert as_shown({**ex, "task": "ask"}, "Open Settings and press Reset password [1]. See also [7].") == \
        "Open Settings and press Reset password [1]. See also."  # a mark that points at no passage goes
    assert as_shown({"task": "reply", "meta": {}}, answer) == answer  # no passages: as written
    # a mark the passage does not back: the marks are made again from the words
    wrong = "Open Settings, choose Security and press Reset password [2]."
    assert as_shown({**ex, "task": "ask"}, wrong) == "Open Settings, choose Security and press Reset password [1]."

    # one mark its passage does not back goes alone; the backed one stays, an unmarked sentence gets its own
    mixed = ("Press Reset password [1]. Thanks for waiting [1]. "
             "Open Orders, pick the order and edit the address until the order ships.")
    assert as_shown({**ex, "task": "ask"}, mixed) == ("Press Reset password [1]. Thanks for waiting. Open Orders, pick the order and edit the "
                                                      "address until the order ships [2].")
    # an index in code is not a citation: kept, and the marks after it stand
    code = "Open Settings and press Reset password, then read links[0] from the email. [1]"
    assert as_shown({**ex, "task": "ask"}, code) == "Open Settings and press Reset password, then read links[0] from the email [1]."

    # a reply the teacher was told no excerpt covers cites nothing, even where words overlap
    from distill.data import UNCOVERED_REPLY_HINT

    told = {**ex, "teacher_messages": [{"role": "user", "content": f"Q\n\n{UNCOVERED_REPLY_HINT}"}]}
    overlap = "Open Orders, pick the order and edit the address until the order ships [2]. The team will check."
    assert as_shown(told, overlap) == "Open Orders, pick the order and edit the address until the order ships. The team will check."


def test_the_teacher_is_asked_the_hinted_prompt_and_its_answer_is_keyed_by_it():
    from distill.teach import asked, fits, prompt_key

    ex = {"id": "q", "messages": [{"role": "user", "content": "Q"}]}
    hinted = {**ex, "teacher_messages": [{"role": "user", "content": "Q\n\nPassage [1] holds the answer."}]}
    assert asked(ex) == ex["messages"] and asked(hinted) == hinted["teacher_messages"]
    rec = {"id": "q", "key": prompt_key(asked(hinted))}
    assert fits(rec, hinted) and not fits(rec, ex)  # an answer to the unhinted prompt is not one to the hinted


def test_a_long_teacher_run_asks_each_task_and_kb_in_turn():
    exs = [{"id": f"a{i}", "task": "ask", "meta": {"kb": "demo"}} for i in range(3)] + \
          [{"id": f"s{i}", "task": "ask", "meta": {"kb": "stackfaq"}} for i in range(2)] + \
          [{"id": f"r{i}", "task": "reply", "meta": {"kb": "demo"}} for i in range(2)] + [{"id": "x", "task": "summarize-line"}]
    assert [e["id"] for e in interleaved(exs)] == ["a0", "s0", "r0", "x", "a1", "s1", "r1", "a2"]


def teacher_pairs(tmp_path, exs: list[dict], outputs: list[str]) -> list[tuple[str, str]]:
    """The (id, target) pairs that pairs() trains on, from a run holding `exs` and the teacher's `outputs`
    to their prompts."""
    import json

    from distill.config import load_config
    from distill.layout import examples_path, teacher_file
    from distill.targets import pairs
    from distill.teach import asked, prompt_key

    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('name = "g"\ntask = "reply"\n')
    cfg = load_config(cfg_path)
    for f, rows in ((examples_path(cfg), exs), (teacher_file(cfg), [
            {"id": e["id"], "task": e["task"], "output": o, "ok": True, "key": prompt_key(asked(e))}
            for e, o in zip(exs, outputs)])):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [(ex["id"], target) for ex, target, _ in pairs(cfg)[0]]


def test_a_hinted_question_the_teacher_still_calls_uncovered_or_only_restates_is_not_trained_on(tmp_path):
    msgs = [{"role": "user", "content": "<<<SOURCES ... SOURCES>>>\n\nQuestion: I have submitted a wrong delivery address"}]
    exs = [{"id": f"q{i}", "source": "grounded", "task": "ask", "split": "train", "messages": msgs, "use": "teacher",
            "weight": 1.0, "reference": "", "meta": {"passage_texts": PASSAGES},
            "teacher_messages": [{"role": "user", "content": "Q\n\nPassage [2] holds the answer."}]} for i in range(3)]
    exs.append({**exs[0], "id": "q3"})
    del exs[-1]["teacher_messages"]  # not hinted (its source was not retrieved): saying so is right
    outputs = ["The passages do not cover this.", "Open Orders, pick the order and edit the address [2].",
               "The customer has submitted a wrong delivery address. [2]",  # the question again, with a mark
               "The passages do not cover this."]
    assert teacher_pairs(tmp_path, exs, outputs) == [("q1", outputs[1]), ("q3", outputs[3])]


def test_an_answer_echoes_its_question_when_it_adds_almost_no_words_of_its_own():
    from distill.targets import echoes

    prompt = "<<<SOURCES\n[1] Refunds are paid to the card in five days.\nSOURCES>>>\n\nQuestion: refunding$299"
    assert echoes("The customer wants to refund $299. [2]", prompt)
    assert echoes("For refunding, you can follow the guidance provided in [1].", prompt)
    assert not echoes("Refunds are paid to the original card within five business days of the return [1].", prompt)
    assert echoes("The passages do not cover this.", prompt)  # as it says: so pairs() asks abstains() first


def test_train_abstain_weight_thins_out_answers_saying_the_passages_do_not_cover_it(tmp_path):
    import json

    from distill.config import load_config
    from distill.layout import examples_path
    from distill.targets import pairs

    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('name = "g"\ntask = "reply"\n')
    msgs = [{"role": "user", "content": "<<<SOURCES ... SOURCES>>>\n\nQuestion: how do I reset my password?"}]
    base = {"source": "grounded", "task": "ask", "split": "train", "messages": msgs, "use": "reference",
            "weight": 2.0, "meta": {"passage_texts": PASSAGES}}
    exs = [{**base, "id": f"no{i}", "reference": "The passages do not cover this."} for i in range(50)]
    exs += [{**base, "id": f"yes{i}", "reference": "Open Settings, choose Security and press Reset password [1]."}
            for i in range(50)]
    f = examples_path(load_config(cfg_path))
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in exs))

    def counts(*overrides):
        train, _ = pairs(load_config(cfg_path, overrides))
        said = [ex["id"].startswith("no") for ex, _, _ in train]
        return sum(said), len(said) - sum(said)

    assert counts() == (100, 100)  # the source's weight, 2.0, for both
    thinned, answered = counts("train.abstain_weight=0.25")
    assert answered == 100 and 12 <= thinned <= 38  # 0.5 copies each: one copy or none, drawn per id
    assert counts("train.abstain_weight=0") == (0, 100)


def test_a_grounded_reply_that_hands_the_customer_the_agents_bracketed_actions_is_not_trained_on(tmp_path):
    from distill.targets import pastes_actions

    guideline = "1. Get Full Name or Account ID for [Pull up Account]\n2. Enter 'manager' into [Notify Internal Team]"
    assert pastes_actions("First, get your full name for [Pull up Account].", [guideline])
    assert not pastes_actions("Could you send me your full name and order ID? [1]\n\nBest regards,\n[Your Name]", [guideline])
    msgs = [{"role": "user", "content": "<<<SOURCES ... SOURCES>>>\n\nWhere is my refund?"}]
    exs = [{"id": f"r{i}", "source": "grounded", "task": "reply", "split": "train", "messages": msgs, "use": "teacher",
            "weight": 1.0, "reference": "", "meta": {"passage_texts": [guideline]}} for i in range(2)]
    outputs = ["Hello! 1. Get Full Name or Account ID for [Pull up Account]\n2. Enter 'manager' into [Notify Internal Team]",
               "Hello! Could you send me your full name or account ID, so that I can look up your refund? [1]"]
    assert [i for i, _ in teacher_pairs(tmp_path, exs, outputs)] == ["r1"]


def test_shuffle_passages_moves_the_answering_passage_and_renumbers_the_marks_to_follow_it(tmp_path):
    """Retrieval puts the answering passage first for most questions, and the student learned to cite [1]: with
    train.shuffle_passages, a share of the copies of a citing answer train with the passages in another order,
    the prompt built again as `assistant ask` builds it, each mark still naming the passage that backs its sentence."""
    import json

    from assistant import tasks
    from assistant.tasks.ask import NOT_COVERED, cited_sentences, supported
    from distill.config import load_config
    from distill.layout import examples_path
    from distill.targets import pairs

    passages = PASSAGES + ["# Gift cards\n\nGift cards cannot be refunded or exchanged for cash at any store."]
    question = "How do I reset my password and change my address?"
    answer = ("Open Settings, choose Security and press Reset password [1]. "
              "Open Orders, pick the order and edit the address until the order ships [2].")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text('name = "g"\ntask = "reply"\n')
    meta = {"question": question, "passage_texts": passages, "passages": ["pw.md", "ship.md", "gift.md"]}
    base = {"source": "grounded", "task": "ask", "split": "train", "use": "reference", "weight": 2.0, "meta": meta,
            "messages": tasks.task("ask").prompt(question, passages).messages}
    exs = [{**base, "id": f"q{i}", "reference": answer} for i in range(40)] + \
          [{**base, "id": "none", "reference": NOT_COVERED}]
    f = examples_path(load_config(cfg_path))
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in exs))

    plain, _ = pairs(load_config(cfg_path))
    assert len(plain) == 82 and all(t == ex["reference"] for ex, t, _ in plain)
    mixed, _ = pairs(load_config(cfg_path, ["train.shuffle_passages=0.5"]))
    moved = [(ex, t) for ex, t, _ in mixed if ex["id"].endswith(":reordered")]
    assert len(mixed) == 82 and 20 <= len(moved) <= 60  # copies, not extra ones; the abstention never moves
    assert not any(ex["id"].startswith("none:") for ex, _ in moved)
    for ex, target in moved:
        texts = ex["meta"]["passage_texts"]
        assert sorted(texts) == sorted(passages) and texts != passages
        assert [p for p in ex["meta"]["passages"]] == [meta["passages"][passages.index(t)] for t in texts]
        assert ex["messages"] == tasks.task("ask").prompt(question, texts).messages
        marks = cited_sentences(target)
        assert len(marks) == 2 and all(supported(s, texts[n - 1]) for s, n in marks)
    assert {n for ex, t in moved for _, n in cited_sentences(t)} - {1, 2}  # the sources land elsewhere too
