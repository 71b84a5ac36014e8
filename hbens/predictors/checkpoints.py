"""Load trained checkpoints of any common format, offline, into an ``nn.Module`` in eval mode.

Formats live in one registry (:data:`LOADERS`): TorchScript, segmentation-models-pytorch
``save_pretrained`` folders, PyTorch Lightning ``.ckpt``, plain state dicts (with the
architecture from options or a YAML/JSON beside the file) and whole pickled models.  State dicts
load with ``weights_only=True``; a pickle, which runs code when loaded, needs ``allow_pickle``.
No loader downloads anything: models are built with ``encoder_weights=None``.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.settings import clip, read_settings

ARCH_KEYS = ("arch", "architecture", "_model_class", "model_class", "model_name", "model_type")
ENCODER_KEYS = ("encoder", "encoder_name", "backbone")
IN_CHANNELS_KEYS = ("in_channels", "input_channels", "in_chans")
CLASSES_KEYS = ("classes", "num_classes", "n_classes", "out_channels")
STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
PREFIXES = ("module.", "model.", "net.", "_orig_mod.")
SIDE_CONFIGS = ("{stem}.yaml", "{stem}.yml", "{stem}.json", "config.yaml", "config.yml", "config.json")
JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"
"""torch's FutureWarning on each TorchScript call (two lines before every run and every error of a
TorchScript checkpoint); silenced where hbens loads or saves TorchScript, nowhere else."""
TORCHSCRIPT_IN_LOAD = r"'torch\.load' received a zip file that looks like a TorchScript archive"
"""torch's UserWarning when ``torch.load`` reads TorchScript (``--format`` forcing another format),
before the error that hbens reports in one line."""


@dataclass
class ModelSpec:
    """An architecture to build with segmentation-models-pytorch (``encoder_weights=None``)."""

    arch: str | None = None
    encoder: str | None = None
    in_channels: int = 3
    classes: int = len(CLASSES)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def completed_by(self, values: dict[str, Any]) -> ModelSpec:
        """Fill the fields still unset from a config or hyper-parameter mapping (options win)."""
        found = _flatten(values)
        arch = self.arch or _first(found, ARCH_KEYS)
        encoder = self.encoder or _first(found, ENCODER_KEYS)
        kwargs = dict(values.get("kwargs", {})) if isinstance(values.get("kwargs"), dict) else {}
        return ModelSpec(arch, encoder, int(_first(found, IN_CHANNELS_KEYS) or self.in_channels),
                         int(_first(found, CLASSES_KEYS) or self.classes), {**kwargs, **self.kwargs})

    def build(self, source: Path):
        """The untrained module; a miss lists the valid architectures."""
        import segmentation_models_pytorch as smp

        if not self.arch or not self.encoder:
            raise HbensError(
                f"{source}: the architecture is unknown; pass --arch and --encoder (e.g. --arch UnetPlusPlus "
                "--encoder efficientnet-b0) or put them in a YAML/JSON beside the checkpoint"
            )
        kwargs = {k: v for k, v in self.kwargs.items() if k != "encoder_weights"}
        try:
            return smp.create_model(self.arch, encoder_name=self.encoder, encoder_weights=None,
                                    in_channels=self.in_channels, classes=self.classes, **kwargs)
        except KeyError as error:
            raise HbensError(f"{source}: {error.args[0]}") from None
        except Exception as error:  # smp raises many types for a bad encoder or keyword
            raise HbensError(f"{source}: cannot build {self.arch} with encoder {self.encoder}: {error}") from None


@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from."""

    module: Any
    name: str
    format: str
    in_channels: int


def _flatten(values: dict[str, Any]) -> dict[str, Any]:
    """Keys of a mapping and of the mappings nested in it (first occurrence wins)."""
    flat: dict[str, Any] = {}
    pending = [values]
    while pending:
        current = pending.pop(0)
        for key, value in current.items():
            if isinstance(value, dict):
                pending.append(value)
            else:
                flat.setdefault(str(key), value)
    return flat


def _first(values: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((values[k] for k in keys if values.get(k) not in (None, "")), None)


@functools.lru_cache(maxsize=1)
def _torch_load(path: Path, allow_pickle: bool):
    """``torch.load`` on the CPU, weights only unless pickles are allowed; cached for detect-then-load."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", TORCHSCRIPT_IN_LOAD, UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" not in str(error).lower():
            raise HbensError(f"{path}: not a PyTorch checkpoint (unreadable pickle stream)") from None
        if not allow_pickle:
            raise HbensError(
                f"{path}: holds pickled Python objects; loading them runs code from the file. "
                "If you trust it, pass --allow-pickle"
            ) from None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as inner:
            raise HbensError(f"{path}: cannot unpickle ({inner}); is the model's code importable?") from None
    except Exception as error:
        raise HbensError(f"{path}: not a PyTorch checkpoint ({error})") from None


def _strip_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """Remove ``module.`` / ``model.`` prefixes shared by every key."""
    changed = True
    while changed and state:
        changed = False
        for prefix in PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                changed = True
    return state


def _state_dict(obj: Any, path: Path) -> dict[str, Any]:
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefixes(dict(obj))
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                return _state_dict(obj[key], path)
    raise HbensError(f"{path}: no state dict found (looked for a dict of tensors or keys {', '.join(STATE_KEYS)})")


def checkpoint_files(path: str | Path) -> list[Path]:
    """Every file a checkpoint is read from: the files of a ``save_pretrained`` folder, or the file
    and the side configs beside it (:data:`SIDE_CONFIGS`) that exist."""
    path = Path(path)
    if path.is_dir():
        return sorted(file for file in path.rglob("*") if file.is_file())
    beside = dict.fromkeys(path.parent / pattern.format(stem=path.stem) for pattern in SIDE_CONFIGS)
    return [path, *(file for file in beside if file.is_file())]


_HASHES: dict[tuple, str] = {}


def checkpoint_hash(path: str | Path) -> str:
    """blake2b (128 bits) of the bytes and relative names of :func:`checkpoint_files`.

    Computed once per process for each set of (file, size, modification time), so that every
    image of a run reuses it.
    """
    path = Path(path)
    root = path if path.is_dir() else path.parent
    files = checkpoint_files(path)
    key = tuple((str(file), file.stat().st_size, file.stat().st_mtime_ns) for file in files)
    if key not in _HASHES:
        digest = hashlib.blake2b(digest_size=16)
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            with open(file, "rb") as handle:
                for chunk in iter(lambda: handle.read(2**20), b""):
                    digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _side_config(path: Path) -> dict[str, Any]:
    """The first mapping among the YAML/JSON files beside a checkpoint (see :data:`SIDE_CONFIGS`)."""
    for pattern in SIDE_CONFIGS:
        candidate = path.parent / pattern.format(stem=path.stem)
        if candidate.is_file():
            data = read_settings(candidate)
            if isinstance(data, dict):
                return data
    return {}


def _load_weights(module, state: dict[str, Any], path: Path):
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0:3]
        raise HbensError(f"{path}: weights do not fit the architecture: {' '.join(first)}") from None
    return module


def _load_safetensors(path: Path) -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file; HbensError in one line when it is truncated or foreign."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file  # imports torch

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        reason = clip(str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise HbensError(f"{path}: not a complete safetensors file ({reason}); save the weights again") from None


def load_torchscript(path: Path, spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATED, FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return LoadedModel(module, path.stem, "torchscript", spec.in_channels)


def load_smp_folder(path: Path, spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    config = read_settings(path / "config.json")
    if not isinstance(config, dict):
        raise HbensError(f"{path / 'config.json'}: expected a JSON object of model settings")
    arch = config.pop("_model_class", None)
    built = ModelSpec(spec.arch or arch, spec.encoder or config.pop("encoder_name", None),
                      int(config.pop("in_channels", spec.in_channels)), int(config.pop("classes", spec.classes)),
                      {**{k: v for k, v in config.items() if not k.startswith("_")}, **spec.kwargs})
    weights = path / "model.safetensors"
    if weights.is_file():
        state = _load_safetensors(weights)
    else:
        state = _state_dict(_torch_load(path / "pytorch_model.bin", allow_pickle), path)
    module = _load_weights(built.build(path), state, path)
    return LoadedModel(module, path.name, "smp-folder", built.in_channels)


def load_lightning(path: Path, spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    checkpoint = _torch_load(path, allow_pickle)
    hyper = checkpoint.get("hyper_parameters") or {}
    built = spec.completed_by({**_side_config(path), **dict(hyper)})
    module = _load_weights(built.build(path), _state_dict(checkpoint, path), path)
    return LoadedModel(module, path.stem, "lightning", built.in_channels)


def load_state_dict(path: Path, spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    if path.suffix == ".safetensors":
        state = _load_safetensors(path)
    else:
        state = _state_dict(_torch_load(path, allow_pickle), path)
    built = spec.completed_by(_side_config(path))
    module = _load_weights(built.build(path), _strip_prefixes(state), path)
    return LoadedModel(module, path.stem, "state-dict", built.in_channels)


def load_pickled(path: Path, spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    import torch

    if not allow_pickle:
        raise HbensError(f"{path}: a whole pickled model; loading it runs code from the file. "
                         "If you trust it, pass --allow-pickle")
    module = _torch_load(path, allow_pickle)
    if not isinstance(module, torch.nn.Module):
        raise HbensError(f"{path}: unpickled a {type(module).__name__}, not a model")
    return LoadedModel(module, path.stem, "pickle", spec.in_channels)


Loader = Callable[[Path, ModelSpec, bool], LoadedModel]
LOADERS: dict[str, Loader] = {
    "torchscript": load_torchscript,
    "smp-folder": load_smp_folder,
    "lightning": load_lightning,
    "state-dict": load_state_dict,
    "pickle": load_pickled,
}


def detect_format(path: Path, allow_pickle: bool = False) -> str:
    """The name of the loader for ``path`` (a key of :data:`LOADERS`)."""
    import torch

    if path.is_dir():
        if (path / "config.json").is_file() and any((path / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
            return "smp-folder"
        raise HbensError(f"{path}: a folder without config.json and model.safetensors; not a save_pretrained model")
    if not path.is_file():
        raise HbensError(f"{path}: no such checkpoint")
    if path.suffix == ".safetensors":
        return "state-dict"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any("/code/" in name or name.endswith("constants.pkl") for name in names):
            return "torchscript"
    obj = _torch_load(path, allow_pickle)
    if isinstance(obj, torch.nn.Module):
        return "pickle"
    if isinstance(obj, dict) and ("pytorch-lightning_version" in obj or "hyper_parameters" in obj):
        return "lightning"
    if isinstance(obj, dict):
        return "state-dict"
    raise HbensError(f"{path}: holds a {type(obj).__name__}; expected a model, a state dict or a Lightning checkpoint")


def load_model(
    path: str | Path, spec: ModelSpec | None = None, allow_pickle: bool = False, format: str | None = None
) -> LoadedModel:
    """Load a checkpoint (format detected unless given) into an eval-mode module on the CPU."""
    path = Path(path)
    spec = spec or ModelSpec()
    name = format or detect_format(path, allow_pickle)
    if name not in LOADERS:
        raise HbensError(f"unknown checkpoint format {name!r}; valid formats: {', '.join(LOADERS)}")
    try:
        loaded = LOADERS[name](path, spec, allow_pickle)
    finally:
        _torch_load.cache_clear()
    loaded.module.eval()
    return loaded
