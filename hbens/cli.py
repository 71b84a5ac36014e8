"""The ``hbens`` command line: thin click commands over the library.

Commands that need no model import neither torch nor the model stack.
"""

from __future__ import annotations

import sys

import click

from hbens.errors import HbensError

existing_file = click.Path(exists=True, dir_okay=False)


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


@cli.command()
@click.argument("submission", type=existing_file)
def check(submission: str) -> None:
    """Validate SUBMISSION: header, 29 classes per image, every RLE."""
    from hbens.submission import check_submission

    report = check_submission(submission)
    for problem in report.problems:
        click.echo(str(problem))
    status = "OK" if report.ok else f"INVALID ({len(report.problems)} problem(s))"
    click.echo(f"{submission}: {status}: {report.rows} rows, {report.images} images, {report.classes} classes")
    if not report.ok:
        sys.exit(1)


@cli.command()
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
    if out_csv:
        write_scores(out_csv, table)
    if plot:
        plot_scores(plot, table)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--images", default=4, show_default=True, help="Number of synthetic hands.")
@click.option("--models", default=3, show_default=True, help="Number of noisy model submissions.")
@click.option("--seed", default=0, show_default=True)
def synth(folder: str, images: int, models: int, seed: int) -> None:
    """Write a synthetic example to FOLDER: annotation JSONs and noisy model submissions."""
    from pathlib import Path

    from hbens.synthetic import write_example

    Path(folder).mkdir(parents=True, exist_ok=True)
    gt, csvs = write_example(folder, images, models, seed)
    click.echo(f"wrote {gt} ({images} images) and {', '.join(map(str, csvs))}")


def main() -> None:
    """Entry point of the ``hbens`` script."""
    cli(prog_name="hbens")


if __name__ == "__main__":
    main()
