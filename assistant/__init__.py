"""distilled-assistant: small local students for email summaries and support replies.

The runtime (`assistant`) runs GGUF students on the CPU through llama-cpp-python;
the training side lives in the separate `distill` package.
"""

__version__ = "0.1.0"


class AssistantError(Exception):
    """An error with a one-line message meant for the user (the CLI prints it, the TUI notifies it)."""

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__(message)
        self.title = title
