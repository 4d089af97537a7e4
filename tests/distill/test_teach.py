"""`distill teach`: the filters on teacher answers, kill and rerun, committed chunks, the lock, batched decoding."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from distill import data as data_stage
from distill.config import load_config
from distill.teach import load_done, reject_reason
from tests.distill.helpers import write_config


def test_teacher_filters():
    assert reject_reason("summarize-line", "") == "empty"
    assert reject_reason("reply", "I'm sorry, but I can't help with that.") == "refusal"
    assert reject_reason("reply", "Hello! I'm sorry, but I can't assist with that.") == "refusal"
    assert reject_reason("reply", "Hello! I'm sorry to hear that your order is late. I will check where it is now.") is None
    assert reject_reason("summarize-line", "one two three\nfour") .startswith("off-format")
    assert reject_reason("reply", " ".join(["the same words again"] * 10)) == "looping"
    assert reject_reason("summarize-line", "Budget meeting moved to Thursday") is None


@pytest.mark.slow
def test_teach_kill_and_rerun_loses_and_duplicates_nothing(tmp_path, shared):
    """The 135M GGUF stands in as the teacher: greedy answers make the two runs comparable."""
    from assistant import paths

    def cfg_for(d):
        d.mkdir()
        c = write_config(d, shared, extra="")
        text = c.read_text().replace('limit = 40', 'limit = 6\ntarget = "teacher"')
        # one prompt at a time: batched greedy answers part at near ties by what they share a batch with, and
        # the rerun after the kill batches fewer prompts together than the run without one (this test failed so)
        c.write_text(text + f'\n[teach]\nteacher = "{paths.base_model_path()}"\nn_ctx = 1024\nbatch = 1\n')
        data_stage.run(load_config(c))
        return c

    ca, cb = cfg_for(tmp_path / "a"), cfg_for(tmp_path / "b")
    cmd = lambda c: [sys.executable, "-m", "distill.cli", "teach", str(c)]
    subprocess.run(cmd(ca), check=True, capture_output=True)
    out_b = tmp_path / "b" / "run" / "teach" / "teacher.jsonl"
    proc = subprocess.Popen(cmd(cb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out_b.exists() and len(out_b.read_text().splitlines()) >= 2):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(out_b, "a") as f:
        f.write('{"id": "torn')  # what a kill in the middle of a write leaves behind
    subprocess.run(cmd(cb), check=True, capture_output=True)
    a = load_done(tmp_path / "a" / "run" / "teach" / "teacher.jsonl")
    lines = out_b.read_text().splitlines()
    b = load_done(out_b)
    assert len(lines) == len(b) == len(a) == 6
    assert {k: v["output"] for k, v in a.items()} == {k: v["output"] for k, v in b.items()}


def test_teacher_chunks_hold_each_answer_once_across_kills(tmp_path):
    """Finished answers go into numbered chunks of fixed size; a rerun (as after a kill) adds only what no
    chunk holds, the shipped file's answers are never copied, and the chunks read back as pregenerated."""
    from distill.teach import chunk_files, read_pregenerated, write_chunks

    out, folder = tmp_path / "teacher.jsonl", tmp_path / "chunks"
    recs = [{"id": f"e{i}", "task": "summarize-short", "output": f"answer {i}", "ok": True} for i in range(7)]
    out.write_text("".join(json.dumps(r) + "\n" for r in recs[:5]) + '{"id": "torn')
    assert write_chunks(out, folder, 2, skip=frozenset({("e0", None)})) == 2  # e1..e4; e0 was shipped elsewhere
    assert write_chunks(out, folder, 2) == 0  # nothing new: no empty or repeated chunk
    with open(out, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs[5:])
    assert write_chunks(out, folder, 2, final=True, skip=frozenset({("e0", None)})) == 1
    assert [p.name for p in chunk_files(folder)] == ["teacher-0001.jsonl.gz", "teacher-0002.jsonl.gz", "teacher-0003.jsonl.gz"]
    ids = [r["id"] for r in read_pregenerated([folder / "teacher-*.jsonl.gz"])]
    assert ids == ["e1", "e2", "e3", "e4", "e5", "e6"]


def test_a_second_teach_on_the_same_run_is_refused(tmp_path):
    from distill.teach import RunLocked, lock

    held = lock(tmp_path / ".lock")
    with pytest.raises(RunLocked, match="in use"):
        lock(tmp_path / ".lock")
    held.close()
    lock(tmp_path / ".lock").close()


@pytest.mark.slow
def test_continuous_batching_gives_the_greedy_answers():
    """Five prompts through two slots: answers end at different steps and later prompts take the
    freed slot mid-batch. Re-read alone, every token of every answer must be the model's top
    choice at its position. Batched kernels add rounding of a few tenths of a logit (so the
    text may differ from one-at-a-time after a near tie); a sequence reading another one's
    cache or the wrong positions would pick tokens many logits below the top."""
    import llama_cpp

    from assistant.engine.batched import BatchedGenerator
    from distill.student import resolve_base

    llm = llama_cpp.Llama(str(resolve_base("smollm2-135m")), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    head = "<|im_start|>system\nYou write short subject lines.<|im_end|>\n<|im_start|>user\n"
    asks = ["Lunch moved to noon on Friday.", "The server is down until Monday morning, sorry.",
            "Please send the Q3 budget by Tuesday.", "Welcome to the team, Ana!", "Invoice 42 is overdue."]
    prompts = [llm.tokenize((head + a + "<|im_end|>\n<|im_start|>assistant\n").encode(), special=True) for a in asks]
    gen = BatchedGenerator(llm, n_seq=2, n_ctx_per_seq=256, n_threads=2)
    got = dict(gen.stream(prompts, max_tokens=24))
    gen.close()
    assert sorted(got) == list(range(5)) and len({len(t) for t in got.values()}) > 1
    for i, p in enumerate(prompts):
        llm.reset()
        llm.eval(p + got[i])
        scores = llm.scores[len(p) - 1 : len(p) - 1 + len(got[i])]
        assert max((float(s.max() - s[t]) for s, t in zip(scores, got[i])), default=0.0) < 1.0, asks[i]


def test_sampled_batches_reuse_a_repeated_prompt_and_stay_in_the_nucleus():
    """Two prompts, four samples each, through three slots: the repeated prompt's samples copy
    the KV cells of the slot that evaluated it. Each sampled token, re-read alone, must lie in
    that position's nucleus (within 1 logit for batched rounding); a slot reading the wrong
    cells would sample tokens far outside it. Same seed, same samples; samples differ."""
    import llama_cpp
    import numpy as np

    from assistant.engine.batched import BatchedGenerator
    from distill.student import resolve_base

    llm = llama_cpp.Llama(str(resolve_base("smollm2-135m")), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    head = "<|im_start|>system\nYou write short subject lines.<|im_end|>\n<|im_start|>user\n"
    asks = ["The quarterly review meeting moved from Tuesday to Thursday at 3pm in room 4.",
            "Your refund for order 1182 was approved and will arrive within five business days."]
    prompts = [llm.tokenize((head + a + "<|im_end|>\n<|im_start|>assistant\n").encode(), special=True)
               for a in asks for _ in range(4)]
    gen = BatchedGenerator(llm, n_seq=3, n_ctx_per_seq=256, n_threads=2)
    got = dict(gen.stream(prompts, max_tokens=12, temperature=1.0, top_p=0.9, seed=7))
    again = dict(gen.stream(prompts, max_tokens=12, temperature=1.0, top_p=0.9, seed=7))
    gen.close()
    assert got == again and sorted(got) == list(range(8))
    assert len({tuple(got[i]) for i in range(4)}) > 1 and len({tuple(got[i]) for i in range(4, 8)}) > 1
    for i, p in enumerate(prompts):
        llm.reset()
        llm.eval(p + got[i])
        for s, t in zip(llm.scores[len(p) - 1 : len(p) - 1 + len(got[i])], got[i]):
            probs = np.exp(s - s.max())
            probs /= probs.sum()
            order = np.argsort(-s)
            nucleus = order[: int(np.searchsorted(np.cumsum(probs[order]), 0.9)) + 1]
            assert s[t] >= s[nucleus].min() - 1.0, (i, t)


class CountingTeacher:
    """Answers each prompt with its own ordinal number, so a test sees which prompts were asked again."""
    name = "counting"

    def __init__(self):
        self.asked = []

    def generate(self, messages, max_tokens, seed=0):
        self.asked.append(messages[-1]["content"])
        return f"Answer number {len(self.asked)} to this email."


def test_a_changed_prompt_under_the_same_id_is_asked_anew_and_chunked_again(tmp_path, shared, monkeypatch):
    """Answers are kept with a hash of their prompt: after an example's prompt changes, rerunning asks the
    teacher that one prompt again (not the others), the new answer goes into a new chunk, and a fresh
    machine that has only the chunks gets the new answer, not the stale one."""
    from distill import teach
    from distill.layout import examples_path

    cfg_path = write_config(tmp_path, shared)
    text = cfg_path.read_text().replace("limit = 40", 'limit = 4\ntarget = "teacher"')
    cfg_path.write_text(text + f'\n[teach]\nchunk_dir = "{tmp_path / "chunks"}"\nchunk_size = 2\n')
    cfg = load_config(cfg_path)
    data_stage.run(cfg)
    teacher = CountingTeacher()
    monkeypatch.setattr(teach, "make_teacher", lambda tc: teacher)
    out = teach.run(cfg)
    assert len(teacher.asked) == len(load_done(out)) == 4

    teach.run(cfg)
    assert len(teacher.asked) == 4  # nothing changed: nothing asked

    path = examples_path(cfg)
    rows = [json.loads(l) for l in path.read_text().splitlines()]
    changed = next(r for r in rows if r["use"] == "teacher" and r["split"] == "train")
    changed["messages"][-1]["content"] += "\nP.S. The meeting moved to Friday."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    teach.run(cfg)
    assert teacher.asked[4:] == [changed["messages"][-1]["content"]]
    assert load_done(out)[changed["id"]]["output"] == "Answer number 5 to this email."

    out.unlink()  # a fresh machine: only the committed chunks are left
    teach.run(cfg)
    assert len(teacher.asked) == 5
    assert load_done(out)[changed["id"]]["output"] == "Answer number 5 to this email."

    changed["messages"][-1]["content"] = changed["messages"][-1]["content"].replace("\nP.S. The meeting moved to Friday.", "")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))  # back to the first prompt: its chunked answer
    teach.run(cfg)
    assert len(teacher.asked) == 5 and load_done(out)[changed["id"]]["output"] != "Answer number 5 to this email."


def test_the_batched_teacher_answers_in_the_order_given_window_by_window():
    """One slot, so answers end in the order they run: the first window of 4 prompts (4 x teach.batch) in token
    order, then the next; a sort of the whole list would have run the two "A" prompts first."""
    from distill.config import TeachConfig
    from distill.student import resolve_base
    from distill.teach import LocalTeacher

    teacher = LocalTeacher(resolve_base("smollm2-135m"), TeachConfig(batch=1, n_ctx=512))
    asks = ["Pick a colour.", "Name a fruit.", "Count to two.", "Say hi.", "A short word?", "A long word?"]
    done = [i for i, _ in teacher.generate_many([[{"role": "user", "content": a}] for a in asks], 4)]
    assert sorted(done[:4]) == [0, 1, 2, 3] and sorted(done[4:]) == [4, 5]
    first = [teacher.prompt_tokens([{"role": "user", "content": asks[i]}]) for i in range(4)]
    assert done[:4] == sorted(range(4), key=lambda i: first[i])


def test_teach_tasks_answers_one_task_first_and_a_later_run_the_rest(tmp_path, shared, monkeypatch):
    """`teach.tasks=ask` puts one task's prompts first (the grounded questions before the replies); a run
    without it answers the others and asks nothing twice."""
    from distill import teach
    from distill.data import read_examples
    from distill.layout import examples_path

    cfg_path = write_config(tmp_path, shared)
    train = f'path = "{shared / "aeslc" / "train.jsonl"}"'
    cfg_path.write_text(cfg_path.read_text().replace("limit = 40", 'limit = 3\ntarget = "teacher"').replace(
        train, f'{train}\nlimit = 3\ntarget = "teacher"\ntask = "summarize-short"\n[[data.sources]]\nkind = "aeslc"\n{train}', 1))
    cfg = load_config(cfg_path)
    data_stage.run(cfg)
    wanted = [e for e in read_examples(examples_path(cfg)) if e["use"] == "teacher" and e["split"] == "train"]
    tasks = sorted({e["task"] for e in wanted})
    assert len(tasks) > 1, tasks
    teacher = CountingTeacher()
    monkeypatch.setattr(teach, "make_teacher", lambda tc: teacher)
    out = teach.run(load_config(cfg_path, [f"teach.tasks={tasks[0]}"]))
    assert {r["task"] for r in load_done(out).values()} == {tasks[0]}
    first = len(teacher.asked)
    assert first == sum(e["task"] == tasks[0] for e in wanted)
    teach.run(cfg)
    assert len(teacher.asked) == len(load_done(out)) == len(wanted)
