"""What the `assistant` and `distill` commands share: no network, and one-line errors.

Expected errors (AssistantError, and what a group adds to `errors`) print one line. Anything else
is a bug: it prints one line too, the traceback goes to `errors.log` in the data dir, and
`--debug` (before or after the command) or ASSISTANT_DEBUG=1 prints it. Ctrl-C exits 130 quietly.
Click's own exceptions (usage errors, ClickException, Exit, Abort) pass through unchanged.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import traceback
from pathlib import Path

import click

from assistant import AssistantError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")
DEBUG_VAR = "ASSISTANT_DEBUG"
ERROR_LOG = "errors.log"
ERROR_LOG_MAX = 1 << 20  # past 1 MB the log starts over (the previous one is kept as errors.log.1)


def stay_offline() -> None:
    """The default commands never touch the network: no hub downloads, no telemetry."""
    for var in OFFLINE_VARS:
        os.environ.setdefault(var, "1")


def debugging(ctx: click.Context | None = None) -> bool:
    """True with `--debug` on this command line or ASSISTANT_DEBUG set (to anything but 0/false/no)."""
    if ctx is not None and ctx.meta.get(DEBUG_VAR):
        return True
    return os.environ.get(DEBUG_VAR, "").strip().lower() not in ("", "0", "false", "no")


class ErrorGroup(click.Group):
    """Turns the expected errors into a one-line message and a non-zero exit, never a traceback."""

    errors: tuple[type[Exception], ...] = (AssistantError,)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                                        callback=_set_debug, help=f"Print the traceback of an unexpected error "
                                                                  f"(also {DEBUG_VAR}=1)."))

    def main(self, args=None, prog_name=None, **kwargs) -> object:
        args = list(sys.argv[1:] if args is None else args)
        self._command_line = shlex.join([prog_name or self.name or "", *args])
        # `--debug` after the command is the group's flag too (no command has its own): moved to the front
        cut = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:cut]:
            args = ["--debug"] + [a for a in args[:cut] if a != "--debug"] + args[cut:]
        return super().main(args, prog_name, **kwargs)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except self.errors as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as e:
            log = _log_traceback(getattr(self, "_command_line", shlex.join(sys.argv)))
            if debugging(ctx):
                traceback.print_exc()
            what = ": ".join([type(e).__name__, *(str(e).strip().splitlines() or [])[:1]])
            where = [f"traceback in {log}"] if log else []
            hint = [] if debugging(ctx) else [f"--debug or {DEBUG_VAR}=1 prints it"]
            click.echo(f"error: {what} ({'; '.join(where + hint) or 'unexpected'})", err=True)
            raise click.exceptions.Exit(1) from None


def _set_debug(ctx: click.Context, param, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_VAR] = True


def _log_traceback(command_line: str) -> Path | None:
    """Append the current exception's traceback, with the time and command line, to errors.log."""
    from assistant import paths

    try:
        log = paths.data_dir() / ERROR_LOG
        if log.exists() and log.stat().st_size > ERROR_LOG_MAX:
            log.replace(log.with_name(ERROR_LOG + ".1"))
        with open(log, "a", encoding="utf-8", errors="replace") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {command_line}\n{traceback.format_exc()}\n")
        return log
    except (OSError, AssistantError):  # a data dir we cannot write must not hide the error itself
        return None
