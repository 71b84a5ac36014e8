"""``hbens clean``: connected-component cleaning of a submission."""

from __future__ import annotations

import click

from hbens.cli.options import (
    clean_options,
    cleanup_from_options,
    execution_from_options,
    execution_options,
    existing_file,
    finish,
    guard_paths,
    frame_hints,
    image_size_option,
)
from hbens.paths import CSV


@click.command()
@click.argument("submission", type=existing_file)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Cleaned submission CSV.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@image_size_option
@execution_options
@clean_options(config_flags=("--config", "--clean-config"))
@frame_hints
def clean(submission, output, quiet, shape, workers, scheduler, keep_going, report, **options) -> None:
    """Clean SUBMISSION's masks: small components, largest components, holes."""
    guard_paths(reads=[("SUBMISSION", submission), ("--config", options["clean_config"])],
                writes=[("-o", output, CSV), ("--report", report, CSV)])
    from hbens.postproc import clean_csv

    execution = execution_from_options(workers, scheduler, keep_going, quiet)
    cleanup = cleanup_from_options(**options)
    if cleanup is None:
        raise click.UsageError("nothing to do: give --min-area, --keep/--largest, --fill-holes or --config")
    summary = clean_csv(submission, output, cleanup, execution=execution, shape=shape)
    finish(summary, f"wrote {output}: {summary.rows} rows in {summary.seconds:.1f} s", cleanup, report, quiet,
            (submission,))
