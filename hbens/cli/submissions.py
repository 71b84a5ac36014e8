"""``hbens check``, ``hbens score`` and ``hbens show``: reading and drawing submissions."""

from __future__ import annotations

import sys

import click

from hbens.cli.options import (
    FiniteFloat,
    array_options,
    existing_file,
    frame_hints,
    image_size_option,
    probability,
    remember_outputs,
)


@click.command()
@click.argument("submission", type=existing_file)
@image_size_option
@frame_hints
def check(submission: str, shape: tuple[int, int] | None) -> None:
    """Validate SUBMISSION: header, 29 classes per image, every RLE."""
    from hbens import api

    report = api.check(submission, shape=shape)
    for problem in report.problems:
        click.echo(str(problem))
    status = "OK" if report.ok else f"INVALID ({len(report.problems)} problem(s))"
    click.echo(f"{submission}: {status}: {report.rows} valid rows, {report.images} images, {report.classes} classes")
    if not report.ok:
        sys.exit(1)



@click.command()
@click.argument("prediction", type=click.Path(exists=True))
@click.option("--gt", "ground_truth", required=True, type=click.Path(exists=True),
              help="Folder of annotation JSONs (outputs_json) or a ground-truth CSV.")
@click.option("--threshold", type=probability, default=0.5, show_default=True,
              help="Maps: foreground where the probability exceeds this.")
@click.option("--thresholds", type=existing_file, help="Maps: per-class thresholds, CSV class,threshold.")
@click.option("--out", "out_csv", type=click.Path(dir_okay=False), help="Write per-class Dice as class,dice.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a per-class Dice bar chart (PNG).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True,
              help="Rows absent from PREDICTION: an error, or empty masks.")
@image_size_option
@array_options
@frame_hints
def score(prediction: str, ground_truth: str, threshold: float, thresholds: str | None, out_csv: str | None,
          plot: str | None, missing: str, shape: tuple[int, int] | None, key, kind, array_classes,
          drop_channel) -> None:
    """Per-class and mean Dice of PREDICTION against the ground truth.

    PREDICTION is a submission CSV or a folder of probability maps (hbens stores or saved arrays),
    thresholded at --threshold.
    """
    from hbens import api

    remember_outputs(out_csv, plot)
    table = api.score(prediction, ground_truth, threshold=threshold, thresholds=thresholds, missing=missing,
                      shape=shape, out=out_csv, plot=plot, key=key, kind=kind, array_classes=array_classes,
                      drop_channel=drop_channel).dice
    for name, value in zip(table.classes, table.per_class):
        click.echo(f"{name:<12} {value:.4f}")
    click.echo(f"{'mean':<12} {table.mean:.4f}   ({len(table.images)} images)")



@click.command()
@click.argument("submission", type=existing_file)
@click.option("--image", "image_name", help="Which image to draw [default: the first].")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Folder of the PNGs, to draw the masks over the X-ray.")
@click.option("--compare", "other", type=existing_file,
              help="Another submission: color where the two agree (green), where only SUBMISSION has a bone "
                   "(red), only OTHER (blue), or each a different bone (magenta).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Picture to write (.png or .jpg).")
@click.option("--scale", type=FiniteFloat(0, 4, min_open=True), default=0.5, show_default=True,
              help="Size of the picture relative to the image, in (0, 4].")
@image_size_option
@frame_hints
def show(submission, image_name, images, other, output, scale, shape) -> None:
    """Draw one image's masks from SUBMISSION, each class in its color, or where it differs from --compare.

    The frame is --image-size, else the --images X-rays' size, else 2048."""
    from hbens import api

    remember_outputs(output)
    drawing = api.draw(submission, image=image_name, images=images, compare=other, shape=shape, output=output,
                       scale=scale)
    if drawing.counts is None:
        click.echo(f"wrote {output}")
        return
    counts = ", ".join(f"{label} {pixels} px" for label, pixels in drawing.counts.items())
    click.echo(f"wrote {output}: {drawing.image}: {counts}")
