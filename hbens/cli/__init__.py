"""The ``hbens`` command line: thin click commands over the library, one module per command.

Commands that need no model import neither torch nor the model stack: each imports what it
needs inside its function.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Sequence

import click

from hbens.cli.clean import clean
from hbens.cli.crf import crf
from hbens.cli.demo import demo
from hbens.cli.fuse import fuse
from hbens.cli.importer import import_arrays
from hbens.cli.options import OUTPUTS
from hbens.cli.predict import predict
from hbens.cli.submissions import check, score, show
from hbens.cli.synth import synth
from hbens.cli.tune import apply, tune
from hbens.errors import HbensError, Stopped, UsageError
from hbens.outputs import WRITE_ERRNOS
from hbens.settings import clip

COMMANDS = (check, score, fuse, clean, predict, import_arrays, crf, tune, apply, show, synth, demo)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a command as Ctrl-C does (what ``timeout``, systemd, Slurm and Kubernetes send,
and a closed terminal); the exit status is 128 plus the signal's number (143, 129)."""

MESSAGE_LIMIT = 300
"""Longest error line printed (characters); longer ones are cut with a count of the rest."""


def _is_output(path: str, outputs: Sequence[str]) -> bool:
    """Whether ``path`` is a temporary of an atomic output, or is or lies in one of ``outputs``."""
    from hbens.paths import TEMPORARY

    target = Path(path)
    return bool(TEMPORARY.match(target.name)) or any(
        target.resolve().is_relative_to(Path(output).resolve()) for output in outputs)


def system_error(error: OSError, *, command: str, outputs: Sequence[str]) -> str:
    """``hbens CMD: cannot write PATH: reason`` (or ``cannot read``) for an error of the system, one line."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is None:
        return clip(f"hbens {command}: {reason}", limit=MESSAGE_LIMIT)
    path = str(error.filename)
    verb = "write" if error.errno in WRITE_ERRNOS or _is_output(path, outputs) else "read"
    return clip(f"hbens {command}: cannot {verb} {path}: {reason}", limit=MESSAGE_LIMIT)


class HbensGroup(click.Group):
    """A group that ends every command in one line, never a traceback.

    The API's :class:`~hbens.api.UsageError` (options that do not go together) is click's usage error,
    with exit status 2; HbensError (bad input, refused operation) is ``Error: ...`` with exit status 1; an error of the
    system (full disk, permission, not a folder) is ``hbens CMD: cannot write PATH: reason`` with
    exit status 1; Ctrl-C is ``hbens CMD: interrupted`` with exit status 130, SIGTERM and SIGHUP
    ``hbens CMD: stopped by SIGTERM`` with 143 and 129; a closed pipe on stdout ends quietly, as
    click does.  Temporary files
    are removed by the atomic writers on the way out, and output folders this run created and did
    not fill by :func:`hbens.paths.output_folders`.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as error:
            raise self.usage_error(ctx, error) from None
        except HbensError as error:
            raise click.ClickException(clip(str(error), limit=MESSAGE_LIMIT)) from None
        except BrokenPipeError:
            raise  # the reader of stdout has gone (``| head``): click ends quietly
        except OSError as error:
            outputs = ctx.meta.get(OUTPUTS, ())
            click.echo(system_error(error, command=ctx.invoked_subcommand, outputs=outputs), err=True)
            ctx.exit(1)
        except Stopped as stop:
            click.echo(f"hbens {ctx.invoked_subcommand}: stopped by {signal.Signals(stop.signum).name}", err=True)
            ctx.exit(128 + stop.signum)
        except KeyboardInterrupt:
            click.echo(f"hbens {ctx.invoked_subcommand}: interrupted", err=True)
            ctx.exit(130)

    def usage_error(self, ctx: click.Context, error: UsageError) -> click.UsageError:
        """Click's usage error (exit status 2, the command's usage line) of the API's :class:`~hbens.api.UsageError`."""
        name = ctx.invoked_subcommand
        command_ctx = click.Context(self.get_command(ctx, name), info_name=name, parent=ctx)
        if error.option:
            return click.BadParameter(error.message, ctx=command_ctx, param_hint=error.option)
        return click.UsageError(error.message, ctx=command_ctx)


@click.group(cls=HbensGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hbens")
def cli() -> None:
    """Ensembles and post-processing for hand-bone X-ray segmentation submissions."""


for command in COMMANDS:
    cli.add_command(command)


def _stop(signum: int, frame) -> None:
    """Turn a stop signal into :class:`~hbens.errors.Stopped` in the main thread; later ones are
    ignored while the command cleans up."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise Stopped(signum)


def main() -> None:
    """Entry point of the ``hbens`` script."""
    for number in STOP_SIGNALS:
        signal.signal(number, _stop)
    cli(prog_name="hbens")
