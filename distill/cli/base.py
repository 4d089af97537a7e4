"""The `distill` click group and what its commands share: the config argument, loading it, one-line errors.

Commands live in one module per stage group (data, train, evaluate, ship, run) and register
themselves on `cli`; `distill.cli` imports them all and defines `main`.
"""

from __future__ import annotations

import click

from assistant import AssistantError
from assistant.clickutil import ErrorGroup, stay_offline

stay_offline()


def load(config: str, overrides: tuple[str, ...]):
    """The validated config, or a one-line error naming the file."""
    from distill.config import load_config

    try:
        return load_config(config, overrides)
    except (ValueError, OSError) as e:
        raise click.ClickException(f"{config}: {e}") from None


config_arg = click.argument("config", type=click.Path(exists=True, dir_okay=False))
overrides_arg = click.argument("overrides", nargs=-1)


class Command(click.Command):
    """A stage command: when an input is missing, the error names the stage to run on this very config."""

    def invoke(self, ctx):
        from distill.layout import MissingInput

        try:
            return super().invoke(ctx)
        except MissingInput as e:
            raise click.ClickException(e.message(ctx.params.get("config") or "CONFIG")) from None


class Group(ErrorGroup):
    errors = (AssistantError, ValueError)  # distill's stages report bad configs and data as ValueError
    command_class = Command


@click.group(cls=Group)
@click.version_option(package_name="distilled-assistant", prog_name="distill")
def cli():
    """Distill a large teacher into a small student for one narrow job, on a CPU.

    Every command takes a config (see configs/*.toml) and optional key=value overrides,
    e.g. `distill train configs/summarize.toml train.max_steps=50`.
    """
