"""Stop a model that has started to repeat itself.

Small models, the untrained base above all, fall into loops: the same line again and again
("P.S. If you have any questions..."), or a short run of characters without end (">>>>>>").
`stop_loops` passes a stream through and ends it at the first repeated line or runaway run;
`collapse_repeats` folds "Not Much: Not Much: Not Much" in a one-line answer back to "Not Much".

    for piece in stop_loops(model.stream(messages)):
        print(piece, end="")
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

MIN_LINE = 8  # shorter lines ("Hi,", "Thanks!", "") may repeat legitimately
RUN_CHARS = 80  # a tail this long made of one unit of up to RUN_PERIOD characters is a runaway
RUN_PERIOD = 20


_MARKER = re.compile(r"\s*(?:\d{1,3}[.)]|[-*+\u2022])\s+")  # a list item's number or bullet
_MARKER_SO_FAR = re.compile(r"\s*(?:\d{1,3}[.)]?|[-*+\u2022])?\s*")  # a line that may still become one


def _norm(line: str) -> str:
    """A line as compared: "12. Call us [1]" repeats "11. Call us [1]" (the number is not the line)."""
    return " ".join(_MARKER.sub("", line, count=1).split()).lower()


def _run(text: str) -> tuple[int, int]:
    """(start, period) of the longest stretch at the end of `text` that repeats one short unit;
    (len(text), 0) when there is none worth holding (under 6 characters or 3 units)."""
    n, best = len(text), (len(text), 0)
    for p in range(1, RUN_PERIOD + 1):
        j = n - p
        while j > 0 and n - j <= RUN_CHARS + p and text[j - 1] == text[j - 1 + p]:
            j -= 1
        if n - j >= max(6, 3 * p) and j < best[0]:
            best = (j, p)
    return best


def stop_loops(pieces: Iterable[str]) -> Iterator[str]:
    """Yield `pieces` until the text repeats an earlier line or runs away; the repeat is not yielded.

    A line that could still turn out to repeat an earlier one is held back until it differs
    (like a stop string), so nothing of a repeat reaches the reader. Ending early closes the
    source, which stops the generation.
    """
    seen: set[str] = set()
    text, sent, checked = "", 0, 0  # all text; how much was yielded; where the unchecked line starts
    it = iter(pieces)
    try:
        for piece in it:
            text += piece
            while (nl := text.find("\n", checked)) >= 0:  # lines this piece completed
                key = _norm(text[checked:nl])
                if len(key) >= MIN_LINE:
                    if key in seen:
                        if checked > sent:
                            yield text[sent:checked]
                        return
                    seen.add(key)
                checked = nl + 1
            start, period = _run(text)
            if len(text) - start >= RUN_CHARS:  # runaway: keep one unit of it
                if start + period > sent:
                    yield text[sent : start + period].rstrip()
                return
            partial = text[checked:]  # held while it may yet repeat a line, or is only a list number so far
            held = seen and (_MARKER_SO_FAR.fullmatch(partial) or any(s.startswith(_norm(partial)) for s in seen))
            safe = checked if held else len(text)
            safe = min(safe, start + period)  # a run might become a runaway: hold it
            if safe > sent:
                yield text[sent:safe]
                sent = safe
        if len(text) > sent:
            yield text[sent:]
    finally:
        close = getattr(it, "close", None)
        if close:
            close()


_REPEAT = re.compile(r"(\S.{2,60}?)(?:\s*[:,;/|-]?\s*\1)+", re.S)


def collapse_repeats(text: str) -> str:
    """'Not Much: Not Much: Not Much: Not' → 'Not Much' (a phrase said back to back, kept once)."""
    m = _REPEAT.search(text)
    if not m:
        return text
    unit, rest = m.group(1), text[m.end():].lstrip(" :,;/|-")
    if rest and unit.startswith(rest):  # the loop was cut off mid-phrase
        rest = ""
    return text[: m.start()] + unit + (text[m.end():] if rest else "")
