"""``hbens crf``: dense CRF refinement of probability maps (hbens stores or saved arrays)."""

from __future__ import annotations

import click

from hbens.cli.options import (
    array_options,
    clean_options,
    execution_options,
    existing_file,
    frame_hints,
    image_size_option,
    positive,
    probability,
    remember_outputs,
    report_summary,
)


def crf_options(command):
    """The CRF settings of ``crf`` and ``tune``: the pixel widths, the margin and the weights default to
    their values at 2048 pixels scaled to the frame (:func:`hbens.postproc.crf.frame_params`); given
    ones win."""
    scaled = " [default: {} at 2048 pixels, scaled to the frame's side]"
    squared = " [default: {} at 2048 pixels, scaled by the square of the frame's side]"
    options = [
        click.option("--iterations", type=click.IntRange(min=1), default=5, show_default=True,
                     help="Mean-field iterations."),
        click.option("--gaussian-sxy", type=positive, help="Smoothness kernel width (pixels)." + scaled.format(3)),
        click.option("--gaussian-compat", type=positive, help="Smoothness kernel weight." + squared.format(3)),
        click.option("--bilateral-sxy", type=positive, help="Appearance kernel width (pixels)." + scaled.format(50)),
        click.option("--bilateral-srgb", type=positive, default=13.0, show_default=True,
                     help="Appearance kernel intensity width (gray levels)."),
        click.option("--bilateral-compat", type=positive, help="Appearance kernel weight." + squared.format(10)),
        click.option("--margin", type=click.IntRange(min=0),
                     help="Pixels added around each class crop (the bilateral kernel reaches beyond "
                          "--bilateral-sxy)." + scaled.format(64)),
    ]
    for option in reversed(options):
        command = option(command)
    return command


CRF_SETTINGS = ("iterations", "gaussian_sxy", "gaussian_compat", "bilateral_sxy", "bilateral_srgb",
                "bilateral_compat", "margin")
"""The keyword arguments :func:`crf_options` adds (the fields of :class:`~hbens.postproc.crf.CRFParams`)."""


def crf_settings(options: dict) -> dict[str, float | None]:
    """Take the CRF settings out of a command's keyword arguments (None: the default for the frame)."""
    return {name: options.pop(name) for name in CRF_SETTINGS}


@click.command()
@click.argument("stores", type=click.Path(exists=True, file_okay=False))
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of the PNGs the probabilities came from (searched recursively).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for refined stores.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write a submission CSV.")
@click.option("--gt", "ground_truth", type=click.Path(exists=True),
              help="Annotation JSONs (outputs_json) or a ground-truth CSV: print each class's Dice before and "
                   "after refinement.")
@click.option("--threshold", type=probability, default=0.5, show_default=True,
              help="Foreground where the refined probability exceeds this.")
@click.option("--thresholds", type=existing_file, help="Per-class thresholds: CSV class,threshold.")
@crf_options
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@image_size_option
@array_options
@execution_options
@clean_options(classes_flag="--clean-classes")
@frame_hints
def crf(stores, images, output, csv_path, ground_truth, threshold, thresholds, quiet, shape, key, kind,
        array_classes, drop_channel, workers, scheduler, keep_going, report, **options) -> None:
    """Refine the probability maps in STORES with a dense CRF: a folder written by hbens predict, or
    one of saved arrays from another pipeline (.npy/.npz/.pt per image, see the array options)."""
    from hbens import api
    from hbens.postproc.crf import describe_dice

    remember_outputs(csv_path, report, output)
    settings = crf_settings(options)
    summary = api.crf(stores, images, output, csv=csv_path, gt=ground_truth, threshold=threshold,
                      thresholds=thresholds, params=settings, shape=shape, key=key, kind=kind,
                      array_classes=array_classes, drop_channel=drop_channel, report=report, workers=workers,
                      scheduler=scheduler, keep_going=keep_going, progress=not quiet, **options)
    if ground_truth:
        click.echo(describe_dice(summary.stats))
    description = f"refined {summary.images} image(s) in {summary.seconds:.1f} s into {output}"
    report_summary(summary, description, summary.cleaned, quiet)
