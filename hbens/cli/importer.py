"""``hbens import``: saved arrays of another pipeline to hbens probability stores."""

from __future__ import annotations

import click

from hbens.cli.options import (
    array_format_from_options,
    array_options,
    execution_from_options,
    execution_options,
    ImageSize,
    finish,
    frame_hints,
    guard_paths,
    image_size_option,
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

    The stores' frame is --image-size (or --size), else each array's own size: a smaller array is
    enlarged to the frame, a larger one refused."""
    if size is not None and shape is not None and shape != (size, size):
        raise click.UsageError(f"--size {size} and --image-size {shape[0]}x{shape[1]} disagree; give one")
    guard_paths(reads=[("SRC", src), ("--classes", array_classes)],
                folder_writes=[("-o", output)])
    from dataclasses import replace

    from hbens.importer import describe_import, import_folder

    fmt = replace(array_format_from_options(key, kind, array_classes, drop_channel),
                  size=shape or ((size, size) if size else None))
    execution = execution_from_options(workers, scheduler, keep_going, quiet)
    summary = import_folder(src, output, fmt, precision="float16" if precision == "fp16" else precision,
                            resume=resume, execution=execution)
    finish(summary, describe_import(summary, output), None, None, quiet)
