"""``hbens check``, ``hbens score`` and ``hbens show``: reading and drawing submissions."""

from __future__ import annotations

import sys

import click

from hbens.cli.options import existing_file
from hbens.errors import HbensError


@click.command()
@click.argument("submission", type=existing_file)
def check(submission: str) -> None:
    """Validate SUBMISSION: header, 29 classes per image, every RLE."""
    from hbens.submission import check_submission

    report = check_submission(submission)
    for problem in report.problems:
        click.echo(str(problem))
    status = "OK" if report.ok else f"INVALID ({len(report.problems)} problem(s))"
    click.echo(f"{submission}: {status}: {report.rows} valid rows, {report.images} images, {report.classes} classes")
    if not report.ok:
        sys.exit(1)



@click.command()
@click.argument("prediction", type=existing_file)
@click.option("--gt", "ground_truth", required=True, type=click.Path(exists=True),
              help="Folder of annotation JSONs (outputs_json) or a ground-truth CSV.")
@click.option("--out", "out_csv", type=click.Path(dir_okay=False), help="Write per-class Dice as class,dice.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a per-class Dice bar chart (PNG).")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True,
              help="Rows absent from PREDICTION: an error, or empty masks.")
def score(prediction: str, ground_truth: str, out_csv: str | None, plot: str | None, missing: str) -> None:
    """Per-class and mean Dice of PREDICTION against the ground truth."""
    from hbens.metrics import plot_scores, score_submission, write_scores

    table = score_submission(prediction, ground_truth, missing)
    for name, value in zip(table.classes, table.per_class):
        click.echo(f"{name:<12} {value:.4f}")
    click.echo(f"{'mean':<12} {table.mean:.4f}   ({len(table.images)} images)")
    inputs = (prediction, ground_truth)
    if out_csv:
        write_scores(out_csv, table, inputs)
    if plot:
        plot_scores(plot, table, inputs)



@click.command()
@click.argument("submission", type=existing_file)
@click.option("--image", "image_name", help="Which image to draw [default: the first].")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Folder of the PNGs, to draw the masks over the X-ray.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--scale", type=float, default=0.5, show_default=True, help="Size of the picture relative to the image.")
def show(submission, image_name, images, output, scale) -> None:
    """Draw one image's masks from SUBMISSION, each class in its color."""
    from hbens.pictures import overlay, save_picture
    from hbens.submission import scan_submission

    index = scan_submission(submission)
    if not index.images:
        raise HbensError(f"{submission}: no rows to draw")
    image_name = image_name or index.images[0]
    if image_name not in index.images:
        raise HbensError(f"{submission}: no rows for image {image_name}; it has e.g. {', '.join(index.images[:3])}")
    picture = None
    if images:
        import numpy as np

        from hbens.images import find_images, read_gray

        found = {path.name: path for path in find_images(images)}
        if image_name not in found:
            raise HbensError(f"{images}: no file named {image_name}")
        picture = np.round(read_gray(found[image_name]) * 255).astype(np.uint8)
    with index.open() as handle:
        rles = {name: index.read_rle((image_name, name), handle) for _, name in index.rows if _ == image_name}
    shape = picture.shape if picture is not None else (2048, 2048)
    save_picture(output, overlay(rles, picture, shape), scale, inputs=(submission,))
    click.echo(f"wrote {output}")
