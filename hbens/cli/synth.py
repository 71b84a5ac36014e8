"""``hbens synth``: hand phantoms in the competition's layout."""

from __future__ import annotations

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--train-ids", type=click.IntRange(min=0), default=2, show_default=True,
              help="IDs (people, two hands each) under FOLDER/train.")
@click.option("--test-ids", type=click.IntRange(min=0), default=1, show_default=True,
              help="IDs under FOLDER/test (with annotations too, to score predictions).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed: the same arguments write the same files.")
@click.option("--size", type=click.IntRange(min=256), default=2048, show_default=True,
              help="Height and width of the images (2048 on the competition).")
@click.option("--overwrite", is_flag=True,
              help="Replace the data set synth wrote in FOLDER before (nothing else may be there).")
def synth(folder: str, train_ids: int, test_ids: int, seed: int, size: int, overwrite: bool) -> None:
    """Write hand phantoms to FOLDER in the competition's layout: train/ and test/, each with
    DCM/IDxxx/NAME.png and outputs_json/IDxxx/NAME.json.  FOLDER must be new or empty, or with
    --overwrite hold only an earlier synth's train/ and test/."""
    from hbens import api
    from hbens.cli.options import remember_outputs

    remember_outputs(folder)
    written = api.synth(folder, train_ids=train_ids, test_ids=test_ids, seed=seed, size=size, overwrite=overwrite)
    click.echo(f"wrote {len(written['train'])} train and {len(written['test'])} test images of {size}x{size} "
               f"under {folder}")
