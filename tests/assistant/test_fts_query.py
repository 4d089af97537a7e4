"""Any text a user types becomes a query SQLite FTS5 accepts: the history search (store) and BM25 (index).

Both run the query for real, against an index and a history on disk with a few rows in them.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant import index
from assistant.index import Index
from assistant.services import store

# FTS5 syntax, and what breaks strings: quotes, NUL, lone surrogates (undecodable bytes in argv)
SYNTAX = ['"', "'", "NEAR(", "NEAR/2", ")", "(", "*", "^", "-", "+", ":", "title:", "text:", "prompt:", "{title text}:",
          "AND", "OR", "NOT", "\x00", "\ud800", "\udcff", "é", "𝔘", "\u200b", "\n", " "]
ANY_CHAR = st.characters(exclude_categories=())  # surrogates included
QUERIES = st.one_of(st.text(ANY_CHAR), st.lists(st.sampled_from(SYNTAX) | st.text(ANY_CHAR, max_size=4)).map("".join))

ATTACKS = [
    "", " ", '"', '""', '"""', "'", "*", "^", "-", "+", "(", ")", ":", "NEAR", "NEAR(", "NEAR(a b", "NEAR(a b, 2)",
    "a NEAR/3 b", "AND", "OR", "NOT", "a AND", "OR b", "NOT NOT", "a OR OR b", "title:refund", "text : x",
    "{title text}: refund", "-title:x", "^refund", "refund*", "*refund", "re*fund", '"unterminated', 'a"b"c',
    "refund\x00drop table", "\x00", "\ud800", "caf\udce9", "naïve café ✓ 退款 🙂", "ǅ ﬁ İ", "a" * 10_000,
    " ".join(f"w{i}" for i in range(5_000)), "x " * 20_000, "(((((((((((((((((((((", "a:b:c:d", "col1:a col2:b",
    "\\", "%", "_", "';--", "\t\r\n\v\f", "\u2028\u2029", "\ufeff", "\U0010ffff",
]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    db = store.connect(tmp_path_factory.mktemp("logs") / "logs.db")
    store.log_response(db, model="m", kind="chat", prompt="How do I get a refund?", response="Refunds take 5 days.")
    return db


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    (folder / "refund.md").write_text("# Refunds\n\nA refund takes five working days after we receive the item.")
    i = Index.open(folder / "index.db")
    i.add([folder], "kb")
    return i


def check(history, idx, query: str) -> None:
    store.search_logs(history, query, 5)
    idx.lexical(query, "kb", 5)
    idx.lexical(query, "kb", 5, phrases=True)


@settings(max_examples=300, deadline=None)
@given(QUERIES)
def test_any_text_is_a_valid_fts5_query(history, idx, query):
    check(history, idx, query)


@pytest.mark.parametrize("query", ATTACKS, ids=range(len(ATTACKS)))
def test_attack_queries_run_and_words_still_match(history, idx, query):
    check(history, idx, query)


def test_words_survive_the_quoting():
    assert store.fts_query('say "hi" NEAR(x)') == '"say" """hi""" "NEAR(x)"'
    assert store.fts_query("a\x00b \ud800") == '"a" "b" "?"'
    assert index.fts_query("NEAR(refund, days)*") == '"near" OR "refund" OR "days"'


def test_matches_are_found_through_the_syntax(history, idx):
    assert store.search_logs(history, 'refund? "NEAR"', 5) == []  # AND: "near" is not in the history
    assert len(store.search_logs(history, 'refund?', 5)) == 1
    assert idx.lexical("refund* AND title:", "kb", 5)
    assert idx.search("^refund NOT", "kb", 3, mode="lexical")
