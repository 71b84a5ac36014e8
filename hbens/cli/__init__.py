"""The ``hbens`` command line: thin click commands over the library, one module per command.

Commands that need no model import neither torch nor the model stack: each imports what it
needs inside its function.
"""

from __future__ import annotations

import click

from hbens.cli.clean import clean
from hbens.cli.crf import crf
from hbens.cli.fuse import fuse
from hbens.cli.predict import predict
from hbens.cli.submissions import check, score, show
from hbens.cli.synth import synth
from hbens.cli.tune import apply, tune
from hbens.errors import HbensError

COMMANDS = (check, score, fuse, clean, predict, crf, tune, apply, show, synth)


class HbensGroup(click.Group):
    """A group that reports HbensError as one line and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HbensError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=HbensGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hbens")
def cli() -> None:
    """Ensembles and post-processing for hand-bone X-ray segmentation submissions."""


for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    """Entry point of the ``hbens`` script."""
    cli(prog_name="hbens")
