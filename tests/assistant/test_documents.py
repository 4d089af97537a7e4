"""Documents: bounded reading (zip bombs, huge files, FIFOs, symlink loops) and a chunker that always splits."""

import re
from pathlib import Path

import pytest

from assistant import documents
from assistant.documents import Doc, DocError, chunk_text, files_under, read_file
from tests.hostile import bombs


def _read(path: Path, seconds: float = 10.0) -> tuple[list[Doc], list[str]]:
    """read_file, failing instead of hanging (a FIFO once blocked the reader)."""
    with bombs.within(seconds):
        items = list(read_file(path))
    return [d for d in items if isinstance(d, Doc)], [e.error for e in items if isinstance(e, DocError)]


def _bounded(chunks: list[str], words: int = 250, chars: int = 2000) -> bool:
    return all(c.strip() and len(c.split()) <= words and len(c) <= chars for c in chunks)


def test_zip_bomb_docx_refused_unread(tmp_path):
    # 333 KB holding 103 MB of XML drove `index add` to 2.1 GB
    docs, errors = _read(bombs.make_zip_bomb_docx(tmp_path))
    assert docs == [] and len(errors) == 1 and "zip bomb" in errors[0]


def test_docx_whose_zip_header_lies_is_an_error(tmp_path):
    docs, errors = _read(bombs.make_lying_docx(tmp_path))  # claims 1,000 bytes, unpacks to 8 MB
    assert docs == [] and len(errors) == 1 and "\n" not in errors[0]


def test_docx_paragraphs_and_tables_streamed(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("Refunds take five days.")
    d.add_table(rows=1, cols=2).rows[0].cells[1].text = "Cell text"
    d.save(tmp_path / "kb.docx")
    [doc], errors = _read(tmp_path / "kb.docx")
    assert errors == [] and "Refunds take five days." in doc.text and "Cell text" in doc.text


def test_one_huge_line_is_capped_and_chunked(tmp_path):
    # a 20 MB single-line .txt was one chunk of 20 M characters and peaked at 3 GB in `index add`
    [doc], errors = _read(bombs.make_one_line_txt(tmp_path, 20))
    assert len(doc.text) == documents.MAX_TEXT_CHARS and doc.meta == {"truncated": True}
    assert errors == [f"too long: only the first {documents.MAX_TEXT_CHARS:,} characters were read"]
    chunks = chunk_text(doc.text)
    assert len(chunks) > 1000 and _bounded(chunks)


def test_chunker_falls_back_to_sentences_whitespace_characters():
    sentences = " ".join(f"Sentence {i} has five words." for i in range(200))  # one paragraph, 1,000 words
    chunks = chunk_text(sentences)
    assert _bounded(chunks) and all(c.endswith(".") for c in chunks)
    no_stops = "word " * 1000  # no sentence ends: cut at whitespace
    assert _bounded(chunk_text(no_stops)) and len(chunk_text(no_stops)) >= 5
    one_word = "x" * 10_000  # no whitespace (or CJK text): cut by characters
    assert [len(c) for c in chunk_text(one_word)] == [2000] * 5
    assert "".join(chunk_text("# Title\n\n" + one_word)).replace("\n", "").replace("# Title", "") == one_word


def test_nested_html_document_is_linear(tmp_path):
    [doc], errors = _read(bombs.make_nested_html_doc(tmp_path, 100_000))  # 300 s with bs4, no output
    assert doc.text == "deep text" and errors == []
    [doc], _ = _read(bombs.make_tag_soup(tmp_path))
    assert doc.text.startswith("start")


def test_special_files_are_errors(tmp_path):
    docs, errors = _read(bombs.make_fifo(tmp_path))  # never opened
    assert docs == [] and errors == ["not a regular file: a FIFO"]
    (tmp_path / "notes.txt").symlink_to(tmp_path / "notes.txt")
    assert _read(tmp_path / "notes.txt") == ([], ["symlink loop"])
    assert _read(Path("/dev/null")) == ([], ["not a regular file: a device or socket"])
    listed = [p.name for p in files_under(tmp_path)]
    assert "notes.txt" in listed and "fifo.eml" not in listed  # so `index add` reports the loop


def test_long_jsonl_line_skipped_the_rest_read(tmp_path):
    docs, errors = _read(bombs.make_long_jsonl(tmp_path))
    assert [d.text for d in docs] == ["id: a\ntext: first", "id: b\ntext: last"]
    assert len(errors) == 1 and "line longer than" in errors[0]


def test_mail_errors_come_back_as_doc_errors(tmp_path):
    docs, errors = _read(bombs.make_outlook_msg(tmp_path))
    assert docs == [] and errors == ["unsupported format: Outlook .msg (OLE2 compound file)"]


@pytest.mark.parametrize("make", [bombs.make_header_bomb, bombs.make_nested_mime, bombs.make_part_header_bomb])
def test_mail_bombs_index_as_one_document(tmp_path, make):
    [doc], errors = _read(make(tmp_path))
    assert errors == [] and _bounded(chunk_text(doc.text))
    assert re.match(r"From: a@example.com\nDate: ", doc.text)


def test_markdown_front_matter_is_search_terms_not_text(tmp_path):
    page = tmp_path / "refund.md"
    page.write_text("---\ntitle: Refunds\nquestions:\n  - Where is my money back?\n  - 'Refund: how long?'\n"
                    "tags: [billing, 7]\n---\n# Refund Status\n\nCheck the refund in the order system.\n")
    docs, errors = _read(page)
    assert not errors and len(docs) == 1
    assert docs[0].title == "Refunds"
    assert docs[0].text.startswith("# Refund Status") and "questions" not in docs[0].text
    assert set(docs[0].terms.splitlines()) == {"Where is my money back?", "Refund: how long?", "billing", "7"}
    # a byte-order mark before it, a yes/no tag, and many questions: read, bounded, the text still clean
    page.write_text("\ufeff---\ntags: [yes]\nquestions:\n" + "".join(f"  - Question {i}?\n" for i in range(500))
                    + "---\n# Refund Status\n", encoding="utf-8")
    docs, errors = _read(page)
    assert not errors and docs[0].text == "# Refund Status\n" and docs[0].title == "Refund Status"
    assert docs[0].terms.startswith("Question 0?") and len(docs[0].terms) <= documents.MAX_TERMS_CHARS


@pytest.mark.parametrize("head", ["---\n- a list\n- not a mapping\n---\n", "---\nquestions: [unclosed\n---\n",
                                  "---\nno closing line\n", "---\n!!python/object:os.system {}\n---\n",
                                  "---\nNote: this page replaces the old refund page\n---\n",  # a rule, not front matter
                                  "---\nquestions: " + "[" * 2000 + "\n---\n"])  # RecursionError inside the parser
def test_front_matter_that_is_not_plain_mapping_stays_text(tmp_path, head):
    page = tmp_path / "p.md"
    page.write_text(head + "# Page\n\nBody text.\n")
    docs, errors = _read(page)
    assert not errors and docs[0].text.startswith("---") and docs[0].terms == ""
    txt = tmp_path / "p.txt"  # front matter is a Markdown convention: a .txt keeps its lines as text
    txt.write_text("---\nquestions: [a]\n---\nBody.\n")
    assert _read(txt)[0][0].text.startswith("---\nquestions")
