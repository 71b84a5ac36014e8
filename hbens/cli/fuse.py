"""``hbens fuse``: ensembles of submissions and of probability maps."""

from __future__ import annotations

import click

from hbens.cli.options import (
    array_format_from_options,
    array_options,
    clean_options,
    cleanup_from_options,
    execution_from_options,
    execution_options,
    existing_file,
    finish,
    guard_paths,
    frame_hints,
    image_size_option,
    non_negative,
    probability,
    refuse_repeated,
    weight_list,
)
from hbens.paths import CSV


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
    from pathlib import Path

    from hbens.classes import read_class_values
    from hbens.ensemble import classwise_rules, describe_fuse, fuse_csvs, hard_rules, read_class_weights
    from hbens.ensemble import soft
    from hbens.metrics import read_scores

    n = len(inputs)
    if union + intersection + (min_votes is not None) > 1:
        raise click.UsageError("give at most one of --min-votes, --union, --intersection")
    if min_votes is not None and min_votes > n:
        raise click.BadParameter(f"{min_votes} is outside 1..{n} for {n} inputs", param_hint="--min-votes")
    if weights is not None and len(weights) != n:
        raise click.BadParameter(f"{len(weights)} weights for {n} inputs; give one per input", param_hint="--weights")
    refuse_repeated("INPUTS", inputs)
    refuse_repeated("--scores", scores, advice="give each input's validation scores, one file per input")
    guard_paths(reads=[*(("INPUTS", path) for path in inputs), *(("--scores", path) for path in scores),
                       ("--class-weights", class_weights), ("--clean-config", clean["clean_config"]),
                       ("--thresholds", thresholds), ("--classes", array_classes)],
                writes=[("-o", output, CSV), ("--report", report, CSV)],
                folder_writes=[("--stores", stores_out)])
    min_votes = 1 if union else n if intersection else min_votes
    maps = any(Path(path).is_dir() for path in inputs)
    strategy = strategy or ("soft" if maps else "hard")
    if strategy == "classwise" and (min_votes is not None or weights or class_weights or min_weight is not None):
        raise click.UsageError("--strategy classwise takes --pick and --scores, not vote options")
    if strategy != "classwise" and (picks or scores):
        raise click.UsageError("--pick and --scores need --strategy classwise")
    if strategy == "soft" and (min_votes is not None or min_weight is not None):
        raise click.UsageError("--strategy soft averages; --min-votes, --union, --intersection and --min-weight "
                               "are for --strategy hard")
    per_class = read_class_weights(class_weights, n) if class_weights else None
    scored = [read_scores(path) for path in scores] if scores else None
    cleanup = cleanup_from_options(**clean)
    execution = execution_from_options(workers, scheduler, keep_going, quiet)
    if not maps and strategy != "soft" and thresholds is None and stores_out is None:
        rules = (classwise_rules(n, picks, scored) if strategy == "classwise"
                 else hard_rules(n, min_votes, weights, min_weight, per_class))
        summary = fuse_csvs(inputs, output, rules, missing=missing, cleanup=cleanup, execution=execution, shape=shape)
        finish(summary, describe_fuse(summary, output, inputs), cleanup, report, quiet, tuple(inputs))
        return
    per_threshold = read_class_values(thresholds, "threshold") if thresholds else None
    builders = {
        "soft": lambda: soft.soft_rules(n, weights=weights, class_weights=per_class, threshold=threshold,
                                        thresholds=per_threshold, space=space),
        "classwise": lambda: soft.classwise_soft_rules(n, picks=picks, scores=scored, threshold=threshold,
                                                       thresholds=per_threshold, space=space),
        "hard": lambda: soft.hard_store_rules(n, min_votes=min_votes, weights=weights, min_weight=min_weight,
                                              class_weights=per_class, threshold=threshold,
                                              thresholds=per_threshold),
    }
    summary = soft.fuse_inputs(inputs, output, builders[strategy](), missing=missing, stores=stores_out,
                               precision="float16" if precision == "fp16" else "uint8",
                               array_format=array_format_from_options(key, kind, array_classes, drop_channel),
                               cleanup=cleanup, execution=execution, shape=shape)
    finish(summary, soft.describe_soft_fuse(summary, output, inputs), cleanup, report, quiet, tuple(inputs))
