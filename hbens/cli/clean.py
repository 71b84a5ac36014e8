"""``hbens clean``: connected-component cleaning of a submission."""

from __future__ import annotations

import click

from hbens.cli.options import (
    clean_options,
    execution_options,
    existing_file,
    frame_hints,
    image_size_option,
    remember_outputs,
    report_summary,
)


@click.command()
@click.argument("submission", type=existing_file)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Cleaned submission CSV.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@image_size_option
@execution_options
@clean_options(config_flags=("--config", "--clean-config"))
@frame_hints
def clean(submission, output, quiet, shape, workers, scheduler, keep_going, min_area, keep, largest, fill_holes,
          connectivity, clean_classes, clean_config, report) -> None:
    """Clean SUBMISSION's masks: small components, largest components, holes."""
    from hbens import api

    remember_outputs(output, report)
    summary = api.clean(submission, output, min_area=min_area, keep=keep, largest=largest, fill_holes=fill_holes,
                        connectivity=connectivity, classes=clean_classes, config=clean_config, report=report,
                        shape=shape, workers=workers, scheduler=scheduler, keep_going=keep_going, progress=not quiet)
    description = f"wrote {output}: {summary.rows} rows in {summary.seconds:.1f} s"
    report_summary(summary, description, summary.cleaned, quiet)
