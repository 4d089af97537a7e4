"""Mail and documents are data, never instructions.

Text from a message goes into the prompt fenced and labelled. Sentences that address an
AI assistant (prompt injections) are replaced by a neutral marker before the model sees
them, and `scrub_output` removes any of their payloads (tokens, addresses, quoted
phrases) that still surface in the output.
"""

from __future__ import annotations

import re

INJECTION_MARK = "[instructions aimed at an AI assistant removed]"
_INJECTION = re.compile(
    r"(ignore|disregard|forget|override)\s+(all\s+|any\s+|the\s+|your\s+)?(previous|prior|above|earlier|preceding|system)"
    r"|\b(AI|language model|LLM|assistant|chatbot|summari[sz]er|bot)\b[^.\n]{0,80}\b(must|should|shall|need to|are to|will)\b"
    r"|\b(as an|you are an?)\s+(AI|assistant|language model)"
    r"|\b(instead|now)\s*,?\s+(reply|respond|output|print|write|say|answer)\b"
    r"|\b(print|output|reveal|include|say|write|repeat|reply with|respond with|forward)\b[^.\n]{0,60}\b(token|secret|password|phrase|exactly|verbatim|api key|all (e-?)?mails?)\b"
    r"|\bsystem prompt\b|\bnew instructions?\b"
    r"|\b(note|message|instructions?|memo)\s+(to|for)\s+(the\s+|any\s+)?(AI|assistant|summari[sz]er|bot|model|language model|reader)s?\b"
    r"|\b(write|format|give|return|produce|end|start|begin)\s+your\s+(answer|reply|response|summary|output)\b",
    re.I,
)
# a sentence ends at . ! ? followed by a space or the end (not inside addresses or URLs), or at a line break
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?]+(?=\s|$)|(?=\n)|$)")
_PAYLOAD = re.compile(
    r"\"([^\"]{3,80})\"|'([^']{3,80})'|“([^”]{3,80})”"  # quoted phrases
    r"|\b([A-Z0-9][A-Z0-9_-]{5,}[A-Z0-9])\b"  # SHOUTED-TOKENS and codes
    r"|([\w.+-]+@[\w-]+\.[\w.-]+)"  # addresses
    r"|(https?://\S+)"
)


def find_injections(text: str) -> list[str]:
    """The sentences of `text` that try to instruct an assistant."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip() and _INJECTION.search(s)]


def neutralize(text: str) -> tuple[str, list[str]]:
    """(text with injection sentences replaced by a marker, the payloads those sentences carried)."""
    sentences = find_injections(text)
    payloads: list[str] = []
    for s in sentences:
        text = text.replace(s, INJECTION_MARK, 1)
        payloads += [next(g for g in m.groups() if g) for m in _PAYLOAD.finditer(s)]
    return text, payloads


def scrub_output(output: str, payloads: list[str]) -> str:
    """Remove payloads an injection demanded, should the model repeat them anyway."""
    for p in sorted(set(payloads), key=len, reverse=True):
        if len(p) >= 3:
            output = re.sub(re.escape(p), "[removed]", output, flags=re.I)
    return output


def fence(label: str, text: str) -> str:
    """Wrap untrusted text as a labelled data block: <<<LABEL ... LABEL>>> (prompts summarize-v1/v2, reply-v1)."""
    text = text.replace("<<<", "< < <").replace(">>>", "> > >")
    return f"<<<{label}\n{text.strip()}\n{label}>>>"


def quote(title: str, text: str) -> str:
    """Wrap untrusted text as a titled block in triple quotes (prompts summarize-v3, reply-v2).

    The untrained 135M base echoes a <<<LABEL fence back ("<<<EMAIL" as a subject line, then
    "CUSTOMER>>>" without end) where triple quotes make it answer.
    """
    text = text.replace('"""', '" " "')
    return f'{title}:\n"""\n{text.strip()}\n"""'

