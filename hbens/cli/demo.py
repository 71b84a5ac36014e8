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

    from hbens import api
    from hbens.cli.options import remember_outputs
    from hbens.report import verdict

    def echo(line: str) -> None:
        click.echo(line, err=True)

    remember_outputs(output)
    result = api.demo(output, quick=quick, log=echo, progress=echo if sys.stderr.isatty() else None)
    click.echo("\n".join(result.lines))
    click.echo(verdict(result.stages))
    click.echo(f"wrote {result.report}")
