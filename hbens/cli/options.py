"""Options shared by several commands (the commands pass them on to :mod:`hbens.api`), and
the helpers that remember a command's outputs and print its summary."""

from __future__ import annotations

import math
import sys

import click

existing_file = click.Path(exists=True, dir_okay=False)

OUTPUTS = "hbens.outputs"
"""Key of ``ctx.meta`` holding the paths a command writes (for naming them when a write fails)."""


class FiniteFloat(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses NaN (which compares false with any bound) and
    the infinities."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


probability = FiniteFloat(0, 1)
"""A probability: a finite number in [0, 1]."""

positive = FiniteFloat(0, min_open=True)
"""A finite number > 0."""

non_negative = FiniteFloat(0)
"""A finite number >= 0."""


class ImageSize(click.ParamType):
    """An image size: ``N`` (N x N) or ``HxW``, each side 1 to :attr:`LARGEST` pixels."""

    name = "N|HxW"
    LARGEST = 16384

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = str(value).lower().split("x")
        if len(parts) not in (1, 2) or not all(part.strip().isdigit() for part in parts):
            self.fail(f"{value!r}: expected N or HxW in pixels, such as 2048 or 1024x768", param, ctx)
        sides = [int(part) for part in parts]
        if not all(1 <= side <= self.LARGEST for side in sides):
            self.fail(f"{value!r}: each side must be 1 to {self.LARGEST} pixels", param, ctx)
        return (sides[0], sides[-1])


image_size_option = click.option(
    "--image-size", "shape", type=ImageSize(),
    help="The frame: size of the images the RLE strings, annotations and maps describe, N or HxW "
         "[default: the stores', else the --images X-rays', else the saved arrays', else 2048].")
"""``--image-size``: the frame (None when not given: the library resolves it, see :mod:`hbens.frames`)."""


def frame_hints(command):
    """Print each :class:`~hbens.frames.FrameWarning` that ``command`` issued, once, on stderr as
    ``hbens NAME: hint: ...`` after its output (none when it fails); other warnings go on as they were."""
    import functools
    import warnings

    @functools.wraps(command)
    def run(*args, **kwargs):
        from hbens.frames import FrameWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FrameWarning)
            result = command(*args, **kwargs)
        hints = []
        for warning in caught:
            if not issubclass(warning.category, FrameWarning):
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
            elif str(warning.message) not in hints:
                hints.append(str(warning.message))
        name = click.get_current_context().info_name
        for message in hints:
            click.echo(f"hbens {name}: hint: {message}", err=True)
        return result

    return run


class Weights(click.ParamType):
    """Comma-separated weights, e.g. ``2,1,1``: each a finite number > 0."""

    name = "weights"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from hbens.settings import clip, examples

        try:
            weights = tuple(float(part) for part in value.split(","))
        except ValueError:
            self.fail(f"{clip(repr(value), limit=60)}: expected comma-separated numbers such as 2,1,1", param, ctx)
        bad = [weight for weight in weights if not (math.isfinite(weight) and weight > 0)]
        if bad:
            self.fail(f"{examples(bad)}: every weight must be a finite number > 0", param, ctx)
        return weights


weight_list = Weights()


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


def execution_options(command):
    """The ``--workers``, ``--scheduler`` and ``--keep-going`` options of every per-image command."""
    options = [
        click.option("--workers", type=click.IntRange(min=1),
                     help="Number of workers [default: one per core; 2 with processes or --scheduler local]."),
        click.option("--scheduler", default="auto", show_default=True, metavar="NAME|tcp://HOST:PORT",
                     help="auto (threads; processes for the CRF, which holds the GIL), threads, processes, "
                          "local (a Dask LocalCluster) or the address of a Dask scheduler."),
        click.option("--keep-going", is_flag=True, help="Report images that fail and go on (exit status 1)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def remember_outputs(*paths) -> None:
    """Remember the paths a command writes (None: not written) in ``ctx.meta``, so that a failed
    write names them; the API's path guard checks them."""
    click.get_current_context().meta[OUTPUTS] = [str(path) for path in paths if path is not None]


def report_summary(summary, description: str, cleaned: bool, quiet: bool) -> None:
    """The summary of a run on stderr unless quiet (with what the cleanup did when ``cleaned``),
    and exit status 1 when images failed."""
    clean = getattr(summary.stats, "clean", summary.stats)
    if not quiet:
        text = description + (f"; {clean}" if cleaned else "")
        if summary.failed:
            text += f"\n{len(summary.failed)} image(s) failed:\n  " + "\n  ".join(summary.failed)
        click.echo(text, err=True)
    if summary.failed:
        sys.exit(1)


def array_options(command):
    """How to read folders of saved arrays from other pipelines: ``--key``, ``--kind``, ``--classes``,
    ``--drop-channel`` (ignored for hbens stores)."""
    options = [
        click.option("--key", help="Saved arrays: the array's name in .npz/.pt files holding several."),
        click.option("--kind", default="auto", show_default=True, metavar="auto|logits|probs|scaled:N",
                     help="Saved arrays: what the values are (auto: float outside [0,1] = logits, uint16 = x10000, "
                          "uint8 = x255)."),
        click.option("--classes", "array_classes", type=existing_file,
                     help="Saved arrays: FILE of the class names in channel order (one per line or comma-separated) "
                          "[default: the competition's 29]."),
        click.option("--drop-channel", type=click.IntRange(min=0),
                     help="Saved arrays: drop this channel first (e.g. 0 for nnU-Net's background)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command
