"""render_chat: a model's chat template is untrusted code; it renders within bounds or is refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assistant import AssistantError, paths
from assistant.engine import registry
from assistant.engine.gguf_check import read_header
from assistant.engine.models import ChatTemplateRefused, render_chat
from tests.assistant.engine.ggufs import NESTED_RANGES, UNSAFE, with_template

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello " * 500}]

HOSTILE = {
    "nested ranges": NESTED_RANGES,
    "nested loops over content": "{% for m in messages %}{% for a in m.content %}{% for b in m.content %}"
                                 "{% for c in m.content %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
    "huge range": "{% for a in range(10**8) %}{% endfor %}",
    "string repeat": "{{ 'a' * 1000000000 }}",
    "list repeat": "{{ (messages * 100000000)|length }}",
    "doubling with ~": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "doubling with +": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "wide filter": "{{ 'a'|center(1000000000) }}",
    "wide method": "{{ 'a'.ljust(1000000000) }}",
    "wide % format": "{{ '%01000000000d' % 1 }}",
    "wide str.format": "{{ '{:>1000000000}'.format(1) }}",
    "big power": "{{ 7 ** 100000000 }}",
    "recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "output flood": "{% for i in range(100000) %}{{ messages|tojson }}{% endfor %}",
    "lipsum loop": "{% for i in range(100000) %}{{ lipsum(100) }}{% endfor %}",
    "unsafe attribute": UNSAFE,
    "unsafe globals": "{{ cycler.__init__.__globals__ }}",
    "mutation": "{{ messages.append(1) }}",
}


def _plain(template: str, messages: list[dict]) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True, bos_token="", eos_token="")


def test_real_template_renders_as_before():
    """The bounds change nothing for a real template: distill trains on these exact prompts."""
    template = read_header(paths.base_model_path()).metadata["tokenizer.chat_template"]
    assert render_chat(template, MESSAGES) == _plain(template, MESSAGES)
    long_chat = [{"role": r, "content": f"turn {i} " * 200} for i in range(200) for r in ("user", "assistant")]
    assert render_chat(template, long_chat) == _plain(template, long_chat)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_template_is_refused_in_bounded_time(name):
    threads, trace = threading.active_count(), sys.gettrace()
    start = time.monotonic()
    with pytest.raises(ChatTemplateRefused) as e:
        render_chat(HOSTILE[name], MESSAGES)
    assert time.monotonic() - start < 10
    message = str(e.value)
    assert message.startswith("the model's chat template was refused") and "\n" not in message, message
    assert threading.active_count() == threads and sys.gettrace() is trace  # nothing left running or traced


@pytest.mark.parametrize("template,expect", [
    ("{% for %}", "the model's chat template is invalid: "),
    ("{{ raise_exception('roles must alternate\nuser/assistant') }}", "chat template: roles must alternate"),
    ("{{ foo.bar }}", "the model's chat template failed: UndefinedError"),
])
def test_broken_template_is_one_line(template, expect):
    with pytest.raises(AssistantError) as e:
        render_chat(template, MESSAGES)
    assert str(e.value).startswith(expect) and "\n" not in str(e.value)
    assert not isinstance(e.value, ChatTemplateRefused)


@pytest.mark.slow
@pytest.mark.parametrize("template", [NESTED_RANGES, UNSAFE], ids=["nested-ranges", "unsafe"])
def test_prompt_with_hostile_model_fails_in_one_line(tmp_path, user_home, template):
    """`assistant prompt` hung on the nested loops and printed a 40-line SecurityError on the unsafe one."""
    registry.add_model(with_template(tmp_path / "hostile.gguf", template), "hostile")
    env = {**os.environ, "ASSISTANT_HOME": str(user_home)}
    r = subprocess.run([sys.executable, "-m", "assistant", "prompt", "hi", "--model", "hostile", "--no-log"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("Error: the model's chat template was refused") and r.stderr.count("\n") == 1, r.stderr
