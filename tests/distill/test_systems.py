"""A system's answers are generated in a subprocess; off a terminal, its progress is a status line now and then."""

from __future__ import annotations

import subprocess
import sys

from distill import systems


def test_status_lines_count_the_answers_file_while_the_subprocess_runs(tmp_path, monkeypatch, capsys):
    prompts, answers = tmp_path / "prompts.jsonl", tmp_path / "answers.jsonl"
    prompts.write_text("{}\n" * 6)
    child = ("import sys, time\n"
             "for i in range(6):\n"
             f"    open({str(answers)!r}, 'a').write('{{}}\\n'); time.sleep(0.15)\n"
             "print('{\"decode_tok_s\": 1}')\n")
    monkeypatch.setattr(systems, "STATUS_EVERY", 0.2)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, _ = systems._wait(proc, "student", prompts, answers, status=True)
    lines = capsys.readouterr().err.splitlines()
    assert out.strip() == '{"decode_tok_s": 1}' and proc.returncode == 0
    assert len(lines) >= 2 and all(line.startswith("student: ") and "/6 answers (" in line for line in lines)
    counts = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # it moves
