"""``hbens import``: saved arrays of another pipeline to hbens probability stores."""

from __future__ import annotations

import click

from hbens.cli.options import (
    ImageSize,
    array_options,
    execution_options,
    frame_hints,
    image_size_option,
    remember_outputs,
    report_summary,
)


@click.command("import")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for the hbens stores (NAME.npz for NAME.npy/.npz/.pt).")
@click.option("--size", type=click.IntRange(1, ImageSize.LARGEST),
              help="Stores of N x N images (the same as --image-size N) [default: the map's own size].")
@click.option("--precision", type=click.Choice(["auto", "uint8", "fp16"]), default="auto", show_default=True,
              help="Stored probabilities: uint8 steps of 1/255 or float16; auto: uint8 for uint8 (or bool) "
                   "arrays, float16 for any other.")
@click.option("--resume", is_flag=True,
              help="Keep stores made from the same file (size, modification time) with the same options.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@image_size_option
@array_options
@execution_options
@frame_hints
def import_arrays(src, output, size, precision, resume, quiet, shape, key, kind, array_classes, drop_channel,
                  workers, scheduler, keep_going) -> None:
    """Convert the saved arrays in SRC (.npy, .npz, .pt/.pth per image, written by another pipeline's
    inference) to hbens probability stores, one image at a time.

    The stores' frame is --image-size (or --size), else each array's own size: an array of another
    size is resized to the frame given (bilinearly on logits, over each class's crop)."""
    from hbens import api
    from hbens.importer import describe_import

    remember_outputs(output)
    summary = api.import_arrays(src, output, size=size, precision=precision, resume=resume, shape=shape, key=key,
                                kind=kind, array_classes=array_classes, drop_channel=drop_channel, workers=workers,
                                scheduler=scheduler, keep_going=keep_going, progress=not quiet)
    report_summary(summary, describe_import(summary, output), False, quiet)
