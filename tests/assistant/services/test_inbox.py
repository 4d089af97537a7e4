"""Listing a mailbox from headers alone: the same ids, subjects and threads as the full parse,
Maildir and mbox read flags, --since values, bodies read only on demand."""

from __future__ import annotations

import types

import pytest

from assistant import AssistantError
from assistant.mail import MailError, group_threads, read_mail
from assistant.services import inbox

DEMO = __import__("pathlib").Path(__file__).resolve().parents[3] / "assets" / "demo" / "mailbox"


def _mail(i: int, extra: str = "") -> str:
    return (f"From: Ana <ana@example.com>\nSubject: Note {i}\nMessage-ID: <n{i}@example.com>\n"
            f"Date: Mon, 0{1 + i % 9} Oct 2001 10:00:00 +0000\n{extra}\nBody of note {i}.\n")


def test_headers_give_the_full_parses_ids_subjects_and_threads(shared):
    box = shared / "maildir-notmuch"
    headers = list(inbox.scan(box))
    assert isinstance(inbox.scan(box), types.GeneratorType)
    full = {m.path: m for m in read_mail(box) if not isinstance(m, MailError)}
    assert len(headers) == len(full) == 263
    for h in headers:
        m = full[h.path]
        assert (h.message_id, h.subject, h.from_, h.timestamp, h.in_reply_to, h.references) == \
               (m.message_id, m.subject, m.from_, m.timestamp, m.in_reply_to, m.references)
        assert h.body == "" and h.digest
    mine = sorted(sorted(m.path for m in t.messages) for t in inbox.group(headers))
    theirs = sorted(sorted(m.path for m in t.messages) for t in group_threads(full.values()))
    assert mine == theirs


def test_a_header_is_read_in_full_on_demand():
    [h] = [h for h in inbox.scan(DEMO) if h.path.endswith("004.eml")]
    assert h.body == ""
    msg = inbox.load(h)
    assert msg.body and msg.message_id == h.message_id and msg.subject == h.subject


def test_maildir_flags_and_mbox_status_say_what_was_read(tmp_path):
    box = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.host").write_text(_mail(1))
    (box / "cur" / "2.host:2,S").write_text(_mail(2))
    (box / "cur" / "3.host:2,RF").write_text(_mail(3))  # replied, flagged, not seen
    mbox = tmp_path / "box.mbox"
    mbox.write_text("From a@b Mon Oct  1 10:00:00 2001\n" + _mail(4, "Status: RO") +
                    "\nFrom a@b Mon Oct  1 10:00:00 2001\n" + _mail(5, "Status: O"))
    seen = {h.subject: h.seen for h in inbox.scan(box, mbox)}
    assert seen == {"Note 1": False, "Note 2": True, "Note 3": False, "Note 4": True, "Note 5": False}
    assert [h.subject for h in inbox.select(inbox.scan(box, mbox), unread=True)] == ["Note 3", "Note 1", "Note 5"]
    assert inbox.count(box, mbox) == 5 and {h.seen for h in inbox.scan(DEMO)} == {None}


def test_since_takes_an_age_or_a_date():
    now = 1_000_000_000.0
    assert inbox.since("1d", now) == now - 86400 and inbox.since("12h", now) == now - 43200
    assert inbox.since("2w", now) == now - 14 * 86400 and inbox.since("30m", now) == now - 1800
    assert inbox.since("2001-10-30") == 1004400000.0
    with pytest.raises(AssistantError, match="--since 'yesterday'"):
        inbox.since("yesterday")
    dated = [h for h in inbox.scan(DEMO)]
    recent = list(inbox.select(dated, after=inbox.since("2026-11-05")))
    assert {h.path[-7:] for h in recent} == {"005.eml", "006.eml", "007.eml", "008.eml"}


def test_what_cannot_be_read_is_one_error_and_the_rest_goes_on(tmp_path):
    (tmp_path / "a.eml").write_text(_mail(1))
    (tmp_path / "b.eml").write_bytes(b"%PDF-1.4 binary")
    (tmp_path / "c.eml").write_text("")
    items = list(inbox.scan(tmp_path, tmp_path / "missing"))
    errors = {i.path.rsplit("/", 1)[-1]: i.error for i in items if isinstance(i, MailError)}
    assert [i.subject for i in items if not isinstance(i, MailError)] == ["Note 1"]
    assert errors == {"b.eml": "not an email: a PDF file", "c.eml": "empty file", "missing": "no such file or folder"}
