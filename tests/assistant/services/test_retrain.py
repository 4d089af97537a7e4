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


@pytest.mark.slow
def test_retrain_on_edited_drafts():
    db = store.connect()
    for text, draft, final in DRAFTS:
        store.add_feedback(db, task="reply", model="smollm2-135m", source="test", input=text, draft=draft, final=final)
    before = registry.default_for("reply")
    r = CliRunner().invoke(cli, ["retrain", "reply", "--steps", "4", "--json", "-y"])
    assert r.exit_code == 0, r.output
    events = [json.loads(l) for l in r.output.splitlines() if l.startswith("{")]
    result = next(e for e in events if e.get("event") == "result")
    assert any(e.get("event") == "step" for e in events)
    assert result["items"] >= 1 and result["previous"] == before
    assert result["new"] in registry.all_models()
    assert registry.default_for("reply") == (result["new"] if result["switched"] else before)
    assert result["switched"] == (result["new_rougeL"] > result["previous_rougeL"])
    # it started from the current default (the shipped support student), which is also DPO's reference
    meta = json.loads((paths.data_dir() / "runs" / result["new"] / "train" / "meta.json").read_text())
    assert registry.all_models()[before].lora_path and meta["config"]["train"]["init"] == registry.all_models()[before].lora_path
    assert meta["lora_r"] == 16 and meta["preference_pairs"] >= 1
