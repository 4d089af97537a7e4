"""Real multi-message email threads for the thread-summary tasks, built from raw public mail.

    python -m distill.threads --out data/threads \\
        --notmuch ../shared/data/maildir-notmuch \\
        --rlists-git SNAPSHOT_OF/r-mailing-lists/data.git \\
        --enron-git SNAPSHOT_OF/jpvance123/Amdocs_ML_Email_Analytics.git     # or --enron MBOX_FILE_OR_DIR ...

(each SNAPSHOT_OF/... a bare git clone of that public repository; data/threads/README.md names the
commits. Reading the R lists' Parquet tables needs pyarrow, which the project does not install:
`pip install pyarrow` in a scratch virtualenv for the rebuild. Everything else is the standard library
plus assistant.mail.)

writes `train.jsonl.gz` and `dev.jsonl.gz` (gzip JSONL, one thread a line) and prints what each source gave.
A thread is

    {"id": "enron:3f2a…", "source": "enron", "subject": "QF Presentation",
     "messages": [{"sender": "Jeff Dasovich", "date": "2001-10-23 08:41", "body": "Tom: Here's the …"}, …]}

its messages oldest first, each body without the quoted copies of earlier messages.

Three kinds of source:

- Mailboxes whose messages carry In-Reply-To/References (the notmuch test Maildir, mailing-list mbox
  archives): read with `assistant.mail.read_mail`, grouped with `group_threads`; the body is what
  `read_mail` keeps (quotes and signature split off), with patches, list footers and attribution lines
  cut. A thread longer than `MAX_MESSAGES` is split into its sub-conversations (same normalized subject).
- Mailing-list tables (r-mailing-lists/data: one Parquet row a message, with a thread id): each body
  is cut at its first quote header when the reply is above it, else reduced by `split_reply`
  (email-reply-parser) as read_mail does, then cleaned as above.
- Enron mail (an mbox per folder): one message whose body quotes the earlier ones is a whole thread.
  `split_quoted` cuts such a body at "-----Original Message-----" headers, "On … wrote:" lines, Lotus Notes
  headers ("Name on 05/10/2000 02:50 PM" / "From: Name  05/10/2000 02:50 PM" followed by To:/cc:/Subject:)
  and "----- Forwarded by … -----" lines, reading each earlier message's From/Sent/Subject where present.

Every thread keeps 2 to `MAX_MESSAGES` messages with text from at least two different senders, English,
bodies of at most `MAX_BODY` characters; threads are deduplicated (a thread whose messages all appear in
a longer one is dropped) and split train/dev by a hash of an id, whole groups of threads that share a
message going to the same side (`split_threads`).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import gzip
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

MAX_MESSAGES = 12
MAX_BODY = 2000  # characters of one message body
MIN_BODY = 2  # a message needs this many letters to count
MAX_RAW_BODY = 60_000  # an Enron body longer than this (a newsletter, a pasted report) is skipped
DEV_PERCENT = 10
ENRON_FOLDERS = ("sent_items",)  # 2001 Outlook mail: "-----Original Message-----" chains
ENRON_PER_MAILBOX = 12  # at most this many threads from one custodian's folder, so no one dominates
ENRON_LIMIT = 800
# R mailing lists whose archive tables are small enough to be in the snapshot (< 4 MiB) and are discussions
RLISTS = ("r-help-2025-2029", "r-help-1995-1999", "r-sig-hpc", "r-sig-db", "r-sig-debian", "r-sig-fedora",
          "r-sig-gui", "r-sig-teaching", "r-sig-robust", "r-sig-genetics", "r-sig-epi", "r-sig-dynamic-models")

# ---------------------------------------------------------------------------------------------------
# Text clean-up


_QP = re.compile(r"=(?:20|09|3D)|=\n")
_DISCLAIMER = re.compile(
    r"\n?[ \t]*\*{20,}[ \t]*\n\s*(?:This e-mail|This message|The information|NOTICE|CONFIDENTIAL|This email)"
    r"[\s\S]*?(?:\n[ \t]*\*{20,}[ \t]*(?=\n|$)|$)", re.IGNORECASE)
_OLE = re.compile(r"<<[ \t]*OLE Object[^>\n]{0,100}>>|<Embedded [^<>\n]{1,60}>"
                  r"|^[ \t]*-?[ \t]*(?:winmail\.dat|[\w\-]{1,60}(?:\.[\w\-]{1,60}){0,3}\.vcf)[ \t]*"
                  r"(?:<<[ \t]*File:[^>\n]{0,100}>>)?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_ATTACHMENT = re.compile(r"(?:-[ \t]*[^\s<>][^<>\n]{0,80}?[ \t]+)?<<[ \t]*File:[ \t]*([^<>\n]{1,100}?)[ \t]*>>")
_ENRON_CORP_LINE = re.compile(r"^[ \t]*Enron [A-Za-z&.,' ]{0,40}(?:Corp\.?|Inc\.?|Services|Resources|Company)[ \t]*$",
                              re.MULTILINE)
_ATTRIBUTION = re.compile(r"^.{0,200}\b(?:wrote|escreveu|schrieb|a écrit|ha scritto|scrisse|escribió|skrev):\s*$"
                          r"|^\s*(?:At|On) .{5,120},\s*$"
                          r"|^\s*On (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? .{0,40}\d{4}\b.{0,80}$")
_PATCH_START = re.compile(r"^(?:diff --git |Index: \S|--- a/|\+\+\+ b/|@@ -\d|diff -[a-zA-Z]+ )", re.MULTILINE)
_DIFFSTAT = re.compile(r"^---\s*\n(?:\s*\S+\s+\|\s+\d+ [+-]*\n)+", re.MULTILINE)
_LIST_FOOTER = re.compile(r"^(?:-{30,}|_{30,}|--\s*\nTo unsubscribe|To unsubscribe from this list)", re.MULTILINE)


def normalize_ws(text: str) -> str:
    """Line ends to \\n, no tabs, no trailing spaces, runs of spaces to one, at most one empty line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ").replace("\t", " ")
    lines = [re.sub(r" {2,}", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def trim(text: str, limit: int = MAX_BODY) -> str:
    """At most `limit` characters, cut at a space, marked with […]."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 4)
    return text[: cut if cut > limit // 2 else limit - 4].rstrip() + " […]"


def _unquote_printable(text: str) -> str:
    """Enron bodies keep quoted-printable debris (=20, =09, soft breaks '=\\n'): undo it where it is common."""
    if len(_QP.findall(text)) < 3:
        return text
    return text.replace("=\n", "").replace("=20", " ").replace("=09", " ").replace("=3D", "=")


def clean_body(text: str, quotes: str = "drop") -> str:
    """A message body as it goes into the corpus: no disclaimers, whitespace normalized, attachments as
    [attachment: name]; lines quoted with '>' dropped (quotes="drop") or kept without the '>' ("keep":
    Enron bodies, whose quoted history is already split off and whose '>' lines are mostly broken wrapping)."""
    text = _DISCLAIMER.sub("\n", text)
    text = _ENRON_CORP_LINE.sub("", _OLE.sub("", text))
    text = _ATTACHMENT.sub(lambda m: f"[attachment: {m.group(1).strip()}]", text)
    lines = text.replace("\r\n", "\n").split("\n")
    if quotes == "keep":
        lines = [re.sub(r"^\s*(?:>\s?)+", "", line) for line in lines]
    else:
        lines = [line for line in lines if not line.lstrip().startswith(">")]
    while lines and (not lines[-1].strip() or _ATTRIBUTION.match(lines[-1].strip())):
        lines.pop()
    return normalize_ws("\n".join(lines))


def letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


_ENGLISH = {"the", "and", "to", "of", "a", "in", "is", "it", "you", "that", "for", "on", "this", "be", "are", "with",
            "we", "have", "will", "i", "not", "as", "at"}


def looks_english(text: str) -> bool:
    """Mostly ASCII letters and a fair share of common English words."""
    words = re.findall(r"[A-Za-z']+", text.lower())
    if len(words) < 5:
        return True  # too short to tell ("Thanks!"): let it through
    alpha = [c for c in text if c.isalpha()]
    ascii_share = sum(c.isascii() for c in alpha) / max(1, len(alpha))
    return ascii_share > 0.9 and sum(w in _ENGLISH for w in words) / len(words) > 0.08


def clean_sender(raw: str) -> str:
    """'Dasovich, Jeff </O=ENRON/OU=NA/…>' → 'Jeff Dasovich'; 'Tom Beach [mailto:tomb@x.com]' → 'Tom Beach';
    'Jeff Dasovich/NA/Enron@Enron' → 'Jeff Dasovich'; a bare address stays an address."""
    s = re.sub(r"\[(?:mailto|smtp):[^\]]*\]", "", raw or "", flags=re.IGNORECASE)
    s = re.sub(r"<[^<>]*>", "", s) if re.sub(r"<[^<>]*>", "", s).strip() else s.strip().strip("<>")
    parts = re.split(r"\s+on behalf of\s+", s, flags=re.IGNORECASE)
    s = parts[-1]  # "Assistant On Behalf Of Boss": the message is the boss's
    s = re.sub(r"\([^()]*\)", "", s)
    s = s.replace('"', "").replace("'", "").strip().rstrip(",;")
    if "@" not in s.split("/")[0] and "/" in s:  # Lotus Notes: Name/OU/Org@Domain
        s = s.split("/")[0]
    s = re.sub(r"@(?:ENRON|ECT|EES|enronXgate)\S*$", "", s, flags=re.IGNORECASE).strip()
    m = re.fullmatch(r"([A-Za-z][A-Za-z'\-]+(?: [A-Za-z][A-Za-z'\-]+)?),\s*([A-Za-z][A-Za-z.\- ]*)", s)
    if m:  # "Last, First M." → "First M. Last"
        s = f"{m.group(2).strip()} {m.group(1)}"
    return re.sub(r"\s+", " ", s).strip()[:80]


_DATE_FORMATS = ("%A, %B %d, %Y %I:%M %p", "%A, %B %d, %Y %I:%M:%S %p", "%a, %B %d, %Y %I:%M %p", "%B %d, %Y %I:%M %p",
                 "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %I:%M %p", "%m/%d/%y %I:%M:%S %p",
                 "%A, %B %d, %Y", "%a %m/%d/%Y %I:%M %p", "%d %B %Y %H:%M", "%A, %d %B %Y %H:%M")


def clean_date(raw: str | None) -> str:
    """'Tuesday, October 23, 2001 11:55 AM' or an RFC 2822 date → '2001-10-23 11:55' (as written, no time
    zone); an ISO date keeps its offset; anything unreadable is kept as written (at most 60 characters)."""
    s = re.sub(r"\s+", " ", (raw or "").strip())
    if not s:
        return ""
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?([+-]\d\d:\d\d|Z)?", s):  # read_mail's dates
        when = datetime.fromisoformat(s)
        if when.tzinfo is not None:
            return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return when.strftime("%Y-%m-%d %H:%M")
    core = re.sub(r"\s*\(?\b(?!AM\b|PM\b)[A-Z]{2,4}\)?$", "", s.replace(" at ", " ")).strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(core, fmt).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            continue
    if re.match(r"^(?:[A-Za-z]{3},? )?\d{1,2} [A-Za-z]{3} \d{2,4} \d{1,2}:\d\d", s):  # RFC 2822
        try:
            return parsedate_to_datetime(s).strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError, IndexError):
            pass
    return s[:60]


# ---------------------------------------------------------------------------------------------------
# Splitting a body at its quote markers (Enron and other mail that quotes the whole history)

_H_KEYS = r"From|Sent by|Sent|Date|To|Cc|Bcc|Subject|Importance|Attachments?|Sensitivity"
_HEADER_LINE = re.compile(rf"^[> ]*({_H_KEYS})\s*:\s*(.*)$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^[> \t]*-{2,}\s*(?:Original Message|Original Appointment|Reply Message)\s*-{2,}[ \t]*$",
                       re.IGNORECASE | re.MULTILINE)
_WROTE = re.compile(r"^[ \t]*On ((?:(?!\n\s*\n)[\s\S]){4,240}?)\s+wrote:[ \t]*$", re.MULTILINE)
_NOTES_DATE = r"\d{1,2}/\d{1,2}/\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?\s*[AP]M"
_NOTES_ON = re.compile(rf"^[ \t]*(?:From:\s*)?(?P<who>[^\n]{{2,100}}?)\s+on\s+(?P<date>{_NOTES_DATE})[ \t]*$",
                       re.MULTILINE)
_NOTES_FROM = re.compile(rf"^[ \t]*From:\s+(?P<who>[^\n]{{2,100}}?)\s{{2,}}(?P<date>{_NOTES_DATE})[ \t]*$",
                         re.MULTILINE)
_NOTES_TWO_LINE = re.compile(rf"^[ \t]*(?P<who>[A-Z][^\n:]{{1,60}}?)[ \t]*\n[ \t]*(?P<date>{_NOTES_DATE})[ \t]*$",
                             re.MULTILINE)
_FORWARDED = re.compile(r"^[ \t]*-{3,}\s*Forwarded by[^\n]*(?:\n[^\n]*?)??-{3,}[ \t]*$", re.MULTILINE)
_TIME_END = re.compile(r"(?:\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp]\.?[Mm]\.?)?(?:\s*[+-]\d{4})?(?:\s*\(?[A-Z]{2,5}\)?)?"
                       r"|\b(?:19|20)\d\d)\s*,?\s*")


def _header_block(text: str, start: int) -> tuple[dict, int]:
    """Header lines (From:, Sent:, To:, Subject: …, with wrapped continuations) from `start`, up to the first
    empty line after them: (fields, end offset)."""
    fields: dict[str, str] = {}
    pos, last = start, None
    seen_any = False
    while pos < len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl + 1
        line = text[pos:end].rstrip("\n")
        m = _HEADER_LINE.match(line)
        if m:
            key = m.group(1).lower()
            key = {"sent": "date", "sent by": "sent_by"}.get(key, key)
            fields.setdefault(key, m.group(2).strip())
            last, seen_any = key, True
        elif not line.strip().lstrip(">").strip():
            if seen_any:
                return fields, end
            if pos - start > 200:  # no header after a marker: the body starts here
                return fields, pos
        elif last in ("to", "cc", "bcc") and seen_any:  # a wrapped address list
            fields[last] += " " + line.strip()
        else:
            return fields, pos
        pos = end
    return fields, pos


def _has_to_line(text: str, pos: int) -> bool:
    """A To: (or cc:) line among the next 4 lines: what makes a Notes 'Name on date' line a header."""
    window = text[pos:pos + 600].split("\n")[:5]
    return any(re.match(r"^[ \t>]*(To|cc)\s*:", line, re.IGNORECASE) for line in window)


def _markers(text: str) -> list[tuple[int, int, str, dict]]:
    """(start, end of header, kind, fields) of every quote marker in `text`, in order, not overlapping."""
    found = []
    for m in _ORIGINAL.finditer(text):
        fields, end = _header_block(text, m.end() + 1)
        found.append((m.start(), end, "original", fields))
    for m in _WROTE.finditer(text):
        inner = re.sub(r"\s+", " ", m.group(1))
        t = None
        for t in _TIME_END.finditer(inner):
            pass  # the last time (or year) in the line ends the date
        date, who = (inner[:t.end()].strip(" ,"), inner[t.end():].strip(" ,")) if t else ("", inner)
        if len(who) > 120:
            continue
        found.append((m.start(), m.end(), "wrote", {"from": who, "date": date}))
    for rx in (_NOTES_ON, _NOTES_FROM, _NOTES_TWO_LINE):
        for m in rx.finditer(text):
            if _has_to_line(text, m.end()):
                fields, end = _header_block(text, m.end() + 1)
                fields = {**fields, "from": m.group("who"), "date": m.group("date")}
                found.append((m.start(), end, "notes", fields))
    for m in _FORWARDED.finditer(text):
        found.append((m.start(), m.end(), "forward", {}))
    found.sort(key=lambda f: (f[0], -f[1]))
    out: list[tuple[int, int, str, dict]] = []
    for f in found:
        if out and f[0] < out[-1][1]:
            continue  # inside the previous marker's header block
        out.append(f)
    return out


def _dequote(text: str) -> str:
    """Remove one level of '>' quoting when most non-empty lines carry it."""
    lines = text.split("\n")
    full = [line for line in lines if line.strip()]
    if not full or sum(line.lstrip().startswith(">") for line in full) / len(full) < 0.7:
        return text
    return "\n".join(re.sub(r"^\s*> ?", "", line) for line in lines)


def split_quoted(body: str, sender: str = "", date: str = "", subject: str = "") -> list[dict]:
    """One body that quotes earlier messages → the messages it holds, OLDEST FIRST.

    Each is {"sender", "date", "subject", "body"} (raw, not yet cleaned); the newest is the body's own text,
    with the sender/date/subject given. Splits at "-----Original Message-----" header blocks, "On … wrote:"
    lines (the quoted text then loses one level of '>'), Lotus Notes headers and "Forwarded by" lines.
    """
    chain = []
    head = {"from": sender, "date": date, "subject": subject}
    text = body.replace("\r\n", "\n")
    for _ in range(60):  # a body quotes at most this many messages deep
        marks = _markers(text)
        if not marks:
            break
        start, end, kind, fields = marks[0]
        chain.append({**head, "body": text[:start]})
        head = {"from": fields.get("from", ""), "date": fields.get("date", ""), "subject": fields.get("subject", "")}
        if kind == "forward":  # the forwarded message's own header (if any) follows: take it from there
            head = {"from": "", "date": "", "subject": ""}
        text = _dequote(text[end:])
    chain.append({**head, "body": text})
    out = [{"sender": m["from"], "date": m["date"], "subject": m["subject"], "body": m["body"]} for m in chain]
    # a forward line right before a header leaves an empty part with no sender: merge it away
    return [m for m in out if m["body"].strip() or m["sender"]][::-1]


# ---------------------------------------------------------------------------------------------------
# Threads


def message_key(body: str, subject: str = "") -> str:
    """What makes two copies of one message the same: its first 300 letters/digits (and, for a short
    body such as 'Thanks!', the thread's subject too)."""
    norm = re.sub(r"[^a-z0-9]", "", body.lower())[:300]
    if len(norm) < 40:
        norm += "|" + re.sub(r"[^a-z0-9]", "", strip_prefixes(subject).lower())
    return hashlib.sha1(norm.encode()).hexdigest()[:16]


_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|tr|rv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def strip_prefixes(subject: str) -> str:
    return re.sub(r"\s+", " ", _PREFIX.sub("", subject or "")).strip()


def make_thread(source: str, key: str, subject: str, messages: list[dict]) -> dict:
    return {"id": f"{source}:{hashlib.sha1(key.encode()).hexdigest()[:16]}", "source": source,
            "subject": strip_prefixes(subject)[:200] or "(no subject)",
            "messages": [{"sender": m["sender"], "date": m["date"], "body": m["body"]} for m in messages]}


def finish_messages(raw: list[dict], clean=clean_body, sender=clean_sender) -> list[dict]:
    """Clean and trim each body; drop empty ones and a message repeating the one before it."""
    out = []
    for m in raw:
        body = trim(clean(m["body"]))
        text = re.sub(r"\[attachment: [^\]]*\]", "", body)
        if letters(text) < MIN_BODY or (not m.get("sender") and letters(body) < 80):
            continue  # empty, or a scrap with no sender (left between a forward line and its header)
        if out and message_key(out[-1]["body"]) == message_key(body):
            continue
        out.append({"sender": sender(m.get("sender", "")), "date": clean_date(m.get("date")),
                    "subject": m.get("subject", ""), "body": body})
    return out


def thread_ok(thread: dict, min_senders: int = 1) -> str | None:
    """Why the thread is not kept (None when it is)."""
    msgs = thread["messages"]
    if len(msgs) < 2:
        return "fewer than 2 messages"
    if len(msgs) > MAX_MESSAGES:
        return f"more than {MAX_MESSAGES} messages"
    if len({m["sender"].lower() for m in msgs if m["sender"]}) < min_senders:
        return f"fewer than {min_senders} senders"
    if not looks_english(" ".join(m["body"] for m in msgs)):
        return "not English prose (or too little of it)"
    return None


# Enron ----------------------------------------------------------------------------------------------


def _mbox_messages(data: bytes) -> Iterator[email.message.Message]:
    """The messages of an mbox file's bytes (the 'From ' lines that separate them; body lines starting
    'From ' are escaped '>From ' by the mailbox module that wrote these files)."""
    for chunk in re.split(rb"(?m)^From [^\n]*\n", data):
        if chunk.strip():
            yield email.message_from_bytes(chunk, policy=email.policy.compat32)


def _text_of(msg: email.message.Message) -> str:
    part = msg
    if msg.is_multipart():
        part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
        if part is None:
            return ""
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1", errors="replace")


def enron_threads(mbox_bytes: bytes, mailbox_name: str, stats: Counter | None = None) -> Iterator[dict]:
    """Threads rebuilt from the quoted history in each message of one Enron mbox folder."""
    stats = stats if stats is not None else Counter()
    for msg in _mbox_messages(mbox_bytes):
        stats["messages read"] += 1
        body = _text_of(msg)
        if len(body) > MAX_RAW_BODY:
            stats["skipped: body too large"] += 1
            continue
        body = _unquote_printable(body)
        if not _markers(body):
            continue
        stats["bodies with quote markers"] += 1
        sender = msg.get("X-From") or msg.get("From") or ""
        subject = str(msg.get("Subject") or "")
        raw = split_quoted(body, sender, str(msg.get("Date") or ""), subject)
        messages = finish_messages(raw, clean=lambda text: clean_body(text, quotes="keep"))
        first_subject = next((m["subject"] for m in messages if m["subject"]), subject)
        key = "enron|" + str(msg.get("Message-ID") or hashlib.sha1(body.encode()).hexdigest())
        thread = make_thread("enron", key, first_subject or subject, messages)
        thread["_mailbox"] = mailbox_name
        why = thread_ok(thread, min_senders=2)
        if why:
            stats[f"skipped: {why}"] += 1
            continue
        yield thread


def enron_mboxes_from_git(git_dir: str | Path, folders: Iterable[str] = ENRON_FOLDERS,
                          prefix: str = "MailDir_to_MBOX/enron/") -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the Enron mbox files for `folders` in a git snapshot (HEAD): enron.<user>.<folder>."""
    listing = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-z", "HEAD", prefix],
                             capture_output=True, check=True).stdout.decode()
    for entry in sorted(filter(None, listing.split("\0")), key=lambda e: e.split("\t", 1)[1]):
        meta, path = entry.split("\t", 1)
        name = path.rsplit("/", 1)[-1]
        if name.split(".", 2)[-1] not in folders:
            continue
        blob = subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "blob", meta.split()[2]],
                              capture_output=True, check=False)
        if blob.returncode == 0:  # files of 4 MiB and more may be absent from a snapshot
            yield name, blob.stdout


def enron_mboxes_from_paths(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes]]:
    for p in map(Path, paths):
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            yield f.name, f.read_bytes()


def select_enron(threads: list[dict], per_mailbox: int = ENRON_PER_MAILBOX, limit: int = ENRON_LIMIT) -> list[dict]:
    """A spread over custodians: at most `per_mailbox` from each, `limit` in all, chosen by a hash of the id."""
    chosen, per = [], Counter()
    for t in sorted(threads, key=lambda t: hashlib.sha1(t["id"].encode()).hexdigest()):
        box = t.get("_mailbox", "").split(".")[1] if "." in t.get("_mailbox", "") else t.get("_mailbox", "")
        if per[box] >= per_mailbox:
            continue
        per[box] += 1
        chosen.append(t)
        if len(chosen) >= limit:
            break
    return chosen


# Mailboxes with threading headers (notmuch Maildir, mailing-list mbox) ---------------------------------


def list_body(text: str) -> str:
    """A mailing-list body as read_mail keeps it, minus patches, list footers and attribution lines."""
    m = _PATCH_START.search(text)
    if m:
        text = text[:m.start()]
    m = _DIFFSTAT.search(text)
    if m:
        text = text[:m.start()]
    m = _LIST_FOOTER.search(text)
    if m and letters(text[:m.start()]) >= 20:
        text = text[:m.start()]
    lines = text.split("\n")
    # a quoted header left at the top ("From: Joe …" / "Date: …" before the quote was cut)
    while lines and (re.match(r"^(From|Date|Subject|To|Cc):\s", lines[0]) or not lines[0].strip()):
        lines.pop(0)
    lines = [line for line in lines if not _ATTRIBUTION.match(line.strip())]
    return clean_body("\n".join(lines))


def mailbox_threads(path: str | Path, source: str, stats: Counter | None = None) -> Iterator[dict]:
    """Threads of a Maildir/mbox/.eml folder read in place with read_mail + group_threads."""
    from assistant.mail import MailError, group_threads, normalize_subject, read_mail

    stats = stats if stats is not None else Counter()
    msgs = []
    for m in read_mail(path):
        if isinstance(m, MailError):
            stats["unreadable files"] += 1
        else:
            msgs.append(m)
    stats["messages read"] += len(msgs)
    for t in group_threads(msgs):
        groups = [t.messages]
        if len(t.messages) > MAX_MESSAGES:  # a long thread: its sub-conversations, one per subject
            by_subject: dict[str, list] = defaultdict(list)
            for m in t.messages:
                by_subject[normalize_subject(m.subject)].append(m)
            groups = list(by_subject.values())
        for group in groups:
            raw = [{"sender": m.from_, "date": m.date or "", "subject": m.subject, "body": m.body} for m in group]
            # mailing lists: the sender as the assistant reads it ("Name <address>")
            messages = finish_messages(raw, clean=list_body, sender=lambda s: re.sub(r"\s+", " ", s).strip())
            subject = next((m.subject for m in group if not _PREFIX.match(m.subject)), group[0].subject)
            thread = make_thread(source, f"{source}|{group[0].message_id}|{len(group)}", subject, messages)
            why = thread_ok(thread, min_senders=2)
            if why:
                stats[f"skipped: {why}"] += 1
                continue
            yield thread


# Mailing-list archives as Parquet tables (r-mailing-lists/data: one row a message) -----------------------

RLIST_PER_LIST = 60
_HTML_DELETED = re.compile(r"^[ \t]*\[\[alternative HTML version deleted\]\][ \t]*$", re.MULTILINE)


def list_reply_text(body: str) -> str:
    """A list message's own text: cut at the first quote header when it is top-posted (text above it),
    else the fragments email-reply-parser keeps (bottom-posted and interleaved replies), minus footers."""
    from assistant.mail import split_reply

    body = _HTML_DELETED.sub("", body.replace("\r\n", "\n"))
    marks = [m for m in _markers(body) if m[2] in ("original", "wrote", "notes")]
    if marks and letters(body[:marks[0][0]]) >= 20 and not re.search(r"^\s*>", body[:marks[0][0]], re.MULTILINE):
        body = body[:marks[0][0]]
    # Outlook's "________________________________\nFrom: …" separator without "Original Message"
    cut = re.search(r"^_{20,}[ \t]*\n(?:From|De|Von):\s", body, re.MULTILINE)
    if cut and letters(body[:cut.start()]) >= 20:
        body = body[:cut.start()]
    text, _quoted, _signature = split_reply(body)
    return list_body(text)


def rlist_threads(parquet: str | Path | bytes, list_name: str, stats: Counter | None = None,
                  per_list: int = RLIST_PER_LIST) -> Iterator[dict]:
    """Threads of one R mailing list table (columns thread_id, date, from_name, subject, body); needs pyarrow."""
    import io

    import pyarrow.parquet as pq

    stats = stats if stats is not None else Counter()
    table = pq.read_table(io.BytesIO(parquet) if isinstance(parquet, bytes) else parquet,
                          columns=["thread_id", "message_id", "date", "from_name", "subject", "body"])
    by_thread: dict[str, list[dict]] = defaultdict(list)
    for row in table.to_pylist():
        by_thread[row["thread_id"]].append(row)
    stats["messages read"] += table.num_rows
    out = []
    for tid, rows in by_thread.items():
        if len(rows) < 2:
            continue
        rows.sort(key=lambda r: (r["date"], r["message_id"]))
        raw = [{"sender": r["from_name"], "date": r["date"].isoformat(), "subject": r["subject"], "body": r["body"]}
               for r in rows]
        messages = finish_messages(raw, clean=list_reply_text, sender=lambda s: re.sub(r"\s+", " ", s).strip())
        thread = make_thread("r-lists", f"r-lists|{list_name}|{tid}", rows[0]["subject"], messages)
        why = thread_ok(thread, min_senders=2)
        if why:
            stats[f"skipped: {why}"] += 1
            continue
        out.append(thread)
    out.sort(key=lambda t: hashlib.sha1(t["id"].encode()).hexdigest())
    stats["threads before the cap"] += len(out)
    yield from out[:per_list]


def rlist_tables_from_git(git_dir: str | Path, lists: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    for name in lists:
        blob = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:data/messages/{name}.parquet"],
                              capture_output=True, check=False)
        if blob.returncode == 0 and blob.stdout:
            yield name, blob.stdout


# ---------------------------------------------------------------------------------------------------
# Dedup and split


def message_keys(thread: dict) -> set[str]:
    return {message_key(m["body"], thread["subject"]) for m in thread["messages"]}


def dedupe(threads: list[dict]) -> tuple[list[dict], int]:
    """Drop every thread whose messages all appear in a longer (or equal, earlier-id) thread."""
    keys = {t["id"]: message_keys(t) for t in threads}
    by_key: dict[str, list[str]] = defaultdict(list)
    for t in threads:
        for k in keys[t["id"]]:
            by_key[k].append(t["id"])
    size = {t["id"]: len(t["messages"]) for t in threads}
    kept, dropped = [], 0
    seen_ids = set()
    for t in sorted(threads, key=lambda t: (-size[t["id"]], t["id"])):
        if t["id"] in seen_ids:
            dropped += 1
            continue
        seen_ids.add(t["id"])
        mine = keys[t["id"]]
        for other in {o for k in mine for o in by_key[k]} - {t["id"]}:
            if keys[other] <= mine:
                seen_ids.add(other)  # all its messages are in this one
        kept.append(t)
    return sorted(kept, key=lambda t: t["id"]), dropped


def split_threads(threads: list[dict], dev_percent: int = DEV_PERCENT) -> tuple[list[dict], list[dict]]:
    """Train/dev by a hash of an id; threads that share a message (transitively) go to the same side,
    decided by the smallest id of their group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, str] = {}
    for t in threads:
        find(t["id"])
        for k in message_keys(t):
            if k in owner:
                a, b = find(owner[k]), find(t["id"])
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[k] = t["id"]
    train, dev = [], []
    for t in threads:
        bucket = int(hashlib.sha1(("dev|" + find(t["id"])).encode()).hexdigest(), 16) % 100
        (dev if bucket < dev_percent else train).append(t)
    return train, dev


def write_jsonl_gz(path: Path, threads: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        for t in threads:
            f.write((json.dumps({k: t[k] for k in ("id", "source", "subject", "messages")}, ensure_ascii=False)
                     + "\n").encode())
    tmp.replace(path)


def read_jsonl_gz(path: str | Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build(notmuch: list[str], enron_git: str | None, enron_paths: list[str],
          enron_limit: int = ENRON_LIMIT, rlists_git: str | None = None, rlists: Iterable[str] = (),
          log=print) -> tuple[list[dict], dict]:
    """Every thread from the sources, deduplicated; and per-source statistics."""
    threads: list[dict] = []
    report: dict[str, dict] = {}
    if rlists_git:
        for name, data in rlist_tables_from_git(rlists_git, rlists):
            stats = Counter()
            got = list(rlist_threads(data, name, stats))
            stats["threads"] = len(got)
            report[f"r-lists:{name}"] = dict(stats)
            threads += got
            log(f"r-lists {name}: {len(got)} threads {dict(stats)}")
    for path in notmuch:
        stats: Counter = Counter()
        got = list(mailbox_threads(path, "notmuch", stats))
        stats["threads"] = len(got)
        report[f"notmuch:{path}"] = dict(stats)
        threads += got
        log(f"{path}: {len(got)} threads {dict(stats)}")
    if enron_git or enron_paths:
        stats = Counter()
        mboxes = enron_mboxes_from_git(enron_git) if enron_git else enron_mboxes_from_paths(enron_paths)
        candidates = []
        for name, data in mboxes:
            stats["mbox files"] += 1
            candidates += list(enron_threads(data, name, stats))
            if stats["mbox files"] % 20 == 0:
                log(f"enron: {stats['mbox files']} mbox files read, {len(candidates)} threads")
        candidates, dropped = dedupe(candidates)
        stats["candidates after dedupe"] = len(candidates)
        stats["duplicates dropped"] = dropped
        got = select_enron(candidates, limit=enron_limit)
        stats["threads"] = len(got)
        report["enron"] = dict(stats)
        threads += got
        log(f"enron: {len(got)} threads {dict(stats)}")
    threads, dropped = dedupe(threads)
    report["all"] = {"threads": len(threads), "duplicates dropped": dropped}
    for t in threads:
        t.pop("_mailbox", None)
    return threads, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m distill.threads", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for train.jsonl.gz and dev.jsonl.gz")
    ap.add_argument("--notmuch", action="append", default=[], help="a Maildir/mbox folder with threading headers")
    ap.add_argument("--enron-git", help="git dir of a snapshot holding the mbox files "
                                        "MailDir_to_MBOX/enron/enron.<user>.<folder>")
    ap.add_argument("--enron", action="append", default=[], help="Enron mbox files or folders of them")
    ap.add_argument("--enron-limit", type=int, default=ENRON_LIMIT)
    ap.add_argument("--rlists-git", help="git dir of a snapshot of r-mailing-lists/data (data/messages/<list>.parquet; "
                                         "reading them needs pyarrow)")
    ap.add_argument("--rlist", action="append", default=[], help="a list name under data/messages/ (repeatable)")
    ap.add_argument("--dev-percent", type=int, default=DEV_PERCENT)
    args = ap.parse_args(argv)
    threads, report = build(args.notmuch, args.enron_git, args.enron, args.enron_limit, args.rlists_git,
                            args.rlist or RLISTS, log=lambda s: print(s, file=sys.stderr, flush=True))
    train, dev = split_threads(threads, args.dev_percent)
    out = Path(args.out)
    write_jsonl_gz(out / "train.jsonl.gz", train)
    write_jsonl_gz(out / "dev.jsonl.gz", dev)
    by_source = {s: {"train": sum(t["source"] == s for t in train), "dev": sum(t["source"] == s for t in dev)}
                 for s in sorted({t["source"] for t in threads})}
    print(json.dumps({"train": len(train), "dev": len(dev), "by_source": by_source, "sources": report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
