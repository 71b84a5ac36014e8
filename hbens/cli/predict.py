"""``hbens predict``: checkpoints to probability stores."""

from __future__ import annotations

import click

from hbens.cli.options import (
    FiniteFloat,
    ImageSize,
    clean_options,
    execution_options,
    existing_file,
    probability,
    remember_outputs,
    report_summary,
    weight_list,
)


@click.command()
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
@click.option("--size", type=click.IntRange(32, ImageSize.LARGEST),
              help="Resize images to N x N (multiple of 32) for the model.")
@click.option("--window", type=click.IntRange(min=1), help="Sliding window of N x N pixels instead of a single pass.")
@click.option("--overlap", type=FiniteFloat(0, 1, max_open=True), default=0.5, show_default=True,
              help="Overlap of sliding windows, as a fraction of the window.")
@click.option("--blend", type=click.Choice(["gaussian", "mean"]), default="gaussian", show_default=True,
              help="How overlapping windows are blended.")
@click.option("--tta", default="none", show_default=True,
              help="Test-time augmentation, e.g. hflip,vflip,multiply=0.9:1.1,scale=0.75:1.25.")
@click.option("--merge", type=click.Choice(["mean", "max", "gmean"]), default="mean", show_default=True,
              help="How TTA passes are merged (on logits).")
@click.option("--normalize", default="none", show_default=True, help="imagenet, none or MEAN,STD.")
@click.option("--ensemble", type=click.Choice(["mean"]), help="Average all checkpoints into one store.")
@click.option("--weights", type=weight_list, help="Ensemble weights, one per checkpoint, e.g. 2,1.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write a submission CSV.")
@click.option("--threshold", type=probability, default=0.5, show_default=True,
              help="Foreground where the probability exceeds this (for --csv).")
@click.option("--thresholds", type=existing_file, help="Per-class thresholds: CSV class,threshold.")
@click.option("--precision", type=click.Choice(["uint8", "fp16"]), default="uint8", show_default=True,
              help="Stored probabilities: uint8 steps of 1/255 or float16.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the models run.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Windows per forward pass with --window.")
@click.option("--resume", is_flag=True, help="Skip images whose stores exist and are valid.")
@click.option("--crop-from", "crop_from", type=click.Path(exists=True),
              help="Region model: run on each image's region around --crop-classes in this first-stage "
                   "submission CSV or folder of maps (p > 0.5).")
@click.option("--crop-classes", help="Classes the region surrounds, comma-separated [default: the eight wrist bones].")
@click.option("--crop-margin", type=FiniteFloat(0), help="Margin added on each side of the region, as a fraction "
                                                         "of its size [default: 0.15].")
@click.option("--model-classes", help="The model's classes in channel order, comma-separated, when it gives "
                                      "fewer than 29 (its stores hold only these).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@execution_options
@clean_options(classes_flag="--clean-classes")
def predict(checkpoints, images, output, arch, encoder, in_channels, n_classes, checkpoint_format, allow_pickle,
            channels, size, window, overlap, blend, tta, merge, normalize, ensemble, weights, csv_path, threshold,
            thresholds, precision, device, batch_size, resume, crop_from, crop_classes, crop_margin, model_classes,
            quiet, workers, scheduler, keep_going, report, **clean) -> None:
    """Predict per-class probabilities of every PNG in --images with each --ckpt."""
    from hbens import api
    from hbens.predictors import describe_predict

    remember_outputs(csv_path, report, output)
    summary = api.predict(checkpoints, images, output, arch=arch, encoder=encoder, in_channels=in_channels,
                          classes=n_classes, format=checkpoint_format, allow_pickle=allow_pickle, channels=channels,
                          size=size, window=window, overlap=overlap, blend=blend, tta=tta, merge=merge,
                          normalize=normalize, ensemble=ensemble, weights=weights, csv=csv_path, threshold=threshold,
                          thresholds=thresholds, precision=precision, device=device, batch_size=batch_size,
                          resume=resume, crop_from=crop_from, crop_classes=crop_classes, crop_margin=crop_margin,
                          model_classes=model_classes, report=report, workers=workers, scheduler=scheduler,
                          keep_going=keep_going, progress=not quiet, **clean)
    report_summary(summary, describe_predict(summary), summary.cleaned, quiet)
