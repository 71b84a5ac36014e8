"""``hbens tune`` and ``hbens apply``: per-class recipes chosen on validation data, then run on test data."""

from __future__ import annotations

import click
from click.core import ParameterSource

from hbens.cli.crf import crf_options, crf_settings
from hbens.cli.options import (
    array_options,
    execution_options,
    frame_hints,
    image_size_option,
    remember_outputs,
    report_summary,
)


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--gt", required=True, type=click.Path(exists=True),
              help="Ground truth of the validation images: the annotation JSON folder or a ground-truth CSV.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The recipe (YAML).")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the guard: every choice is made on the other folds and scored on the held-out one.")
@click.option("--try", "steps", default="members,thresholds,clean,crf", show_default=True, metavar="STEPS",
              help="Steps to try, comma-separated: members, thresholds, clean, crf (crf only with --images).")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Folder of the validation X-rays (searched recursively), for the CRF step.")
@click.option("--report", type=click.Path(dir_okay=False), help="Also write an HTML report of the tuning.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the folds.")
@click.option("--quiet", is_flag=True, help="No progress bar; only the per-class table.")
@image_size_option
@crf_options
@array_options
@execution_options
@frame_hints
def tune(inputs, gt, output, folds, steps, images, report, seed, quiet, shape, key, kind, array_classes,
         drop_channel, workers, scheduler, keep_going, **crf) -> None:
    """Choose, per class, how to fuse INPUTS (validation predictions: folders of probability maps and/or
    submission CSVs) and post-process them: members and weights, threshold, cleanup, CRF.

    Each step is kept for a class only when it raises the class's out-of-fold Dice.  Prints the
    per-class table; the recipe (CRF settings included) is for hbens apply.
    """
    from hbens import api
    from hbens.tune import describe_tuning
    from hbens.tune.tuning import parse_steps

    remember_outputs(output, report)
    result = api.tune(inputs, gt, output, folds=folds, steps=steps, images=images, seed=seed,
                      crf_params=crf_settings(crf), report=report, shape=shape, key=key, kind=kind,
                      array_classes=array_classes, drop_channel=drop_channel, workers=workers, scheduler=scheduler,
                      keep_going=keep_going, progress=not quiet).result
    given = click.get_current_context().get_parameter_source("steps") is not ParameterSource.DEFAULT
    if images is None and given and not quiet and "crf" in parse_steps(steps):
        click.echo("note: the crf step needs --images; it is skipped", err=True)
    click.echo(describe_tuning(result))
    if not quiet:
        moved = sum(bool(entry.taken) for entry in result.classes)
        click.echo(f"wrote {output}: {moved} of {len(result.classes)} classes moved away from their baseline, "
                   f"in {result.seconds['total']:.1f} s", err=True)
    if result.failed:
        click.echo(f"{len(result.failed)} image(s) failed and were left out:\n  " + "\n  ".join(result.failed),
                   err=True)
        raise SystemExit(1)


@click.command()
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The submission CSV.")
@click.option("--stores", type=click.Path(file_okay=False),
              help="Also write each image's final probabilities (fused; refined for CRF classes) as hbens stores.")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Folder of the test X-rays (searched recursively); needed when the recipe uses a CRF.")
@click.option("--rename", is_flag=True,
              help="Accept inputs whose names differ from the recipe's (their number and kinds must match).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@image_size_option
@array_options
@execution_options
@frame_hints
def apply(recipe, inputs, output, stores, images, rename, quiet, shape, key, kind, array_classes, drop_channel,
          workers, scheduler, keep_going) -> None:
    """Run RECIPE (written by hbens tune) on INPUTS, the test predictions of the same models in the
    recipe's order, into one submission."""
    from hbens import api

    remember_outputs(output, stores)
    summary = api.apply(recipe, inputs, output, stores=stores, images=images, rename=rename, shape=shape, key=key,
                        kind=kind, array_classes=array_classes, drop_channel=drop_channel, workers=workers,
                        scheduler=scheduler, keep_going=keep_going, progress=not quiet)
    description = f"wrote {output}: {summary.rows} rows of {summary.images} image(s) in {summary.seconds:.1f} s"
    report_summary(summary, description, bool(summary.stats.clean.per_class), quiet)
