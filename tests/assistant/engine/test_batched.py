"""The multi-sequence generator: llama-cpp-python's sampler chain re-done per sequence, parity of batched
greedy answers with one-at-a-time ones on real emails (the shipped 135M summarize student), lazy
requests, and the errors of one job staying its own."""

from __future__ import annotations

import json
import os
from itertools import islice

import numpy as np
import pytest

from assistant import tasks
from assistant.engine.batched import REPEAT_PENALTY, BatchedGenerator, Request
from assistant.engine.sampling import Sampling, pick
from assistant.engine.models import PromptTooLong, complete
from tests.conftest import SHARED

DEV = SHARED / "aeslc" / "dev.jsonl"


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """The summarize student as the assistant runs it (merged into its base on first use), loaded once."""
    from assistant.services import models

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
        model = models.resolve(None, "summarize")
        model.load()
    return model


def _emails(n: int, skip: int = 0) -> list[tasks.Email]:
    if not DEV.exists():
        pytest.skip("../shared/data is not beside the project")
    with open(DEV) as f:
        return [tasks.Email(r["email_body"], r["subject"]) for r in map(json.loads, islice(f, skip, skip + n))]


def _prompt(model, email: tasks.Email | str, length: str) -> list[dict]:
    t = tasks.for_summary(length)
    email = tasks.Email(email) if isinstance(email, str) else email
    return t.prompt(t.text(email), model.prompt_version).messages


def _logits(llm) -> np.ndarray:
    import llama_cpp

    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),)).copy()


def test_the_penalty_changes_only_seen_tokens_and_sampling_keeps_the_nucleus():
    logits = np.array([4.0, -2.0, 3.9, 1.1, 0.5])
    assert pick(logits.copy(), [], 0.0, Sampling(repeat_penalty=1.05), None) == 0
    penalized = logits.copy()
    assert pick(penalized, [0, 1, 0], 0.0, Sampling(repeat_penalty=1.05), None) == 2  # 4.0 / 1.05 < 3.9
    assert penalized[0] == pytest.approx(4.0 / 1.05) and penalized[1] == pytest.approx(-2.0 * 1.05)
    assert list(penalized[2:]) == [3.9, 1.1, 0.5]
    rng = np.random.default_rng(0)
    # min_p 0.05 drops a token under 5% of the best one's probability; top_k 2 keeps the two best
    draws = {pick(logits.copy(), [], 1.0, Sampling(top_k=2), rng) for _ in range(200)}
    assert draws == {0, 2}
    draws = {pick(logits.copy(), [], 1.0, Sampling(top_k=5, top_p=1.0, min_p=0.05), rng) for _ in range(400)}
    assert draws == {0, 2, 3}  # e^(1.1-4) = 5.5% of the best: kept; e^(0.5-4) = 3.0%: dropped


def test_the_picker_is_llama_generates_chain_token_for_token(student):
    """Llama.generate's repeat penalty looks back over the last 64 *generated* tokens (not the prompt):
    fed the same logits (one context, the prompt then one token at a time, as generate feeds it), pick()
    with that window gives the very tokens generate gave; a window with the prompt in it does not. (A window
    of the whole answer differs only after 64 tokens, where whether it changes a pick depends on the CPU's
    rounding: on one Xeon it did in one answer of these two, on an EPYC in neither, so it is not asserted.)"""
    llm = student.load()
    windows = {"generated, last 64": lambda p, g: g[-64:], "prompt and generated, last 64": lambda p, g: (p + g)[-64:]}
    agree = dict.fromkeys(windows, 0)
    for body in _emails(4)[1::2]:
        toks = student.tokens(_prompt(student, body, "long"))
        llm.reset()
        want = []
        for tok in llm.generate(toks, temp=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=REPEAT_PENALTY):
            if tok in student._end or len(want) == 200:
                break
            want.append(tok)
        for name, window in windows.items():
            llm.reset()
            llm.eval(toks)
            got = []
            while len(got) < len(want):
                got.append(pick(_logits(llm), window(toks, got), 0.0, Sampling(repeat_penalty=REPEAT_PENALTY), None))
                if got[-1] != want[len(got) - 1]:
                    break
                llm.eval([got[-1]])
            agree[name] += got == want
    assert agree == {"generated, last 64": 2, "prompt and generated, last 64": 0}


@pytest.mark.parametrize("length", ["line", "short"])
def test_batched_greedy_answers_are_the_one_at_a_time_ones_but_for_near_ties(student, length):
    """Greedy summaries of real emails decoded together (as generate_many decodes them) equal Llama.generate's,
    one after another, token for token, except where a near tie goes the other way: llama.cpp's CPU kernels
    round a row differently by its place in a batch. So: at the first token where the two differ, a fresh
    evaluation of the prompt and the shared start puts the two choices within 1 logit (measured: up to 0.34
    on these emails, on AMD EPYC without AVX-512; a row read from another sequence's cells would be many
    logits off). Compared as token ids: a text re-tokenized need not split where the model did."""
    from assistant.engine.models import trim_history

    llm = student.load()
    t = tasks.for_summary(length)
    prompts = [student.tokens(trim_history(student, _prompt(student, email, length), t.max_tokens)) for email in _emails(8)]
    one = []
    for p in prompts:
        out = []
        for tok in llm.generate(p, temp=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=REPEAT_PENALTY, reset=True):
            if tok in student._end or len(out) == t.max_tokens:
                break
            out.append(tok)
        one.append(out)
    with BatchedGenerator(llm, 16, student.n_ctx, 2, n_ctx=max(2 * student.n_ctx, 16 * 384), end=student._end) as gen:
        many = dict(gen.run([Request(p, t.max_tokens) for p in prompts], Sampling(repeat_penalty=REPEAT_PENALTY)))
    assert sorted(many) == list(range(len(prompts)))
    assert sum(one[i] == many[i] for i in range(len(prompts))) >= 1
    for i in (i for i in range(len(prompts)) if one[i] != many[i]):
        a, b = one[i], many[i]
        d = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), None)
        if d is None:
            continue  # one ended where the other went on (a near tie with the end token)
        llm.reset()
        llm.eval(prompts[i] + a[:d])
        logits = _logits(llm)
        pick(logits, a[:d][-64:], 0.0, Sampling(repeat_penalty=REPEAT_PENALTY), None)  # penalized in place
        assert abs(logits[a[d]] - logits[b[d]]) < 1.0, (i, d, llm.detokenize(a).decode(), llm.detokenize(b).decode())


def test_a_prompt_too_long_fails_alone(student):
    jobs = [dict(messages=_prompt(student, "Lunch moved to noon.", "line"), max_tokens=24),
            dict(messages=[{"role": "user", "content": "word " * 3000}], max_tokens=24),
            dict(messages=_prompt(student, "The server is down until Monday.", "line"), max_tokens=24)]
    out = dict(student.generate_many(jobs))
    assert isinstance(out[1], PromptTooLong) and isinstance(out[0], str) and isinstance(out[2], str) and out[2]


def test_samples_of_one_prompt_share_its_evaluation_and_their_common_start(student):
    """A greedy line and 8 sampled ones of the same prompt: the prompt is evaluated once for all nine, and
    a step decodes one row per distinct continuation (sequences that have read the same tokens share a
    row and its KV cell), so fewer rows than tokens generated."""
    llm = student.load()
    p = student.tokens(_prompt(student, _emails(1, skip=20)[0], "line"))
    requests = [Request(p, 24)] + [Request(p, 24, temperature=0.7, seed=k) for k in range(1, 9)]
    rows = []
    with BatchedGenerator(llm, n_seq=9, n_ctx_per_seq=2048, n_threads=2, n_ctx=4096, end=student._end) as gen:
        decode = gen._decode
        gen._decode = lambda entries: rows.append(len(entries)) or decode(entries)
        got = dict(gen.run(requests, Sampling(repeat_penalty=REPEAT_PENALTY)))
    assert sorted(got) == list(range(9)) and gen.prompt_tokens <= len(p) + 1  # once (and its last token again)
    generated = sum(len(t) + (len(t) < 24) for t in got.values())  # each answer's tokens and its end token
    assert sum(rows) - len(p) < generated
    assert len({tuple(t) for t in got.values()}) > 1  # the samples differ


def test_a_prompt_that_fits_the_context_alone_runs_after_a_prefix_it_does_not_share(student):
    """The first requests' common prefix holds cells of its own. A later prompt that starts otherwise, as
    long as the context allows with its answer, could not fit beside those cells: once no sequence reads
    the prefix, its cells are freed for it (llama_decode failed with "context full" before)."""
    llm = student.load()
    a = student.tokens(_prompt(student, _emails(1, skip=30)[0], "line"))
    text = " ".join(e.body for e in _emails(40, skip=40))
    b = llm.tokenize(("Notes. " + text).encode(), add_bos=False)[: 1024 - 8]
    assert a[0] != b[0] and len(a) > 40
    requests = [Request(a, 8), Request(a, 8), Request(b, 8)]
    with BatchedGenerator(llm, n_seq=2, n_ctx_per_seq=1024, n_threads=2, n_ctx=1024, end=student._end) as gen:
        got = dict(gen.run(requests))
    assert sorted(got) == [0, 1, 2] and got[0] == got[1] and got[2]
