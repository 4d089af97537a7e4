"""Hostile inputs built at test time, so the repository stays small: each `make_*` writes one file
(or FIFO, or symlink loop) under a folder and returns its path.

    python -m tests.hostile.bombs hostile-out      # write them all, to try a reader by hand

README.md in this folder says what each one reproduces.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

HEAD = b"From: a@example.com\nTo: b@example.com\nDate: Mon, 2 Jun 2025 10:00:00 +0000\n"


@contextlib.contextmanager
def within(seconds: float = 10.0) -> Iterator[None]:
    """Fail a block that runs longer than `seconds` (the old readers took minutes, or hung on a FIFO).

    SIGALRM, as pytest-timeout's signal method uses: its timer is put back, less the time spent here.
    """
    def alarm(*_):
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 0.001), interval)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_header_bomb(folder: Path, words: int = 16_000) -> Path:
    """A Subject of `words` RFC 2047 encoded words (CPython's header parser is quadratic in them)."""
    subject = b" ".join(b"=?utf-8?q?ab?=" for _ in range(words))
    return _write(folder / f"header-bomb-{words}.eml", HEAD + b"Subject: " + subject + b"\n\nbody survives\n")


def make_many_headers(folder: Path, count: int = 40_000) -> Path:
    """Tens of thousands of small headers: no single header is long, the block is."""
    headers = b"".join(b"X-H%d: =?utf-8?q?v?= =?utf-8?q?w?=\n" % i for i in range(count))
    return _write(folder / "many-headers.eml", HEAD + headers + b"Subject: many\n\nbody survives\n")


def make_nested_mime(folder: Path, depth: int = 2_000) -> Path:
    """multipart/mixed nested `depth` deep (RecursionError in the walk and the parser)."""
    out = [HEAD, b"Subject: nested\n"]
    for i in range(depth):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i))
    out.append(b"Content-Type: text/plain\n\ninnermost text\n")
    out.extend(b"--b%d--\n" % i for i in reversed(range(depth)))
    return _write(folder / f"nested-mime-{depth}.eml", b"".join(out))


def nested_html(depth: int) -> str:
    return "<html><body>" + "<div>" * depth + "deep text" + "</div>" * depth + "</body></html>"


def make_nested_html_mail(folder: Path, depth: int = 100_000) -> Path:
    body = nested_html(depth).encode()
    return _write(folder / f"nested-html-{depth}.eml", HEAD + b"Subject: html\nContent-Type: text/html\n\n" + body)


def make_nested_html_doc(folder: Path, depth: int = 100_000) -> Path:
    return _write(folder / f"nested-html-{depth}.html", nested_html(depth).encode())


_CONTENT_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>')


def make_zip_bomb_docx(folder: Path, megabytes: int = 103, name: str = "zip-bomb.docx") -> Path:
    """A .docx of a few hundred KB whose document.xml inflates to `megabytes` MB."""
    path = folder / name
    para = b"<w:p><w:r><w:t>" + b"A" * 1000 + b"</w:t></w:r></w:p>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                    b'wordprocessingml/2006/main"><w:body>')
            block = para * 1000  # about 1 MB
            for _ in range(megabytes):
                f.write(block)
            f.write(b"</w:body></w:document>")
    return path


def make_one_line_txt(folder: Path, megabytes: int = 20) -> Path:
    """One line of `megabytes` MB: no paragraph, sentence or line breaks."""
    path = folder / "one-line.txt"
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(b"lorem ipsum " * ((1 << 20) // 12) + b"dolor ")
    return path


def make_one_word_txt(folder: Path, megabytes: int = 5) -> Path:
    """No whitespace at all: the chunker must cut by characters."""
    return _write(folder / "one-word.txt", b"x" * (megabytes << 20))


def make_nul_file(folder: Path, size: int = 1 << 20) -> Path:
    return _write(folder / "nul.eml", b"\0" * size)


def make_random_bytes(folder: Path, size: int = 1 << 20) -> Path:
    return _write(folder / "random.eml", random.Random(0).randbytes(size))


def make_fifo(folder: Path) -> Path:
    path = folder / "fifo.eml"
    os.mkfifo(path)
    return path


def make_symlink_loop(folder: Path) -> Path:
    """A folder holding a file-symlink loop (a → b → a) and a folder symlink to itself."""
    loop = folder / "symlink-loop"
    loop.mkdir()
    (loop / "a.eml").symlink_to(loop / "b.eml")
    (loop / "b.eml").symlink_to(loop / "a.eml")
    (loop / "self").symlink_to(loop, target_is_directory=True)
    (loop / "ok.eml").write_bytes(HEAD + b"Subject: ok\n\nfine\n")
    return loop


def make_unknown_charset(folder: Path) -> Path:
    body = b"Caf\xe9 au lait, \xe2\x82\xac 3"
    return _write(folder / "unknown-charset.eml",
                  HEAD + b"Subject: =?x-foo?q?caf=E9?=\nContent-Type: text/plain; charset=x-foo\n\n" + body + b"\n")


def make_outlook_msg(folder: Path) -> Path:
    """The OLE2 compound-file magic an Outlook .msg starts with, then filler."""
    return _write(folder / "outlook.msg", bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504 + b"S\0u\0b\0j\0" * 400)


def make_double_plain(folder: Path) -> Path:
    """multipart/alternative with two text/plain parts: a reader should take one."""
    return _write(folder / "double-plain.eml", HEAD + (
        b'Subject: twice\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="x"\n\n'
        b"--x\nContent-Type: text/plain\n\nFirst rendering.\n"
        b"--x\nContent-Type: text/plain\n\nSecond rendering.\n--x--\n"))


def make_reply_regex_bomb(folder: Path, count: int = 2_000) -> Path:
    """10 KB of "On x ": email-reply-parser's multi-line "On … wrote:" regex is cubic in them (92 s)."""
    return _write(folder / "reply-regex-bomb.eml", HEAD + b"Subject: on\n\n" + b"On x " * count + b"\n")


def make_reply_fragments(folder: Path, count: int = 50_000) -> Path:
    """Alternating header-like and plain lines: the reply parser re-marked every earlier fragment each time."""
    return _write(folder / "reply-fragments.eml", HEAD + b"Subject: frags\n\n" + b"From: x\nhello\n" * count)


def make_part_header_bomb(folder: Path) -> Path:
    """Hostile headers inside MIME parts, where no top-level cap reaches: 60,000 semicolons in a
    Content-Disposition, 5,000 nested comments in a Content-Type (a RecursionError in the header
    parser), and ten parts whose 16 KB Content-Transfer-Encoding took the parser 1.8 s each."""
    cte = b"".join(b'--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: ' + b'"' * 16_000 + b"\n\nAA\n"
                   for _ in range(10))
    return _write(folder / "part-header-bomb.eml", HEAD + (
        b'Subject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="x"\n\n'
        b"--x\nContent-Type: text/plain\n\nvisible text\n"
        b"--x\nContent-Type: application/pdf\nContent-Disposition: attachment" + b";" * 60_000 + b"\n\nAAAA\n" + cte +
        b"--x\nContent-Type: text/plain; charset=utf-8 " + b"(" * 5_000 + b"\n\nmore text\n--x--\n"))


def make_address_bomb(folder: Path) -> Path:
    """16 KB of quotes in To and of backslashes in Cc: policy.default's address parser is quadratic (7 s, 3 s)."""
    return _write(folder / "address-bomb.eml", b"From: a@example.com\nTo: " + b'"' * 16_000 + b"\nCc: " + b"\\" * 16_000 +
                  b"\nSubject: addresses\n\nbody survives\n")


def make_many_parts(folder: Path, count: int = 100_000) -> Path:
    """100,000 tiny MIME parts (4 MB): policy.default parses each Content-Type five times (72 s)."""
    parts = b"--x\nContent-Type: application/octet-stream\n\nA\n" * count
    return _write(folder / "many-parts.eml", HEAD + b'Subject: many\nContent-Type: multipart/mixed; boundary="x"\n\n'
                  b"--x\nContent-Type: text/plain\n\nfirst part\n" + parts + b"--x--\n")


def make_tag_soup(folder: Path, count: int = 100_000) -> Path:
    """Unclosed tags, comments and declarations: quadratic (or an AssertionError) in Python 3.11's html.parser."""
    html = b"<p>start</p>" + b"<a" * count + b"<!--" * (count // 4) + b"<![" * count
    return _write(folder / "tag-soup.html", html)


def make_lying_docx(folder: Path) -> Path:
    """A .docx whose zip headers claim document.xml is 1,000 bytes; it unpacks to 8 MB."""
    path = make_zip_bomb_docx(folder, 8, "lying-size.docx")
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        start = 0
        while (start := data.find(sig, start)) >= 0:
            name_len = int.from_bytes(data[start + (26 if sig == b"PK\x03\x04" else 28):][:2], "little")
            name_at = start + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at:name_at + name_len] == b"word/document.xml":
                data[start + offset:start + offset + 4] = (1000).to_bytes(4, "little")
            start += 4
    path.write_bytes(bytes(data))
    return path


def make_long_jsonl(folder: Path) -> Path:
    """A JSONL export with one 3 MB line between two good rows."""
    line = json.dumps({"id": "big", "text": "x" * (3 << 20)}).encode()
    return _write(folder / "long-line.jsonl", b'{"id": "a", "text": "first"}\n' + line + b'\n{"id": "b", "text": "last"}\n')


def make_raw_8bit_headers(folder: Path) -> Path:
    """Undecodable 8-bit bytes in headers and a filename: no lone surrogates may reach the output."""
    return _write(folder / "raw-8bit.eml", b"From: Jos\xe9 <j@example.com>\nSubject: caf\xe9 \xff\xfe\n"
                  b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="x"\n\n--x\nContent-Type: text/plain\n\n'
                  b"body \xe9\n--x\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"r\xe9sum\xe9.pdf\"\n\n"
                  b"AAAA\n--x--\n")


BUILDERS = [make_header_bomb, make_many_headers, make_nested_mime, make_nested_html_mail, make_nested_html_doc,
            make_zip_bomb_docx, make_one_line_txt, make_one_word_txt, make_nul_file, make_random_bytes, make_fifo,
            make_symlink_loop, make_unknown_charset, make_outlook_msg, make_double_plain, make_reply_regex_bomb,
            make_reply_fragments, make_part_header_bomb, make_tag_soup, make_lying_docx, make_long_jsonl,
            make_raw_8bit_headers, make_address_bomb, make_many_parts]


def build_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [build(folder) for build in BUILDERS]


if __name__ == "__main__":
    for p in build_all(Path(sys.argv[1])):
        print(p)
