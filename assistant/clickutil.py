"""What the `assistant` and `distill` commands share: no network, and one-line errors."""

from __future__ import annotations

import os

import click

from assistant import AssistantError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")


def stay_offline() -> None:
    """The default commands never touch the network: no hub downloads, no telemetry."""
    for var in OFFLINE_VARS:
        os.environ.setdefault(var, "1")


class ErrorGroup(click.Group):
    """Turns the expected errors into a one-line message and a non-zero exit, never a traceback."""

    errors: tuple[type[Exception], ...] = (AssistantError,)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except self.errors as e:
            raise click.ClickException(str(e)) from None
