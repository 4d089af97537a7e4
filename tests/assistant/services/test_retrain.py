"""`assistant retrain` end to end on a handful of edited drafts (real 135M, a few steps)."""

import json

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.services import models as registry
from assistant.services import store
from assistant.cli import cli

DRAFTS = [
    ("My order hasn't arrived after two weeks.", "Sorry about that.",
     "Hello, I'm sorry your order is late. Please send me your order number and I will check the shipment status today. Best regards, Support"),
    ("I was charged twice for one purchase.", "Ok.",
     "Hello, I'm sorry about the double charge. Please send me the date and amount of both charges and I will refund the duplicate. Best regards, Support"),
    ("How do I reset my password?", "Click reset.",
     "Hello, thanks for asking. Click 'Forgot password' on the sign-in page and follow the link we email you. Best regards, Support"),
    ("The app crashes when I open settings.", "Reinstall.",
     "Hello, I'm sorry the app crashes. Please tell me your phone model and app version so we can look into it. Best regards, Support"),
    ("Can I change my delivery address?", "No.",
     "Hello, yes: if the order has not shipped yet, send me the new address and I will update it. Best regards, Support"),
    ("I want to cancel my subscription.", "Fine.",
     "Hello, I'm sorry to see you go. You can cancel under Account > Subscription, or I can do it for you. Best regards, Support"),
]


def _keep_drafts():
    db = store.connect()
    for text, draft, final in DRAFTS:
        store.add_feedback(db, task="reply", model="smollm2-135m", source="test", input=text, draft=draft, final=final)


def test_the_comparison_scores_the_users_edits_not_closeness_to_the_draft():
    from assistant.services.retrain import edit_score

    draft = "Hello, I'm sorry your order is late. Please send me your order number. Best regards, Support"
    final = draft.replace("number.", "number and I will check the shipment today.")
    assert edit_score(draft, draft, final) == 0.0  # the current model's own text: it made none of the edits
    assert edit_score(final, draft, final) == 1.0
    partial = draft.replace("number.", "number and I will check it.")
    assert 0.0 < edit_score(partial, draft, final) < 1.0
    assert edit_score("anything", draft, draft) == 1.0  # nothing was changed: nothing to hold against anyone


def test_retrain_starts_from_the_current_student_and_answering_no_leaves_nothing():
    from assistant.services import retrain as rt

    _keep_drafts()
    p = rt.plan("reply", 4)
    current = registry.all_models()[registry.default_for("reply")]
    assert current.lora_path and f'init = "{current.lora_path}"' in p.config.read_text()
    rt.discard(p)
    r = CliRunner().invoke(cli, ["retrain", "reply", "--steps", "4"], input="n\n")
    assert r.exit_code == 0
    assert not list((paths.data_dir() / "runs").glob("support-retrained-*"))


@pytest.mark.slow
def test_retrain_on_edited_drafts():
    _keep_drafts()
    before = registry.default_for("reply")
    r = CliRunner().invoke(cli, ["retrain", "reply", "--steps", "4", "--json", "-y"])
    assert r.exit_code == 0, r.output
    events = [json.loads(l) for l in r.output.splitlines() if l.startswith("{")]
    result = next(e for e in events if e.get("event") == "result")
    assert any(e.get("event") == "step" for e in events)
    assert result["items"] >= 1 and result["previous"] == before
    assert result["switched"] == (result["new_edit_score"] > result["previous_edit_score"])
    assert registry.default_for("reply") == (result["new"] if result["switched"] else before)
    run_dir = paths.data_dir() / "runs" / result["new"]
    if result["switched"]:
        meta = json.loads((run_dir / "train" / "meta.json").read_text())
        assert meta["lora_r"] == 16 and meta["preference_pairs"] >= 1
    else:  # a losing student does not clutter `models list`
        assert result["new"] not in registry.all_models() and not run_dir.exists()
