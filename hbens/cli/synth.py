"""``hbens synth``: synthetic examples."""

from __future__ import annotations

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--images", type=click.IntRange(min=1), default=4, show_default=True, help="Number of synthetic hands.")
@click.option("--models", type=click.IntRange(min=1), default=3, show_default=True,
              help="Number of noisy model submissions.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed.")
@click.option("--pngs", is_flag=True, help="Also write X-ray-like PNGs under FOLDER/images.")
def synth(folder: str, images: int, models: int, seed: int, pngs: bool) -> None:
    """Write a synthetic example to FOLDER: annotation JSONs and noisy model submissions."""
    from pathlib import Path

    from hbens.cli.options import guard_paths
    from hbens.paths import created_folder
    from hbens.synthetic import write_example

    guard_paths(reads=[], folder_writes=[("FOLDER", folder)])
    with created_folder(folder, option="FOLDER"):
        gt, csvs = write_example(folder, images, models, seed, images=pngs)
    pictures = f", {Path(folder) / 'images'}" if pngs else ""
    click.echo(f"wrote {gt} ({images} images){pictures} and {', '.join(map(str, csvs))}")
