"""Options shared by several commands, and the small helpers that turn them into library arguments."""

from __future__ import annotations

import sys

import click

existing_file = click.Path(exists=True, dir_okay=False)


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


def cleanup_from_options(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config):
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


def execution_from_options(workers, scheduler, keep_going, quiet, default_workers: int | None = None):
    from hbens.pipeline import Execution

    return Execution(workers=workers or default_workers, scheduler=scheduler, keep_going=keep_going,
                     progress=not quiet)


def class_thresholds(threshold: float, thresholds: str | None) -> list[float]:
    """One threshold per class: ``threshold``, overridden by a ``class,threshold`` CSV."""
    from hbens.classes import CLASSES, read_class_values

    per_class = read_class_values(thresholds, "threshold") if thresholds else {}
    return [per_class.get(name, threshold) for name in CLASSES]


def refuse_inputs(outputs: tuple[str | None, ...], inputs) -> None:
    """Fail before any work when an output path names an input."""
    from hbens.outputs import refuse_input

    for output in outputs:
        if output:
            refuse_input(output, list(inputs))


def finish(summary, description: str, cleanup, report: str | None, quiet: bool, inputs: tuple = ()) -> None:
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


def parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated numbers such as 1,2,1") from None


