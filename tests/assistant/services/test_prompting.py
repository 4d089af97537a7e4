"""Prompts fitted to the model's context: a long input is cut, never skipped, and the cut prompt fits."""

from __future__ import annotations

import pytest

from assistant import tasks
from assistant.engine.models import PromptTooLong
from assistant.services.prompting import fit, message_from_text


def test_a_long_email_is_cut_until_its_prompt_fits_the_real_models_context():
    from assistant import paths
    from assistant.engine.models import LlamaCppModel

    model = LlamaCppModel("small-context", paths.base_model_path(), n_ctx=768)  # the real 135M, a short context
    t = tasks.task("reply")
    sentence = "The replacement router from order 5521 still drops the connection every evening. "
    text = sentence * 400  # the task keeps 3,000 characters, about 650 tokens: with the answer's 400, too long
    assert model.count_tokens(model.prompt_text(t.prompt(text).messages)) + t.max_tokens > model.n_ctx  # too long as it is
    prompt = fit(model, text, lambda x: t.prompt(x), t.max_tokens)
    n = model.count_tokens(model.prompt_text(prompt.messages))
    assert n + t.max_tokens <= model.n_ctx
    assert sentence.strip() in prompt.messages[-1]["content"]  # cut, not dropped


class _Tiny:
    """A model whose context holds almost nothing: counting words stands in for tokens."""

    name, n_ctx = "tiny", 40

    def prompt_text(self, messages):
        return " ".join(m["content"] for m in messages)

    def count_tokens(self, text):
        return len(text.split())


def test_a_prompt_that_cannot_fit_says_so():
    t = tasks.task("summarize-short")
    with pytest.raises(PromptTooLong):
        fit(_Tiny(), "word " * 500, lambda x: t.prompt(x), t.max_tokens)


def test_text_without_headers_is_one_message_and_mail_is_parsed():
    plain = message_from_text(b"My parcel never arrived.")
    assert plain.body == "My parcel never arrived." and plain.message_id == ""
    mail = message_from_text(b"From: a@example.org\nSubject: Parcel\nMessage-ID: <p1@example.org>\n\nIt never arrived.\n")
    assert mail.subject == "Parcel" and mail.body.strip() == "It never arrived." and mail.message_id == "<p1@example.org>"
