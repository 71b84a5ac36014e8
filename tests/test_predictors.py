"""Prediction from checkpoints of every format, offline, with tiny randomly initialised models."""

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
smp = pytest.importorskip("segmentation_models_pytorch")

import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from hbens.cli import cli  # noqa: E402
from hbens.errors import HbensError  # noqa: E402
from hbens.maps.probabilities import ProbabilityStore, load_probabilities  # noqa: E402
from hbens.predictors import (  # noqa: E402
    ModelSource,
    ModelSpec,
    PredictOptions,
    Predictor,
    detect_format,
    load_model,
    predict_folder,
)
from hbens.predictors.checkpoints import JIT_DEPRECATED  # noqa: E402
from hbens.predictors.model import InferenceModel, output_logits  # noqa: E402
from hbens.submission import read_submission  # noqa: E402

pytestmark = pytest.mark.slow
ARCH, ENCODER = "Unet", "tu-mobilenetv3_small_050"
SIZE = 64


class NaNModel(torch.nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 29, *x.shape[2:]), float("nan"))


def make_model(classes=29):
    torch.manual_seed(0)
    model = smp.create_model(ARCH, encoder_name=ENCODER, encoder_weights=None, classes=classes)
    with torch.no_grad():
        model.segmentation_head[0].bias.fill_(-1.0)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, model):
    """The same weights saved in every supported format."""
    folder = tmp_path_factory.mktemp("ckpt")
    state = model.state_dict()
    paths = {}
    paths["raw"] = folder / "raw.pth"
    torch.save(state, paths["raw"])
    (folder / "raw.yaml").write_text(f"arch: {ARCH}\nencoder: {ENCODER}\n")
    paths["nested"] = folder / "nested.pt"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, paths["nested"])
    (folder / "nested.json").write_text(json.dumps({"arch": ARCH, "encoder": ENCODER}))
    paths["lightning"] = folder / "light.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "pytorch-lightning_version": "2.4.0",
                "hyper_parameters": {"model": {"arch": ARCH, "encoder_name": ENCODER, "classes": 29}, "lr": 1e-3}},
               paths["lightning"])
    paths["smp"] = folder / "pretrained"
    model.save_pretrained(str(paths["smp"]))
    paths["torchscript"] = folder / "scripted.pt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATED, FutureWarning)
        torch.jit.trace(model, torch.rand(1, 3, SIZE, SIZE)).save(str(paths["torchscript"]))
    paths["pickle"] = folder / "whole.pth"
    torch.save(model, paths["pickle"])
    paths["safetensors"] = folder / "weights.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(paths["safetensors"]))
    (folder / "weights.yaml").write_text(f"arch: {ARCH}\nencoder: {ENCODER}\n")
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    import cv2

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    for i in range(3):
        sub = folder / f"ID00{i}"
        sub.mkdir()
        image = (rng.random((SIZE, SIZE)) * 255).astype(np.uint8)
        image[16:40, 20:30] = 255
        cv2.imwrite(str(sub / f"image_{i}_R.png"), image)
    return folder


def direct_logits(model, image):
    x = torch.from_numpy(np.repeat(image[None, None], 3, axis=1))
    with torch.no_grad():
        return model(x)[0]


def gray(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255


@pytest.mark.parametrize("kind, expected", [
    ("raw", "state-dict"), ("nested", "state-dict"), ("lightning", "lightning"), ("smp", "smp-folder"),
    ("torchscript", "torchscript"), ("safetensors", "state-dict"),
])
def test_every_format_matches_a_direct_forward(checkpoints, images, model, kind, expected):
    assert detect_format(checkpoints[kind]) == expected
    loaded = load_model(checkpoints[kind])
    predictor = Predictor(InferenceModel(loaded, "cpu"), PredictOptions())
    image = gray(next(images.rglob("*.png")))
    ours = predictor.logits([image])[0]
    assert np.allclose(ours, direct_logits(model, image).numpy(), atol=1e-4)


def test_pickle_needs_the_explicit_flag(checkpoints, images, model):
    with pytest.raises(HbensError, match="runs code from the file. If you trust it, pass --allow-pickle"):
        load_model(checkpoints["pickle"])
    loaded = load_model(checkpoints["pickle"], allow_pickle=True)
    assert loaded.format == "pickle"
    image = gray(next(images.rglob("*.png")))
    ours = Predictor(InferenceModel(loaded), PredictOptions()).logits([image])[0]
    assert np.allclose(ours, direct_logits(model, image).numpy(), atol=1e-4)


def test_architecture_errors(checkpoints, tmp_path):
    bare = tmp_path / "bare.pth"
    bare.write_bytes(checkpoints["raw"].read_bytes())
    with pytest.raises(HbensError, match="architecture is unknown; pass --arch and --encoder"):
        load_model(bare)
    with pytest.raises(HbensError, match="Unetz"):
        load_model(bare, ModelSpec("Unetz", ENCODER))
    with pytest.raises(HbensError, match="weights do not fit"):
        load_model(bare, ModelSpec("FPN", ENCODER))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(HbensError, match="junk.pth: not a PyTorch checkpoint"):
        load_model(junk)
    with pytest.raises(HbensError, match="unknown checkpoint format 'onnx'; valid formats: torchscript"):
        load_model(bare, format="onnx")


def test_output_forms_and_channel_selection():
    logits = torch.zeros(1, 32, 4, 4)

    class WithLogits:
        def __init__(self, value):
            self.logits = value

    for output in (logits[:, :29], {"out": logits[:, :29]}, (logits[:, :29], None), WithLogits(logits[:, :29])):
        assert output_logits(output, "m").shape == (1, 29, 4, 4)
    with pytest.raises(HbensError, match="gives 32 channels, expected 29; select them with --channels"):
        output_logits(logits, "m")
    assert output_logits(logits, "m", slice(0, 29)).shape == (1, 29, 4, 4)


def test_non_finite_outputs_are_reported():
    from hbens.predictors.checkpoints import LoadedModel

    model = InferenceModel(LoadedModel(NaNModel(), "nan", "pickle", 3))
    with pytest.raises(HbensError, match="nan: the model produced non-finite logits"):
        model(torch.zeros(1, 3, 32, 32))


def test_hflip_tta_is_the_mean_of_both_passes(checkpoints, images, model):
    image = gray(next(images.rglob("*.png")))
    predictor = Predictor(InferenceModel(load_model(checkpoints["smp"])), PredictOptions(tta="hflip"))
    plain = direct_logits(model, image)
    flipped = direct_logits(model, image[:, ::-1].copy()).flip(-1)
    assert np.allclose(predictor.logits([image])[0], ((plain + flipped) / 2).numpy(), atol=1e-4)


def test_scale_tta_returns_the_exact_input_size(checkpoints, images):
    image = gray(next(images.rglob("*.png")))
    predictor = Predictor(InferenceModel(load_model(checkpoints["smp"])),
                          PredictOptions(size=96, tta="hflip,vflip,multiply=0.9:1.1,scale=0.7:1.3", merge="gmean"))
    assert predictor.logits([image])[0].shape == (29, 96, 96)


def test_one_window_equals_a_plain_pass(checkpoints, images):
    image = gray(next(images.rglob("*.png")))
    model = InferenceModel(load_model(checkpoints["smp"]))
    plain = Predictor(model, PredictOptions()).logits([image])[0]
    for blend in ("gaussian", "mean"):
        tiled = Predictor(model, PredictOptions(window=SIZE, blend=blend)).logits([image])[0]
        assert np.allclose(tiled, plain, atol=1e-5)
    overlapping = Predictor(model, PredictOptions(window=32, overlap=0.5)).logits([image])[0]
    assert overlapping.shape == plain.shape and np.isfinite(overlapping).all()


def test_store_round_trips_within_one_step(tmp_path, checkpoints, images, model):
    summary = predict_folder([ModelSource(checkpoint=str(checkpoints["smp"]))], images, tmp_path,
                             PredictOptions(size=32))
    assert summary.images == 3 and summary.stats.predicted == 3
    for path in sorted(images.rglob("*.png")):
        image = gray(path)
        small = F.interpolate(torch.from_numpy(np.repeat(image[None, None], 3, 1)), size=(32, 32), mode="bilinear",
                              align_corners=False)
        with torch.no_grad():
            logits = model(small)
        expected = torch.sigmoid(F.interpolate(logits, size=image.shape, mode="bilinear", align_corners=False))[0]
        store = ProbabilityStore(tmp_path / "pretrained" / f"{path.stem}.npz")
        assert store.meta["shape"] == [SIZE, SIZE] and store.meta["model"] == "pretrained"
        assert np.abs(store.to_array() - expected.numpy()).max() <= 1 / 255 + 1e-5
        assert np.array_equal(store.class_map(5), store.to_array()[5])


def test_ensemble_mean_of_two_models(tmp_path, checkpoints, images):
    options = PredictOptions(tta="vflip")
    a, b = ModelSource(checkpoint=str(checkpoints["smp"])), ModelSource(checkpoint=str(checkpoints["nested"]))
    predict_folder([a, b], images, tmp_path / "single", options)
    predict_folder([a, b], images, tmp_path / "both", options, ensemble="mean", weights=[3, 1])
    for path in images.rglob("*.png"):
        name = f"{path.stem}.npz"
        expected = (3 * load_probabilities(tmp_path / "single" / "pretrained" / name)
                    + load_probabilities(tmp_path / "single" / "nested" / name)) / 4
        assert np.abs(load_probabilities(tmp_path / "both" / "ensemble" / name) - expected).max() <= 1.5 / 255


def test_cli_predict_csv_resume_after_a_killed_run(tmp_path, checkpoints, images):
    runner = CliRunner()
    args = ["predict", "--ckpt", str(checkpoints["smp"]), "--images", str(images), "--size", "32", "--quiet"]
    full = runner.invoke(cli, args + ["-o", str(tmp_path / "a"), "--csv", str(tmp_path / "a.csv")])
    assert full.exit_code == 0, full.output
    rows = read_submission(tmp_path / "a.csv")
    assert len(rows) == 87 and {k[0] for k in rows} == {"image_0_R.png", "image_1_R.png", "image_2_R.png"}
    killed = tmp_path / "b" / "pretrained"
    killed.mkdir(parents=True)
    (killed / "image_0_R.npz").write_bytes((tmp_path / "a" / "pretrained" / "image_0_R.npz").read_bytes())
    (killed / "image_1_R.npz").write_bytes((tmp_path / "a" / "pretrained" / "image_1_R.npz").read_bytes()[:100])
    resumed = runner.invoke(cli, args + ["-o", str(tmp_path / "b"), "--csv", str(tmp_path / "b.csv"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    for name in ("image_0_R.npz", "image_1_R.npz", "image_2_R.npz"):
        assert np.array_equal(load_probabilities(killed / name), load_probabilities(tmp_path / "a" / "pretrained" / name))


def test_resume_recomputes_stores_of_another_image_size_or_tta(tmp_path, checkpoints, images):
    import shutil

    import cv2

    from hbens.predictors import describe_predict

    source = ModelSource(checkpoint=str(checkpoints["smp"]))
    out = tmp_path / "out"

    def run(folder, **options):
        return predict_folder([source], folder, out, PredictOptions(**options), resume=True).stats

    assert run(images, size=32).predicted == 3
    same = run(images, size=32)
    assert (same.resumed, same.predicted, same.redone) == (3, 0, 0)
    resized = run(images, size=64)
    assert (resized.predicted, resized.redone, resized.reasons) == (3, 3, {"another --size": 3})
    flipped = run(images, size=64, tta="hflip")
    assert (flipped.predicted, flipped.redone, flipped.reasons) == (3, 3, {"another --tta": 3})
    edited = tmp_path / "edited"
    shutil.copytree(images, edited)
    first = sorted(edited.rglob("*.png"))[0]
    cv2.imwrite(str(first), 255 - cv2.imread(str(first), cv2.IMREAD_GRAYSCALE))
    summary = predict_folder([source], edited, out, PredictOptions(size=64, tta="hflip"), resume=True)
    assert (summary.stats.resumed, summary.stats.redone, summary.stats.reasons) == (2, 1, {"another image": 1})
    assert "1 store(s) found but redone (another image: 1)" in describe_predict(summary)
    fresh = tmp_path / "fresh"
    predict_folder([source], edited, fresh, PredictOptions(size=64, tta="hflip"))
    for path in (fresh / "pretrained").glob("*.npz"):
        assert np.array_equal(load_probabilities(path), load_probabilities(out / "pretrained" / path.name))


def test_cli_bad_inputs(tmp_path, checkpoints, images):
    runner = CliRunner()
    base = ["predict", "--images", str(images), "-o", str(tmp_path / "o"), "--quiet"]
    result = runner.invoke(cli, base + ["--ckpt", str(checkpoints["pickle"])])
    assert result.exit_code == 1 and "--allow-pickle" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, base + ["--ckpt", str(checkpoints["smp"]), "--size", "50"])
    assert result.exit_code == 1 and "multiple of 32" in result.output
    result = runner.invoke(cli, base + ["--ckpt", str(checkpoints["smp"]), "--tta", "rotate"])
    assert result.exit_code == 1 and "unknown transform" in result.output
    broken = tmp_path / "broken"
    (broken / "ID1").mkdir(parents=True)
    (broken / "ID1" / "bad.png").write_bytes(b"no png")
    result = runner.invoke(cli, ["predict", "--images", str(broken), "-o", str(tmp_path / "p"), "--quiet",
                                 "--ckpt", str(checkpoints["smp"])])
    assert result.exit_code == 1 and "bad.png: unreadable image" in result.output
    result = runner.invoke(cli, ["predict", "--images", str(broken), "-o", str(tmp_path / "p"), "--keep-going",
                                 "--ckpt", str(checkpoints["smp"])])
    assert result.exit_code == 1 and "1 image(s) failed" in result.output


@pytest.mark.parametrize("extra", [["--workers", "2"], ["--scheduler", "processes", "--workers", "2"],
                                   ["--scheduler", "local", "--workers", "2"]])
def test_predict_is_identical_under_every_executor(tmp_path, checkpoints, images, extra):
    base = ["predict", "--ckpt", str(checkpoints["smp"]), "--images", str(images), "--size", "32", "--quiet",
            "--tta", "hflip"]
    for name, options in (("one", []), ("other", extra)):
        result = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / name), "--csv", str(tmp_path / f"{name}.csv"),
                                          *options])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "other.csv").read_bytes()
    for path in (tmp_path / "one" / "pretrained").glob("*.npz"):
        assert np.array_equal(load_probabilities(path), load_probabilities(tmp_path / "other" / "pretrained" / path.name))


def test_torchscript_loads_without_torch_deprecation_warnings(checkpoints):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_model(checkpoints["torchscript"])
        with pytest.raises(HbensError, match="not a PyTorch checkpoint"):
            load_model(checkpoints["torchscript"], format="state-dict")
    assert loaded.format == "torchscript"
    assert [str(w.message) for w in caught] == []


def test_several_workers_report_forward_time_per_worker_within_0_100_percent():
    from hbens.pipeline import RunSummary
    from hbens.predictors import PredictStats, describe_predict

    one = PredictStats(predicted=1, forward_seconds=1.5, worker_seconds={"host:1:1": 1.5})
    other = PredictStats(predicted=1, forward_seconds=1.5, worker_seconds={"host:1:2": 1.5})
    stats = one + one + other + other  # two workers, 3 s of forward passes each, in a run of 4.2 s
    assert stats.worker_seconds == {"host:1:1": 3.0, "host:1:2": 3.0} and stats.forward_per_worker == 3.0
    text = describe_predict(RunSummary(images=4, stats=stats, seconds=4.2))
    assert "(29 % outside forward passes; 2 workers, 3.0 s of forward passes each)" in text
    alone = describe_predict(RunSummary(images=2, stats=one + one, seconds=2.9))
    assert "(0 % outside forward passes)" in alone  # timer jitter never shows a negative share
    assert "100 % outside" in describe_predict(RunSummary(stats=PredictStats(), seconds=1.0))


def test_predict_runs_count_their_workers(tmp_path, checkpoints, images):
    from hbens.execution import Execution

    source = ModelSource(checkpoint=str(checkpoints["smp"]))
    stats = predict_folder([source], images, tmp_path / "o", PredictOptions(size=32),
                           execution=Execution(workers=1)).stats
    assert len(stats.worker_seconds) == 1 and stats.forward_per_worker == pytest.approx(stats.forward_seconds)


@pytest.mark.parametrize("environ, torch_loaded, expected", [
    ({}, False, "PASSIVE"),
    ({"OMP_WAIT_POLICY": "active"}, False, "active"),
    ({"GOMP_SPINCOUNT": "1000"}, False, None),
    ({}, True, None),
])
def test_openmp_threads_wait_passively_unless_told_or_too_late(monkeypatch, environ, torch_loaded, expected):
    import sys

    from hbens.predictors.model import OPENMP_SETTINGS, wait_passively

    for name in OPENMP_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if not torch_loaded:
        monkeypatch.delitem(sys.modules, "torch")
    wait_passively()
    import os

    assert os.environ.get("OMP_WAIT_POLICY") == expected
