"""`assistant config`: where the settings file lives, and what it holds."""

from __future__ import annotations

import click

from assistant.cli.base import cli


@cli.group()
def config():
    """The settings file (config.toml): per-task defaults, reply slots, runtime options.

    Example usage:

    \b
        assistant config path            # where it is ($ASSISTANT_HOME or the platform config dir)
        $EDITOR "$(assistant config path)"
    """


@config.command("path")
def config_path():
    """Print the path of config.toml (it need not exist yet)."""
    from assistant import paths

    click.echo(str(paths.config_file()))


@config.command("show")
def config_show():
    """Print the settings in effect (checked: a wrong type is a one-line error naming the key)."""
    import json

    from assistant.services import models

    click.echo(json.dumps(models.load_config(), indent=2, ensure_ascii=False))
