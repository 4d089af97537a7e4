"""Read each input with each reader in a process of its own, and measure it: wall time, peak RSS, outcome.

    python -m tests.hostile.probe read_mail:x.eml documents:y.docx cli:x.eml   # one JSON line per job

One interpreter imports the readers once, then forks a child per job (a fresh interpreter per
job costs about 0.8 s on 2 busy cores; a fork costs milliseconds). The child's peak RSS comes
from wait4, so it is that job's own (its baseline is this interpreter, about 60 MB). A child that
outlives `TIMEOUT` is killed. Readers:

    read_mail      list(read_mail(path))
    parse_message  parse_message(bytes, path), regular files only (the reader never opens a FIFO)
    documents      read_file(path) and chunk_text on every Doc, as `assistant index add` does
    cli            `assistant mail show PATH`, its exit code and JSON lines
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import sys
import tempfile
import time
import traceback
from pathlib import Path

TIMEOUT = 30.0  # the tests ask for 10 s; this only stops a runaway child
SAFETY_NET = 6 << 30  # address space of a child, so a regression cannot take the machine down


def _read_mail(path: str) -> dict:
    from assistant.mail import MailError, read_mail

    items = list(read_mail(path))
    return {"read": sum(not isinstance(m, MailError) for m in items),
            "errors": [f"{m.path}: {m.error}" for m in items if isinstance(m, MailError)]}


def _parse_message(path: str) -> dict:
    from assistant.mail import MailError, parse_message

    if not stat.S_ISREG(os.stat(path).st_mode):
        return {"read": 0, "errors": [], "skipped": "not a regular file"}
    m = parse_message(Path(path).read_bytes(), path)
    return {"read": int(not isinstance(m, MailError)), "errors": [m.error] if isinstance(m, MailError) else []}


def _documents(path: str) -> dict:
    from assistant.documents import DocError, chunk_text, read_file

    docs, chunks, errors = 0, 0, []
    for d in read_file(Path(path)):
        if isinstance(d, DocError):
            errors.append(f"{d.path}: {d.error}")
        else:
            docs += 1
            chunks += len(chunk_text(d.text))
    return {"read": docs, "chunks": chunks, "errors": errors}


def _cli(path: str) -> dict:
    from assistant.cli import main

    sys.argv = ["assistant", "mail", "show", path]
    try:
        main()
    except SystemExit as e:
        sys.stdout.flush()
        os._exit(e.code if isinstance(e.code, int) else 1)
    return {}


READERS = {"read_mail": _read_mail, "parse_message": _parse_message, "documents": _documents, "cli": _cli}


def _child(reader: str, path: str, out: int, err: int) -> None:
    os.dup2(out, 1)
    os.dup2(err, 2)
    resource.setrlimit(resource.RLIMIT_AS, (SAFETY_NET, SAFETY_NET))
    try:
        result = READERS[reader](path)
        if reader != "cli":
            print(json.dumps(result))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    except BaseException:  # what an uncaught exception would print: the test looks for it
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def probe(reader: str, path: str) -> dict:
    """One job in a forked child: its exit code, seconds, peak RSS, stdout lines and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(reader, path, out.fileno(), err.fileno())
        while not (done := os.wait4(pid, os.WNOHANG))[0]:
            if time.monotonic() - start > TIMEOUT:
                os.kill(pid, signal.SIGKILL)
                done = os.wait4(pid, 0)
                break
            time.sleep(0.005)
        seconds = time.monotonic() - start
        out.seek(0), err.seek(0)
        lines = out.read().decode("utf-8", "replace").splitlines()
        size = os.stat(path).st_size if os.path.exists(path) else 0
        return {"reader": reader, "path": path, "size": size, "seconds": round(seconds, 3),
                "peak_rss": done[2].ru_maxrss * 1024, "exit": os.waitstatus_to_exitcode(done[1]),
                "lines": lines if reader == "cli" else [], "result": json.loads(lines[-1]) if reader != "cli" and lines else None,
                "stderr": err.read().decode("utf-8", "replace")[-4000:]}


def main(jobs: list[str]) -> None:
    import assistant.cli  # noqa: F401  import everything once, before the first fork
    import assistant.documents  # noqa: F401
    import email_reply_parser  # noqa: F401

    for job in jobs:
        reader, _, path = job.partition(":")
        print(json.dumps(probe(reader, path)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
