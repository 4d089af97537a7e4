"""distill.threads: quote splitting on constructed bodies, and the committed thread corpus (data/threads/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.threads import (
    clean_body,
    clean_date,
    clean_sender,
    dedupe,
    enron_threads,
    make_thread,
    message_key,
    read_jsonl_gz,
    split_quoted,
    split_threads,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "threads"

ENRON_BODY = """Sounds good. I'll book the room for Thursday at 2.

Best,
Jeff

 -----Original Message-----
From: \tKaufman, Paul [mailto:paul.kaufman@enron.com]
Sent:\tMonday, September 24, 2001 2:08 PM
To:\tDasovich, Jeff;
\tMara, Susan
Subject:\tRE: Hearing prep

Thursday works for me. Can we meet in the afternoon?

 -----Original Message-----
From: \tDasovich, Jeff
Sent:\tMonday, September 24, 2001 12:04 PM
To:\tKaufman, Paul
Subject:\tHearing prep

Paul, when can we go over the testimony before the hearing?

**********************************************************************
This e-mail is the property of Enron Corp. and/or its relevant affiliate and may contain confidential
and privileged material for the sole use of the intended recipient (s).
**********************************************************************
"""

WROTE_BODY = """That fixes it here too, thanks.

On Tue, 16 Nov 2010 06:51:17 -0800, Anna Berg <anna@example.org> wrote:
> Try clearing the cache first; the old index was built with the wrong
> tokenizer.
>
> On Mon, Nov 15, 2010 at 10:02 PM, Bo Lind <bo@example.org> wrote:
>> Search returns nothing since the upgrade. Any idea?
"""


def test_split_original_message_chain():
    msgs = split_quoted(ENRON_BODY, "Dasovich, Jeff </O=ENRON/OU=NA/CN=RECIPIENTS/CN=JDASOVIC>",
                        "Mon, 24 Sep 2001 12:10:02 -0700 (PDT)", "RE: Hearing prep")
    assert len(msgs) == 3  # oldest first
    assert [clean_sender(m["sender"]) for m in msgs] == ["Jeff Dasovich", "Paul Kaufman", "Jeff Dasovich"]
    assert [clean_date(m["date"]) for m in msgs] == ["2001-09-24 12:04", "2001-09-24 14:08", "2001-09-24 12:10"]
    assert msgs[0]["subject"] == "Hearing prep"
    bodies = [clean_body(m["body"]) for m in msgs]
    assert bodies[0] == "Paul, when can we go over the testimony before the hearing?"  # disclaimer gone
    assert bodies[1] == "Thursday works for me. Can we meet in the afternoon?"
    assert bodies[2].startswith("Sounds good.") and "Original Message" not in bodies[2]
    assert not any("Mara, Susan" in b for b in bodies)  # the wrapped To: line belongs to the header


def test_split_on_wrote_lines_removes_one_quote_level_each():
    msgs = split_quoted(WROTE_BODY, "Carl <carl@example.org>", "Tue, 16 Nov 2010 09:00:00 -0800")
    assert [clean_sender(m["sender"]) for m in msgs] == ["Bo Lind", "Anna Berg", "Carl"]
    assert [clean_body(m["body"]) for m in msgs] == [
        "Search returns nothing since the upgrade. Any idea?",
        "Try clearing the cache first; the old index was built with the wrong\ntokenizer.",
        "That fixes it here too, thanks."]
    assert msgs[0]["date"].startswith("Mon, Nov 15, 2010 at 10:02 PM")


def test_a_body_without_markers_is_one_message():
    assert len(split_quoted("Just one message.\n\nThanks")) == 1


def test_lotus_notes_headers_and_forward_lines():
    body = ("Can you take this one?\n\n---------------------- Forwarded by Sally Beck/HOU/ECT on 05/17/2000 09:34 AM"
            " ---------------------------\n\n\nChris Abel\n05/10/2000 02:50 PM\nTo: Sally Beck/HOU/ECT@ECT\ncc: \n"
            "Subject: DPR 5/9/00\n\nThe DPR for today is final and posted.\n")
    msgs = split_quoted(body, "Sally Beck", "Wed, 17 May 2000 02:35:00 -0700 (PDT)")
    assert [clean_sender(m["sender"]) for m in msgs if clean_body(m["body"])] == ["Chris Abel", "Sally Beck"]
    assert clean_body(msgs[0]["body"]) == "The DPR for today is final and posted."


def test_enron_mbox_to_thread_and_dedupe():
    def mbox(mid, body, sender="Dasovich, Jeff </O=ENRON/OU=NA/CN=RECIPIENTS/CN=JDASOVIC>"):
        return (f"From MAILER-DAEMON Mon Apr 18 14:23:53 2022\nMessage-ID: <{mid}.JavaMail.evans@thyme>\n"
                "Date: Mon, 24 Sep 2001 12:10:02 -0700 (PDT)\nFrom: someone@enron.com\n"
                f"Subject: RE: Hearing prep\nX-From: {sender}\n\n{body}\n").encode()
    shorter = ENRON_BODY.split(" -----Original Message-----", 1)[1]
    shorter = "Thursday works for me. Can we meet in the afternoon?\n\n -----Original Message-----" + \
        shorter.split(" -----Original Message-----", 1)[1]
    data = mbox("1", ENRON_BODY) + mbox("2", shorter, "Kaufman, Paul")
    threads = list(enron_threads(data, "enron.dasovich-j.sent_items"))
    assert [len(t["messages"]) for t in threads] == [3, 2]
    assert threads[0]["subject"] == "Hearing prep" and threads[0]["id"].startswith("enron:")
    kept, dropped = dedupe(threads)
    assert dropped == 1 and [len(t["messages"]) for t in kept] == [3]


def test_split_keeps_threads_that_share_a_message_together():
    msg = lambda body: {"sender": "A", "date": "", "body": body}
    shared = msg("The budget review moved to Friday at ten in room 4B, please confirm.")
    threads = [make_thread("t", f"k{i}", "s", [msg(f"Opening message number {i} about topic {i}, long enough."),
                                                 shared]) for i in range(40)]
    train, dev = split_threads(threads, dev_percent=50)
    assert len(train) + len(dev) == 40 and (not train or not dev)  # one group: all on one side


def corpus():
    train, dev = CORPUS / "train.jsonl.gz", CORPUS / "dev.jsonl.gz"
    if not train.exists():
        pytest.skip("data/threads/ not built")
    return read_jsonl_gz(train), read_jsonl_gz(dev)


def test_committed_corpus_shape_sizes_and_split():
    train, dev = corpus()
    assert len(train) >= 400 and len(dev) >= 40
    assert {t["id"] for t in train}.isdisjoint({t["id"] for t in dev})
    assert len({t["id"] for t in train + dev}) == len(train) + len(dev)
    for t in train + dev:
        assert set(t) == {"id", "source", "subject", "messages"}
        assert t["id"].startswith(t["source"] + ":")
        assert 2 <= len(t["messages"]) <= 12
        for m in t["messages"]:
            assert set(m) == {"sender", "date", "body"} and m["body"].strip() and len(m["body"]) <= 2000
    dev_keys = {message_key(m["body"], t["subject"]) for t in dev for m in t["messages"]}
    train_keys = {message_key(m["body"], t["subject"]) for t in train for m in t["messages"]}
    assert dev_keys.isdisjoint(train_keys)  # no dev thread shares a message with a train thread
    for f in CORPUS.glob("*.jsonl.gz"):
        assert f.stat().st_size < 10 << 20
