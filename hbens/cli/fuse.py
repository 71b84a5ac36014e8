"""``hbens fuse``: ensembles of submissions and of probability maps."""

from __future__ import annotations

import click

from hbens.cli.options import (
    array_options,
    clean_options,
    execution_options,
    existing_file,
    frame_hints,
    image_size_option,
    non_negative,
    probability,
    remember_outputs,
    report_summary,
    weight_list,
)


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Fused submission CSV.")
@click.option("--strategy", type=click.Choice(["soft", "hard", "classwise"]),
              help="soft: weighted mean of probabilities; hard: a (weighted) vote of the masks; classwise: each "
                   "class from chosen inputs [default: soft when an input is a folder of maps, else hard].")
@click.option("--threshold", type=probability, default=0.5, show_default=True,
              help="Maps: foreground where the fused (or each input's, for hard) probability exceeds this.")
@click.option("--thresholds", type=existing_file, help="Maps: per-class thresholds, CSV class,threshold.")
@click.option("--space", type=click.Choice(["prob", "logit"]), default="prob", show_default=True,
              help="Maps: average probabilities, or logits (p clipped to [1/510, 1-1/510]).")
@click.option("--stores", "stores_out", type=click.Path(file_okay=False),
              help="Maps: also write the fused probabilities as hbens stores in this folder.")
@click.option("--precision", type=click.Choice(["uint8", "fp16"]), default="uint8", show_default=True,
              help="Precision of the --stores written.")
@click.option("--min-votes", type=click.IntRange(min=1), help="Foreground where at least K inputs agree [default: majority].")
@click.option("--union", is_flag=True, help="Same as --min-votes 1.")
@click.option("--intersection", is_flag=True, help="Same as --min-votes N (all inputs).")
@click.option("--weights", type=weight_list, help="One positive weight per input, e.g. 2,1,1.")
@click.option("--min-weight", type=non_negative,
              help="Foreground where the weight sum exceeds this; below the total [default: half].")
@click.option("--class-weights", type=existing_file, help="CSV (class,w1,w2,...) or JSON of per-class weights.")
@click.option("--pick", "picks", multiple=True, metavar="CLASS=I[+J...]",
              help="classwise: take CLASS from input I, or a majority vote of inputs I+J+... (repeatable).")
@click.option("--scores", multiple=True, type=existing_file,
              help="classwise: per-class Dice of each input (hbens score --out), one file per input.")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True,
              help="Absent (image, class) rows: an error, or empty masks.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@image_size_option
@array_options
@execution_options
@clean_options(classes_flag="--clean-classes")
@frame_hints
def fuse(inputs, output, strategy, threshold, thresholds, space, stores_out, precision, min_votes, union,
         intersection, weights, min_weight, class_weights, picks, scores, missing, quiet, shape, key, kind,
         array_classes, drop_channel, workers, scheduler, keep_going, report, **clean) -> None:
    """Fuse INPUTS into one submission: submission CSVs, folders of probability maps (hbens stores or
    saved arrays of another pipeline), or both (a CSV counts as a 0/1 map).

    CSVs alone are voted on runs; maps are averaged per class over the union of their crops.  The
    clean options, when given, clean each fused row in the same pass.
    """
    from hbens import api
    from hbens.ensemble import describe_fuse

    remember_outputs(output, report, stores_out)
    summary = api.fuse(inputs, output, strategy=strategy, threshold=threshold, thresholds=thresholds, space=space,
                       stores=stores_out, precision=precision, min_votes=min_votes, union=union,
                       intersection=intersection, weights=weights, min_weight=min_weight,
                       class_weights=class_weights, picks=picks, scores=scores, missing=missing, shape=shape,
                       key=key, kind=kind, array_classes=array_classes, drop_channel=drop_channel, report=report,
                       workers=workers, scheduler=scheduler, keep_going=keep_going, progress=not quiet, **clean)
    report_summary(summary, describe_fuse(summary, output, inputs), summary.cleaned, quiet)
