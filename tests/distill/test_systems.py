"""A system's answers are generated in a subprocess; off a terminal, its progress is a status line now and then."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


@pytest.mark.slow
def test_cached_answers_are_reused_only_for_the_same_prompt(tmp_path):
    """The 135M GGUF answers two prompts; a rerun asks nothing, and after one prompt changes under the same
    id, only that one is asked again (its new answer is the later line, which wins)."""
    import json

    from assistant import paths
    from distill.teach import load_done

    def ask(questions):
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"id": f"q{i}", "messages": [{"role": "user", "content": q}], "max_tokens": 6}) + "\n"
                                   for i, q in enumerate(questions)))
        subprocess.run([sys.executable, "-m", "distill.generate", str(paths.base_model_path()), str(prompts), str(out)],
                       check=True, capture_output=True)
        return out.read_text().splitlines()

    out = tmp_path / "answers.jsonl"
    assert len(ask(["Name a colour.", "Name a fruit."])) == 2
    assert len(ask(["Name a colour.", "Name a fruit."])) == 2
    lines = ask(["Name a colour.", "Count to three."])
    assert [json.loads(l)["id"] for l in lines] == ["q0", "q1", "q1"]
    assert load_done(out)["q1"]["key"] == json.loads(lines[-1])["key"] != json.loads(lines[1])["key"]
