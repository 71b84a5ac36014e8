"""The recipe that ``hbens tune`` writes: per class, which inputs to fuse and how to post-process.

A recipe is a YAML file meant to be read and edited by hand (format ``hbens-recipe``,
version 1)::

    format: hbens-recipe
    version: 1
    inputs:                      # in order: members are indices into this list
    - {name: unet-a, kind: store}
    - {name: b.csv, kind: csv}
    classes:                     # every class of hbens.classes, once
      finger-1:
        members: [0, 1]          # required: distinct indices into inputs
        weights: [2, 1]          # required: one number > 0 per member
        space: prob              # required: prob or logit, where the weighted mean is taken
        threshold: 0.45          # required: foreground is fused probability > threshold
        cleanup: {min_area: 0, keep: 1, fill_holes: false, connectivity: 8}  # optional
        crf: false               # optional: false, or CRF settings such as {iterations: 5}
        scores: {baseline: 0.97, in_sample: 0.98, out_of_fold: 0.975}     # optional report

``cleanup`` takes the keys of :class:`hbens.postproc.clean.CleanConfig` (missing ones default
to doing nothing) and ``crf`` those of :class:`hbens.postproc.crf.CRFParams`.  ``scores`` are
the mean Dice of the untuned baseline, of this class's recipe on the images it was tuned on and
on held-out folds; they are a report, unused when the recipe is applied.

:func:`read_recipe` is strict: an unknown key, a wrong type (``"false"`` for ``false``), a
number that is not finite or out of range, a member index past the inputs, a class missing or
given twice is refused with one line naming the file and the key path.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from hbens.classes import CLASS_INDEX, CLASSES
from hbens.errors import HbensError, located
from hbens.maps.folders import Inputs, MapFolder
from hbens.outputs import PathLike, atomic_open
from hbens.postproc.clean import CleanConfig
from hbens.postproc.crf import CRFParams
from hbens.settings import read_text

FORMAT = "hbens-recipe"
VERSION = 1
KINDS = ("store", "csv")
"""Input kinds: a folder of probability stores, or a submission CSV."""
SPACES = ("prob", "logit")
"""Where the weighted mean of the members is taken: probabilities, or their logits."""

_HEADER = """\
# hbens recipe: for each class, the inputs fused (indices into inputs, with weights), where the
# weighted mean is taken (prob or logit), the threshold (foreground is strictly above it), the
# cleanup and the CRF.  scores: mean Dice of the untuned baseline, of this recipe on the images
# it was tuned on (in_sample) and on held-out folds (out_of_fold); a report only.
"""


@dataclass(frozen=True)
class RecipeInput:
    """One input of the recipe: a name (as the user gave it) and its kind (``store`` or ``csv``)."""

    name: str
    kind: str


def recipe_inputs(inputs: Inputs) -> tuple[RecipeInput, ...]:
    """Each input's name (its file or folder name; the path as given when two names clash) and kind."""
    names = [Path(path).name or str(path) for path in inputs.paths]
    if len(set(names)) < len(names):
        names = [str(path) for path in inputs.paths]
    return tuple(RecipeInput(name, "store" if isinstance(source, MapFolder) else "csv")
                 for name, source in zip(names, inputs.sources))


@dataclass(frozen=True)
class ClassScores:
    """Mean Dice of one class: untuned baseline, tuned recipe in sample and out of fold."""

    baseline: float
    in_sample: float
    out_of_fold: float


@dataclass(frozen=True)
class ClassRecipe:
    """How one class is made: fuse ``members`` with ``weights`` in ``space``, threshold, clean, CRF."""

    members: tuple[int, ...]
    weights: tuple[float, ...]
    space: str = "prob"
    threshold: float = 0.5
    cleanup: CleanConfig = field(default_factory=CleanConfig)
    crf: CRFParams | None = None
    scores: ClassScores | None = None


@dataclass(frozen=True)
class Recipe:
    """The inputs, in order, and a :class:`ClassRecipe` for every class (canonical order)."""

    inputs: tuple[RecipeInput, ...]
    classes: Mapping[str, ClassRecipe]


def write_recipe(path: PathLike, recipe: Recipe, *, inputs: Sequence[PathLike] = ()) -> None:
    """Write ``recipe`` as YAML, atomically, after checking that :func:`read_recipe` accepts it.

    Scores are rounded to 6 decimals; every other number is written exactly.  ``inputs`` are
    paths the output must not overwrite.

    Example
    -------
    >>> import tempfile
    >>> classes = {name: ClassRecipe(members=(0,), weights=(1,)) for name in CLASSES}
    >>> recipe = Recipe(inputs=(RecipeInput("a.csv", "csv"),), classes=classes)
    >>> path = Path(tempfile.mkdtemp()) / "recipe.yaml"
    >>> write_recipe(path, recipe)
    >>> read_recipe(path) == recipe
    True
    """
    data = _to_data(recipe)
    _from_data(data, str(path))
    with atomic_open(path, inputs) as handle:
        handle.write(_HEADER)
        yaml.safe_dump(data, handle, sort_keys=False, default_flow_style=None, allow_unicode=True, width=1000)


def read_recipe(path: PathLike) -> Recipe:
    """Read and check a recipe; raise :class:`HbensError` with a one-line ``file: key.path: problem``.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "recipe.yaml"
    >>> _ = path.write_text("format: hbens-recipe\\nversion: 2\\n")
    >>> try:
    ...     read_recipe(path)
    ... except HbensError as error:
    ...     print(str(error).removeprefix(f"{path}: "))
    version: expected 1 (the recipe version this hbens reads), got 2
    """
    path = Path(path)
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as error:
        problem = f"key {error.key!r} appears twice (first on line {error.first})"
        raise HbensError(located(path, error.line, problem)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        line = mark.line + 1 if mark else None
        raise HbensError(located(path, line, f"not valid YAML ({problem})")) from None
    except RecursionError:
        raise HbensError(f"{path}: nested too deeply; is this a recipe written by hbens tune?") from None
    return _from_data(data, str(path))


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int, first: int):
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        self.flatten_mapping(node)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
            except TypeError:
                continue
        return super().construct_mapping(node, deep)


def _to_data(recipe: Recipe) -> dict:
    """The recipe as plain YAML-ready values, in the documented key order."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "inputs": [{"name": item.name, "kind": item.kind} for item in recipe.inputs],
        "classes": {name: _class_data(entry) for name, entry in
                    sorted(recipe.classes.items(), key=lambda item: CLASS_INDEX.get(item[0], len(CLASSES)))},
    }


def _class_data(entry: ClassRecipe) -> dict:
    data = {
        "members": [int(i) for i in entry.members],
        "weights": [_plain_number(w) for w in entry.weights],
        "space": entry.space,
        "threshold": float(entry.threshold),
        "cleanup": _plain_values(entry.cleanup),
        "crf": False if entry.crf is None else _plain_values(entry.crf),
    }
    if entry.scores is not None:
        data["scores"] = {name: round(float(value), 6) for name, value in asdict(entry.scores).items()}
    return data


def _plain_values(settings: object) -> dict:
    """A dataclass's fields as a dict of plain Python values (numpy scalars become int, float, bool)."""
    return {name: value.item() if isinstance(value, np.generic) else value for name, value in asdict(settings).items()}


def _plain_number(value: float) -> int | float:
    """``2`` for 2.0 (easier to read), the float otherwise."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _join(where: str, key: object) -> str:
    """The key path of ``key`` inside ``where`` (``classes.Pisiform`` + ``threshold``)."""
    return f"{where}.{key}" if where else str(key)


class _Checker:
    """Type and range checks of recipe values, each failure one line naming the file and key path."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str, problem: str) -> HbensError:
        return HbensError(f"{self.file}: {where}: {problem}")

    def mapping(
        self, value: object, where: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict:
        known = (*required, *optional)
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping with keys {', '.join(known)}, got {value!r}")
        unknown = [key for key in value if key not in known]
        if unknown:
            raise self.fail(_join(where, unknown[0]), f"unknown key; known keys: {', '.join(known)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise self.fail(_join(where, missing[0]), f"missing; required keys: {', '.join(required)}")
        return value

    def number(
        self, value: object, where: str, low: float, high: float = math.inf, *, low_open: bool = False
    ) -> float:
        wanted = f"in [{low:g}, {high:g}]" if high < math.inf else f"{'>' if low_open else '>='} {low:g}"
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok or not (low < value if low_open else low <= value) or value > high:
            raise self.fail(where, f"expected a number {wanted}, got {value!r}")
        return float(value)

    def integer(self, value: object, where: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(where, f"expected an integer >= {low}, got {value!r}")
        return value

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}")
        return value

    def choice(self, value: object, where: str, options: Sequence[object]) -> Any:
        if not any(type(value) is type(option) and value == option for option in options):
            raise self.fail(where, f"expected one of {', '.join(map(str, options))}, got {value!r}")
        return value

    def items(self, value: object, where: str, what: str) -> list:
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"expected a non-empty list of {what}, got {value!r}")
        return value


def _from_data(data: object, file: str) -> Recipe:
    """Check parsed YAML and build the :class:`Recipe`."""
    check = _Checker(file)
    if not isinstance(data, dict):
        raise HbensError(f"{file}: expected a mapping with keys format, version, inputs, classes; "
                         "is this a recipe written by hbens tune?")
    if data.get("format") != FORMAT:
        raise check.fail("format", f"expected {FORMAT!r}, got {data.get('format')!r}; "
                                   "is this a recipe written by hbens tune?")
    if isinstance(data.get("version"), bool) or data.get("version") != VERSION:
        raise check.fail("version", f"expected {VERSION} (the recipe version this hbens reads), "
                                    f"got {data.get('version')!r}")
    check.mapping(data, "", ("format", "version", "inputs", "classes"))
    inputs = _inputs(check, data["inputs"])
    classes = data["classes"]
    if not isinstance(classes, dict):
        raise check.fail("classes", f"expected a mapping of class names to class recipes, got {classes!r}")
    unknown = [name for name in classes if name not in CLASSES]
    if unknown:
        raise check.fail(f"classes.{unknown[0]}", f"unknown class; valid classes: {', '.join(CLASSES)}")
    missing = [name for name in CLASSES if name not in classes]
    if missing:
        raise check.fail("classes", f"missing class {missing[0]!r} ({len(missing)} missing); "
                                    "every class needs a recipe")
    recipes = {name: _class_recipe(check, classes[name], f"classes.{name}", len(inputs)) for name in CLASSES}
    return Recipe(inputs, recipes)


def _inputs(check: _Checker, value: object) -> tuple[RecipeInput, ...]:
    items = check.items(value, "inputs", "{name: ..., kind: store|csv} mappings")
    inputs = []
    for i, item in enumerate(items):
        where = f"inputs[{i}]"
        item = check.mapping(item, where, ("name", "kind"))
        name = item["name"]
        if not isinstance(name, str) or not name:
            raise check.fail(f"{where}.name", f"expected a non-empty string, got {name!r}")
        if name in [earlier.name for earlier in inputs]:
            raise check.fail(f"{where}.name", f"{name!r} is already the name of another input; "
                                              "names must differ")
        inputs.append(RecipeInput(name, check.choice(item["kind"], f"{where}.kind", KINDS)))
    return tuple(inputs)


def _class_recipe(check: _Checker, value: object, where: str, n_inputs: int) -> ClassRecipe:
    entry = check.mapping(value, where, ("members", "weights", "space", "threshold"),
                          ("cleanup", "crf", "scores"))
    members = check.items(entry["members"], f"{where}.members", "input indices")
    members = tuple(_member(check, m, f"{where}.members[{k}]", n_inputs) for k, m in enumerate(members))
    if len(set(members)) != len(members):
        repeated = next(m for m in members if members.count(m) > 1)
        raise check.fail(f"{where}.members", f"input {repeated} is listed twice; members must differ")
    weights = entry["weights"]
    if not isinstance(weights, list) or len(weights) != len(members):
        raise check.fail(f"{where}.weights",
                         f"expected a list of {len(members)} weight(s), one per member, got {weights!r}")
    weights = tuple(check.number(w, f"{where}.weights[{k}]", 0.0, low_open=True)
                    for k, w in enumerate(weights))
    return ClassRecipe(
        members=members,
        weights=weights,
        space=check.choice(entry["space"], f"{where}.space", SPACES),
        threshold=check.number(entry["threshold"], f"{where}.threshold", 0.0, 1.0),
        cleanup=_cleanup(check, entry.get("cleanup", {}), f"{where}.cleanup"),
        crf=_crf(check, entry.get("crf", False), f"{where}.crf"),
        scores=None if "scores" not in entry else _scores(check, entry["scores"], f"{where}.scores"),
    )


def _member(check: _Checker, value: object, where: str, n_inputs: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_inputs:
        raise check.fail(where, f"expected an index into inputs, 0..{n_inputs - 1}, got {value!r}")
    return value


def _cleanup(check: _Checker, value: object, where: str) -> CleanConfig:
    values = check.mapping(value, where, (), [f.name for f in fields(CleanConfig)])
    default = CleanConfig()
    keep = values.get("keep", default.keep)
    return CleanConfig(
        min_area=check.integer(values.get("min_area", default.min_area), f"{where}.min_area", 0),
        keep=None if keep is None else check.integer(keep, f"{where}.keep", 1),
        fill_holes=check.boolean(values.get("fill_holes", default.fill_holes), f"{where}.fill_holes"),
        connectivity=check.choice(values.get("connectivity", default.connectivity), f"{where}.connectivity",
                                  (4, 8)),
    )


_CRF_INTEGERS = {"iterations": 1, "margin": 0}
"""CRF settings that are integers, with their least value; the others are numbers."""


def _crf(check: _Checker, value: object, where: str) -> CRFParams | None:
    if value is False:
        return None
    names = [f.name for f in fields(CRFParams)]
    if not isinstance(value, dict):
        raise check.fail(where, f"expected false or a mapping of CRF settings ({', '.join(names)}), "
                                f"got {value!r}")
    values = check.mapping(value, where, (), names)
    settings = {}
    for name, setting in values.items():
        if name in _CRF_INTEGERS:
            settings[name] = check.integer(setting, f"{where}.{name}", _CRF_INTEGERS[name])
        elif name.endswith("compat"):
            settings[name] = check.number(setting, f"{where}.{name}", 0.0)
        else:
            settings[name] = check.number(setting, f"{where}.{name}", 0.0, low_open=True)
    return CRFParams(**settings)


def _scores(check: _Checker, value: object, where: str) -> ClassScores:
    names = [f.name for f in fields(ClassScores)]
    values = check.mapping(value, where, names)
    return ClassScores(*(check.number(values[name], f"{where}.{name}", 0.0, 1.0) for name in names))
