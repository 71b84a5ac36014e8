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
    click.echo(f"{submission}: {status}: {report.rows} valid rows, {report.images} images, {report.classes} classes")
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
    inputs = (prediction, ground_truth)
    if out_csv:
        write_scores(out_csv, table, inputs)
    if plot:
        plot_scores(plot, table, inputs)


def clean_options(command=None, classes_flag: str = "--classes", config_flags: tuple[str, ...] = ("--clean-config",)):
    """The connected-component options shared by ``clean``, ``fuse`` and ``predict``.

    ``predict`` names the class filter ``--clean-classes``: its ``--classes`` is the model's class count.
    """
    if command is None:
        return lambda function: clean_options(function, classes_flag, config_flags)
    options = [
        click.option("--min-area", type=click.IntRange(min=0), default=0, help="Drop components smaller than N pixels."),
        click.option("--keep", type=click.IntRange(min=1), help="Keep the K largest components."),
        click.option("--largest", is_flag=True, help="Same as --keep 1."),
        click.option("--fill-holes", is_flag=True, help="Fill holes (background not reaching the border)."),
        click.option("--connectivity", type=click.Choice(["4", "8"]), default="8", show_default=True,
                     help="Bone connectivity; holes use the other one."),
        click.option(classes_flag, "clean_classes", help="Clean only these classes (comma-separated)."),
        click.option(*config_flags, "clean_config", type=existing_file, help="YAML/JSON of per-class clean settings."),
        click.option("--report", type=click.Path(dir_okay=False), help="Write per-class clean counts (CSV)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config):
    """The per-class cleanup from the shared clean options, or None when they ask for nothing."""
    from hbens.postproc import CleanConfig, active_cleanup, clean_configs

    if largest and keep is not None:
        raise click.UsageError("give --largest or --keep, not both")
    defaults = CleanConfig(min_area, 1 if largest else keep, fill_holes, int(connectivity))
    classes = [c.strip() for c in clean_classes.split(",")] if clean_classes else None
    return active_cleanup(clean_configs(defaults, classes, clean_config)) or None


def execution_options(command):
    """The ``--workers``, ``--scheduler`` and ``--keep-going`` options of every per-image command."""
    options = [
        click.option("--workers", type=click.IntRange(min=1),
                     help="Number of workers [default: a thread per core; 2 processes with --scheduler local]."),
        click.option("--scheduler", default="threads", show_default=True, metavar="NAME|tcp://HOST:PORT",
                     help="threads, processes, local (a Dask LocalCluster) or the address of a Dask scheduler."),
        click.option("--keep-going", is_flag=True, help="Report images that fail and go on (exit status 1)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _execution(workers, scheduler, keep_going, quiet, default_workers: int | None = None):
    from hbens.pipeline import Execution

    return Execution(workers=workers or default_workers, scheduler=scheduler, keep_going=keep_going,
                     progress=not quiet)


def _class_thresholds(threshold: float, thresholds: str | None) -> list[float]:
    """One threshold per class: ``threshold``, overridden by a ``class,threshold`` CSV."""
    from hbens.classes import CLASSES, read_class_values

    per_class = read_class_values(thresholds, "threshold") if thresholds else {}
    return [per_class.get(name, threshold) for name in CLASSES]


def _refuse_inputs(outputs: tuple[str | None, ...], inputs) -> None:
    """Fail before any work when an output path names an input."""
    from hbens.outputs import refuse_input

    for output in outputs:
        if output:
            refuse_input(output, list(inputs))


def _finish(summary, description: str, cleanup, report: str | None, quiet: bool, inputs: tuple = ()) -> None:
    """Write the clean report when asked, the summary on stderr unless quiet, and exit 1 on failed images."""
    from hbens.postproc import write_clean_report

    clean = getattr(summary.stats, "clean", summary.stats)
    if cleanup and report:
        write_clean_report(report, clean, inputs)
    if not quiet:
        text = description + (f"; {clean}" if cleanup else "")
        if summary.failed:
            text += f"\n{len(summary.failed)} image(s) failed:\n  " + "\n  ".join(summary.failed)
        click.echo(text, err=True)
    if summary.failed:
        sys.exit(1)


def _weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated numbers such as 1,2,1") from None


@cli.command()
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
        rules = hard_rules(n, min_votes, _weights(weights), min_weight, per_class)
    cleanup = _cleanup(**clean)
    execution = _execution(workers, scheduler, keep_going, quiet)
    _refuse_inputs((output, report), inputs)
    summary = fuse_csvs(inputs, output, rules, missing=missing, cleanup=cleanup, execution=execution)
    _finish(summary, describe_fuse(summary, output, inputs), cleanup, report, quiet, tuple(inputs))


@cli.command()
@click.argument("submission", type=existing_file)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Cleaned submission CSV.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@execution_options
@clean_options(config_flags=("--config", "--clean-config"))
def clean(submission, output, quiet, workers, scheduler, keep_going, report, **options) -> None:
    """Clean SUBMISSION's masks: small components, largest components, holes."""
    from hbens.postproc import clean_csv

    cleanup = _cleanup(**options)
    if cleanup is None:
        raise click.UsageError("nothing to do: give --min-area, --keep/--largest, --fill-holes or --config")
    execution = _execution(workers, scheduler, keep_going, quiet)
    _refuse_inputs((output, report), [submission])
    summary = clean_csv(submission, output, cleanup, execution=execution)
    _finish(summary, f"wrote {output}: {summary.rows} rows in {summary.seconds:.1f} s", cleanup, report, quiet,
            (submission,))


@cli.command()
@click.option("--ckpt", "checkpoints", multiple=True, required=True, type=click.Path(exists=True),
              help="Checkpoint file or save_pretrained folder (repeatable).")
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of PNG images (searched recursively).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for the probability stores (one subfolder per model, or 'ensemble').")
@click.option("--arch", help="smp architecture for bare state dicts, e.g. UnetPlusPlus.")
@click.option("--encoder", help="smp encoder for bare state dicts, e.g. efficientnet-b0.")
@click.option("--in-channels", type=click.IntRange(min=1), default=3, show_default=True,
              help="Input channels of bare state dicts (the gray image is repeated).")
@click.option("--classes", "n_classes", type=click.IntRange(min=1), default=29, show_default=True,
              help="Output channels of bare state dicts.")
@click.option("--format", "checkpoint_format", help="Force a checkpoint format (default: detected).")
@click.option("--allow-pickle", is_flag=True, help="Allow loading pickled code (only for files you trust).")
@click.option("--channels", help="Select output channels START:STOP when a model gives more than 29.")
@click.option("--size", type=click.IntRange(min=32), help="Resize images to N x N (multiple of 32) for the model.")
@click.option("--window", type=click.IntRange(min=1), help="Sliding window of N x N pixels instead of a single pass.")
@click.option("--overlap", type=click.FloatRange(0, 1, max_open=True), default=0.5, show_default=True,
              help="Overlap of sliding windows, as a fraction of the window.")
@click.option("--blend", type=click.Choice(["gaussian", "mean"]), default="gaussian", show_default=True,
              help="How overlapping windows are blended.")
@click.option("--tta", default="none", show_default=True,
              help="Test-time augmentation, e.g. hflip,vflip,multiply=0.9:1.1,scale=0.75:1.25.")
@click.option("--merge", type=click.Choice(["mean", "max", "gmean"]), default="mean", show_default=True,
              help="How TTA passes are merged (on logits).")
@click.option("--normalize", default="none", show_default=True, help="imagenet, none or MEAN,STD.")
@click.option("--ensemble", type=click.Choice(["mean"]), help="Average all checkpoints into one store.")
@click.option("--weights", help="Ensemble weights, one per checkpoint, e.g. 2,1.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write a submission CSV.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Foreground where the probability exceeds this (for --csv).")
@click.option("--thresholds", type=existing_file, help="Per-class thresholds: CSV class,threshold.")
@click.option("--precision", type=click.Choice(["uint8", "fp16"]), default="uint8", show_default=True,
              help="Stored probabilities: uint8 steps of 1/255 or float16.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the models run.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Windows per forward pass with --window.")
@click.option("--resume", is_flag=True, help="Skip images whose stores exist and are valid.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@execution_options
@clean_options(classes_flag="--clean-classes")
def predict(checkpoints, images, output, arch, encoder, in_channels, n_classes, checkpoint_format, allow_pickle,
            channels, size, window, overlap, blend, tta, merge, normalize, ensemble, weights, csv_path, threshold,
            thresholds, precision, device, batch_size, resume, quiet, workers, scheduler, keep_going, report,
            **clean) -> None:
    """Predict per-class probabilities of every PNG in --images with each --ckpt."""
    from pathlib import Path

    from hbens.predictors import ModelSource, ModelSpec, PredictOptions, describe_predict, predict_folder
    from hbens.predictors.model import resolve_device

    options = PredictOptions(size=size, window=window, overlap=overlap, blend=blend, tta=tta, merge=merge,
                             normalize=normalize, batch_size=batch_size,
                             precision="float16" if precision == "fp16" else "uint8")
    cleanup = _cleanup(**clean)
    execution = _execution(workers, scheduler, keep_going, quiet, default_workers=1)
    per_class = _class_thresholds(threshold, thresholds)
    _refuse_inputs((csv_path, report), (*checkpoints, images))
    spec = ModelSpec(arch, encoder, in_channels, n_classes)
    sources = [ModelSource(checkpoint=str(Path(path).resolve()), spec=spec, allow_pickle=allow_pickle,
                           format=checkpoint_format, device=resolve_device(device), channels=channels)
               for path in checkpoints]
    summary = predict_folder(sources, images, output, options, ensemble=ensemble, weights=_weights(weights),
                             csv=csv_path, thresholds=per_class, resume=resume, cleanup=cleanup, execution=execution)
    _finish(summary, describe_predict(summary), cleanup, report, quiet)


@cli.command()
@click.argument("stores", type=click.Path(exists=True, file_okay=False))
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of the PNGs the probabilities came from (searched recursively).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for refined stores.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write a submission CSV.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Foreground where the refined probability exceeds this.")
@click.option("--thresholds", type=existing_file, help="Per-class thresholds: CSV class,threshold.")
@click.option("--iterations", type=click.IntRange(min=1), default=5, show_default=True, help="Mean-field iterations.")
@click.option("--gaussian-sxy", type=float, default=3.0, show_default=True, help="Smoothness kernel width (pixels).")
@click.option("--gaussian-compat", type=float, default=3.0, show_default=True, help="Smoothness kernel weight.")
@click.option("--bilateral-sxy", type=float, default=50.0, show_default=True, help="Appearance kernel width (pixels).")
@click.option("--bilateral-srgb", type=float, default=13.0, show_default=True,
              help="Appearance kernel intensity width (gray levels).")
@click.option("--bilateral-compat", type=float, default=10.0, show_default=True, help="Appearance kernel weight.")
@click.option("--margin", type=click.IntRange(min=0), default=16, show_default=True,
              help="Pixels added around each class crop.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@execution_options
@clean_options
def crf(stores, images, output, csv_path, threshold, thresholds, quiet, workers, scheduler, keep_going, report,
        iterations, gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat, margin,
        **clean) -> None:
    """Refine the probability STORES (a folder written by hbens predict) with a dense CRF."""
    from hbens.postproc.crf import CRFParams, crf_folder

    params = CRFParams(iterations=iterations, gaussian_sxy=gaussian_sxy, gaussian_compat=gaussian_compat,
                       bilateral_sxy=bilateral_sxy, bilateral_srgb=bilateral_srgb,
                       bilateral_compat=bilateral_compat, margin=margin)
    cleanup = _cleanup(**clean)
    execution = _execution(workers, scheduler, keep_going, quiet)
    per_class = _class_thresholds(threshold, thresholds)
    _refuse_inputs((csv_path, report), (stores, images))
    summary = crf_folder(stores, images, output, params, csv=csv_path, thresholds=per_class, cleanup=cleanup,
                         execution=execution)
    _finish(summary, f"refined {summary.images} image(s) in {summary.seconds:.1f} s into {output}", cleanup, report,
            quiet)


@cli.command()
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


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--images", default=4, show_default=True, help="Number of synthetic hands.")
@click.option("--models", default=3, show_default=True, help="Number of noisy model submissions.")
@click.option("--seed", default=0, show_default=True)
@click.option("--pngs", is_flag=True, help="Also write X-ray-like PNGs under FOLDER/images.")
def synth(folder: str, images: int, models: int, seed: int, pngs: bool) -> None:
    """Write a synthetic example to FOLDER: annotation JSONs and noisy model submissions."""
    from pathlib import Path

    from hbens.synthetic import write_example

    Path(folder).mkdir(parents=True, exist_ok=True)
    gt, csvs = write_example(folder, images, models, seed, images=pngs)
    pictures = f", {Path(folder) / 'images'}" if pngs else ""
    click.echo(f"wrote {gt} ({images} images){pictures} and {', '.join(map(str, csvs))}")


def main() -> None:
    """Entry point of the ``hbens`` script."""
    cli(prog_name="hbens")


if __name__ == "__main__":
    main()
