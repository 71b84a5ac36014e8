"""``hbens fuse``: ensembles of submissions."""

from __future__ import annotations

import click

from hbens.cli.options import (
    clean_options,
    cleanup_from_options,
    execution_from_options,
    execution_options,
    existing_file,
    finish,
    parse_weights,
    refuse_inputs,
)


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=existing_file)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Fused submission CSV.")
@click.option("--strategy", type=click.Choice(["hard", "classwise"]), default="hard", show_default=True,
              help="hard: a (weighted) vote of every input; classwise: each class from chosen inputs.")
@click.option("--min-votes", type=click.IntRange(min=1), help="Foreground where at least K inputs agree [default: majority].")
@click.option("--union", is_flag=True, help="Same as --min-votes 1.")
@click.option("--intersection", is_flag=True, help="Same as --min-votes N (all inputs).")
@click.option("--weights", help="One positive weight per input, e.g. 2,1,1.")
@click.option("--min-weight", type=click.FloatRange(min=0), help="Foreground where the weight sum exceeds this [default: half].")
@click.option("--class-weights", type=existing_file, help="CSV (class,w1,w2,...) or JSON of per-class weights.")
@click.option("--pick", "picks", multiple=True, metavar="CLASS=I[+J...]",
              help="classwise: take CLASS from input I, or a majority vote of inputs I+J+... (repeatable).")
@click.option("--scores", multiple=True, type=existing_file,
              help="classwise: per-class Dice of each input (hbens score --out), one file per input.")
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True,
              help="Absent (image, class) rows: an error, or empty masks.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@execution_options
@clean_options
def fuse(inputs, output, strategy, min_votes, union, intersection, weights, min_weight, class_weights,
         picks, scores, missing, quiet, workers, scheduler, keep_going, report, **clean) -> None:
    """Fuse submission INPUTS (CSV) into one, voting on runs per (image, class).

    The clean options, when given, clean each fused row in the same pass.
    """
    from hbens.ensemble import classwise_rules, describe_fuse, fuse_csvs, hard_rules, read_class_weights
    from hbens.metrics import read_scores

    n = len(inputs)
    if union + intersection + (min_votes is not None) > 1:
        raise click.UsageError("give at most one of --min-votes, --union, --intersection")
    min_votes = 1 if union else n if intersection else min_votes
    if strategy == "classwise":
        if min_votes is not None or weights or class_weights or min_weight is not None:
            raise click.UsageError("--strategy classwise takes --pick and --scores, not vote options")
        rules = classwise_rules(n, picks, [read_scores(path) for path in scores] if scores else None)
    else:
        if picks or scores:
            raise click.UsageError("--pick and --scores need --strategy classwise")
        per_class = read_class_weights(class_weights, n) if class_weights else None
        rules = hard_rules(n, min_votes, parse_weights(weights), min_weight, per_class)
    cleanup = cleanup_from_options(**clean)
    execution = execution_from_options(workers, scheduler, keep_going, quiet)
    refuse_inputs((output, report), inputs)
    summary = fuse_csvs(inputs, output, rules, missing=missing, cleanup=cleanup, execution=execution)
    finish(summary, describe_fuse(summary, output, inputs), cleanup, report, quiet, tuple(inputs))
