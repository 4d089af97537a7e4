"""Facts a summary states that its source does not contain: names, numbers, dates and email addresses.

    invented_facts("Ana asks Bo for $300 by May 5.", source)   # ["Bo", "300"] when the source has neither

A summary may rephrase anything, but the particulars a reader acts on (who, how much, when, where to
write) must come from the email. The check is lexical and errs towards silence:
- an email address counts when the source does not hold it (case ignored);
- a number counts when its digits (without separators, "30th" as 30, "9:00" as 9 and 00) are not a
  number of the source; spelled-out numbers are not checked;
- a name is a capitalized word that is not a common English word (a short list, and at the start of
  a sentence any word with a common ending: -ing, -ed, -tion...) and appears in the source in no
  case; a month or weekday is never one (a date counts by its number). In Title Case text (a
  subject line) capitals mark nothing, and only numbers and addresses are checked.
The same rule scores every system, so the rates compare, though neither is a full fact check.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_CAPITAL = re.compile(r"\b[A-Z][a-zA-Z'’-]+")

# capitalized words a summary writes that are not names: sentence starts, the task's own words, calendar
COMMON = frozenset("""
a an the this that these those there here it its they them their he she his her him we our us you your i me my
mr mrs ms dr re fw fwd and or but so if as at by for from in into of on to with without about after before
during over under between within per via all any both each every some no not none one other another such
what which who whom whose when where why how please thanks thank hi hello dear regards best cheers
email emails mail message messages thread threads sender senders recipient recipients subject summary
reply replies request requests note notes update updates meeting meetings team company office customer
customers support agent agents user users attached attachment also however therefore meanwhile finally
first second third then next last new old yes ok okay is are was were be been being has have had do does
did will would can could should may might must shall let lets asks asked says said wants informs
confirms discusses requests explains mentions provides suggests notes thanks reminds invites apologizes
proposes plans agrees writes responds forwards offers expresses shares announces reports seeks
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
mon tue tues wed thu thurs fri sat sun today tomorrow yesterday morning afternoon evening night week
weekend month year am pm eta fyi asap usa us uk eu
contact call send check confirm review see get make take give find keep look ask tell need use help know want
work sign fill approve discuss schedule attend join complete submit provide share forward follow return
cancel change pay order ship deliver refund account password product service price payment issue problem
question information details report project deal contract agreement plan list file document date time
both either neither overall key main just only still even already again instead despite due because since
until while although though unless whether
""".split())


def invented_facts(summary: str, source: str) -> list[str]:
    """The names, numbers and email addresses of `summary` that `source` does not contain, in order."""
    src_lower = source.lower()
    src_words = {w.lower().strip("'’-") for w in _WORD.findall(source)}
    src_numbers = {_digits(n) for n in _NUMBER.findall(source)}
    found: list[str] = []
    for m in _EMAIL.finditer(summary):
        if m.group(0).lower() not in src_lower:
            found.append(m.group(0))
    text = _EMAIL.sub(" ", summary)
    for n in _NUMBER.findall(text):
        if _digits(n) not in src_numbers:
            found.append(n)
    words = [w for w in _WORD.findall(text) if len(w) > 3]
    if words and sum(w[0].isupper() for w in words) >= 0.8 * len(words):
        return found  # Title Case (a subject line): capitals do not mark names
    for m in _CAPITAL.finditer(text):
        word = m.group(0).strip("'’-")
        key = re.sub(r"['’]s$", "", word).lower()
        if key in COMMON or key in src_words or word.lower() in src_words or _kin(key, src_words):
            continue
        if any(part in src_words or part in COMMON for part in key.split("-")):
            continue
        if _sentence_start(text, m.start()) and key.endswith(_WORD_ENDINGS):  # "Shipping was delayed."
            continue
        found.append(word)
    return found


def _kin(key: str, words: set[str]) -> bool:
    """A word of the source is the same word in another form: Agreements/agreement, German/Germany."""
    stem = key[: max(5, len(key) - 2)]
    return len(key) >= 5 and any(w.startswith(stem) or key.startswith(w) and len(w) >= 5 for w in words)


_WORD_ENDINGS = ("ing", "ed", "ly", "tion", "tions", "ment", "ments", "ness", "ity", "ies", "ance", "ence", "al")


def _sentence_start(text: str, i: int) -> bool:
    before = text[:i].rstrip(" \t\"'“(*-")
    return not before or before[-1] in ".!?:\n"


def _digits(n: str) -> str:
    return re.sub(r"[.,]", "", n).lstrip("0") or "0"
