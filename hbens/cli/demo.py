"""``hbens demo``: phantoms, tiny trained models, the whole pipeline and a report."""

from __future__ import annotations

import click


@click.command()
@click.option("-o", "--output", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write into: new, empty, or holding a demo stopped before its end (started again).")
@click.option("--quick", is_flag=True, help="Fewer, smaller images and shorter training (under 3 minutes).")
def demo(output: str, quick: bool) -> None:
    """Train tiny models on hand phantoms, run every stage of the pipeline, print a table and write
    OUTPUT/report.html.  On a terminal, training shows its progress on stderr."""
    import sys

    from hbens.cli.options import guard_paths
    from hbens.demo import run_demo
    from hbens.paths import created_folder
    from hbens.report import verdict

    guard_paths(reads=[], folder_writes=[("-o", output)])
    with created_folder(output):
        result = run_demo(output, quick=quick, log=lambda line: click.echo(line, err=True),
                          progress=(lambda line: click.echo(line, err=True)) if sys.stderr.isatty() else None)
    click.echo("\n".join(result.lines))
    click.echo(verdict(result.stages))
    click.echo(f"wrote {result.report}")
