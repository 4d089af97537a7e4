"""The `assistant` command: summaries, support replies and chat with small local models.

    assistant                               open the terminal app
    assistant summarize ~/Mail/INBOX --length line --json
    echo "My parcel never arrived" | assistant reply -
    assistant prompt "Write a haiku about inboxes"
"""

from __future__ import annotations

from assistant.cli import chat, config, digest, feedback, index, mail, models, run, serve  # noqa: F401  each registers its commands
from assistant.cli.base import cli


def main() -> None:  # also `python -m assistant.cli`
    cli(prog_name="assistant")


if __name__ == "__main__":
    main()
