"""``hbens import``: saved arrays of another pipeline to hbens probability stores."""

from __future__ import annotations

import click

from hbens.cli.options import (
    array_format_from_options,
    array_options,
    execution_from_options,
    execution_options,
    files_under,
    ImageSize,
    finish,
    guard_paths,
)


@click.command("import")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for the hbens stores (NAME.npz for NAME.npy/.npz/.pt).")
@click.option("--size", type=click.IntRange(1, ImageSize.LARGEST),
              help="Stores of N x N images [default: the map's own size, 2048 for a smaller map].")
@click.option("--precision", type=click.Choice(["auto", "uint8", "fp16"]), default="auto", show_default=True,
              help="Stored probabilities: uint8 steps of 1/255 or float16; auto: uint8 for uint8 (or bool) "
                   "arrays, float16 for any other.")
@click.option("--resume", is_flag=True,
              help="Keep stores made from the same file (size, modification time) with the same options.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@array_options
@execution_options
def import_arrays(src, output, size, precision, resume, quiet, key, kind, array_classes, drop_channel, workers,
                  scheduler, keep_going) -> None:
    """Convert the saved arrays in SRC (.npy, .npz, .pt/.pth per image, written by another pipeline's
    inference) to hbens probability stores, one image at a time."""
    guard_paths(reads=[("SRC", src), *files_under("SRC", src), ("--classes", array_classes)],
                folder_writes=[("-o", output)])
    from dataclasses import replace

    from hbens.importer import describe_import, import_folder

    fmt = replace(array_format_from_options(key, kind, array_classes, drop_channel),
                  size=(size, size) if size else None)
    execution = execution_from_options(workers, scheduler, keep_going, quiet)
    summary = import_folder(src, output, fmt, precision="float16" if precision == "fp16" else precision,
                            resume=resume, execution=execution)
    finish(summary, describe_import(summary, output), None, None, quiet)
