"""An OpenAI-compatible teacher off this machine is refused unless the config says the data may leave it."""

from __future__ import annotations

import pytest

from distill.config import TeachConfig
from distill.teach import OpenAITeacher


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://10.0.0.5:8000/v1", "http://127.0.0.1.example.net/v1"])
def test_a_remote_server_is_refused_without_allow_remote(url):
    with pytest.raises(ValueError, match="not on this machine"):
        OpenAITeacher("qwen", url, TeachConfig(teacher="openai:qwen", base_url=url))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"])
def test_loopback_servers_are_accepted(url):
    assert OpenAITeacher("qwen", url, TeachConfig(teacher="openai:qwen", base_url=url)).name == "qwen"


def test_allow_remote_accepts_with_a_warning(capsys):
    url = "https://api.example.com/v1"
    OpenAITeacher("qwen", url, TeachConfig(teacher="openai:qwen", base_url=url, allow_remote=True))
    assert "leaves this machine" in capsys.readouterr().err
