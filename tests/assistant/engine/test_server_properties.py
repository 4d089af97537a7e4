"""The server's request checks never raise, whatever the client sends: a body is passed on or refused
with a 4xx and one short line (no traceback, no file path), and any headers get an answer."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.engine import server

GUARD = server._Guard(app=None, hosts={"127.0.0.1", "localhost", "[::1]"}, api_key="k3y", models=["m1", "m2"],
                      log=lambda line: None)
PATHS = sorted(GUARD.bodies)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                    max_leaves=20)
FIELDS = st.dictionaries(st.sampled_from(["model", "messages", "prompt", "max_tokens", "temperature", "stream", "stop",
                                          "input", "tokens", "n", "seed", "logit_bias"]), JSON, max_size=6)


def _check(refusal, body):
    if refusal is None:
        json.loads(body)  # what the routes get is JSON
        return
    status, message = refusal[0], refusal[1]
    assert 400 <= status < 500 and "\n" not in message and "Traceback" not in message and "/work" not in message


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), st.binary(max_size=2000))
def test_any_bytes_are_passed_on_or_refused_with_a_4xx(path, body):
    _check(*GUARD.checked_body(path, body))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), FIELDS)
def test_any_json_object_is_passed_on_or_refused_with_a_4xx(path, fields):
    _check(*GUARD.checked_body(path, json.dumps(fields).encode()))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=20), st.binary(max_size=60)), max_size=6))
def test_any_headers_get_an_answer(headers):
    refusal = GUARD.refusal({"headers": headers})
    assert refusal is None or refusal[0] in (400, 401, 403)
