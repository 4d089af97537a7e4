"""Property-based tests: any bytes parse to a Message or a one-line MailError; any text chunks in order, bounded."""

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.documents import chunk_text
from assistant.mail import MailError, Message, html_to_text, parse_message

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# pieces of mail, so that the generator reaches the parser's structure and not only its first line
_LINES = [b"From: A <a@example.com>", b"Subject: =?utf-8?q?caf=C3=A9?= =?x-foo?b?AAA=?=", b"Subject: Re: AW: hi",
          b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: multipart/alternative; boundary=b",
          b"Content-Type: text/html; charset=x-foo", b"Content-Type: message/rfc822", b"Content-Type: text/plain; (((",
          b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
          b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9;;;;", b"In-Reply-To: <yes>", b"References: <a@b> <",
          b"--b", b"--b--", b"", b" folded", b"<div style='display:none'>x<div>", b"<!--", b"On Mon, x wrote:", b"> quoted",
          b"-- ", b"=?utf-8?b?", b"\xff\xfe\x00", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"From someone Mon Jun  2"]
mail_bytes = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.one_of(st.sampled_from(_LINES), st.binary(max_size=40)), max_size=40).map(b"\n".join),
)


@SETTINGS
@given(mail_bytes)
def test_parse_message_returns_message_or_one_line_error(raw):
    result = parse_message(raw, "x.eml")
    assert isinstance(result, (Message, MailError))
    if isinstance(result, MailError):
        assert result.path == "x.eml" and result.error and "\n" not in result.error
    json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")  # printable: no lone surrogates


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("<>/!-?=\"' abcdivpstyle:none;#fff\n&")), max_size=500))
def test_html_to_text_never_raises(html):
    assert isinstance(html_to_text(html), str)


_text = st.text(alphabet=st.one_of(st.sampled_from(list("ab .!?\n\n  \t#=-")), st.characters()), max_size=3000)


@SETTINGS
@given(_text, st.integers(1, 60), st.integers(0, 40), st.integers(8, 400))
def test_chunks_cover_the_text_in_order_within_bounds(text, target, extra, max_chars):
    hard_max = target + extra
    chunks = chunk_text(text, target=target, hard_max=hard_max, min_words=min(10, target), max_chars=max_chars)
    assert re.sub(r"\s+", "", "".join(chunks)) == re.sub(r"\s+", "", text)
    for c in chunks:
        assert c.strip() and len(c.split()) <= hard_max and len(c) <= max_chars


@SETTINGS
@given(_text)
def test_chunks_with_default_bounds(text):
    chunks = chunk_text(text * 20)
    assert all(len(c.split()) <= 250 and len(c) <= 2000 for c in chunks)
    assert re.sub(r"\s+", "", "".join(chunks)) == re.sub(r"\s+", "", text * 20)
