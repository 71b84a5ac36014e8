"""``hbens synth``: synthetic examples."""

from __future__ import annotations

import click


@click.command()
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
