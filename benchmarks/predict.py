"""A naive prediction loop vs `hbens predict --csv`, same model and TTA, on the CPU, in one run.

The model is a randomly initialised smp Unet (ResNet-34 encoder, the forward cost of a real
one) traced to TorchScript, whose logits are offset by a synthetic hand so that its masks are
bone-like (sparse), as a trained model's are.  The naive loop is what teams write: read, resize,
forward each TTA view, average, upsample all 29 channels to 2048x2048, sigmoid, threshold,
numpy RLE.  Prints both times, the ratio, hbens's share of time outside forward passes, and the
store size against float32 maps.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_model(path: Path, size: int) -> None:
    import segmentation_models_pytorch as smp
    import torch

    from hbens.classes import CLASSES
    from hbens.synthetic import hand_polygons
    from hbens.annotations import polygon_mask

    polygons = hand_polygons(np.random.default_rng(1), (size, size))
    hand = np.stack([polygon_mask(polygons[name], (size, size)) for name in CLASSES]).astype(np.float32)

    class BoneLike(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = smp.create_model("Unet", encoder_name="resnet34", encoder_weights=None, classes=29)
            self.register_buffer("hand", torch.from_numpy(hand * 20 - 12)[None])

        def forward(self, x):
            return 0.05 * self.unet(x) + self.hand

    model = BoneLike().eval()
    torch.jit.trace(model, torch.rand(1, 3, size, size)).save(str(path))


def make_images(folder: Path, n: int) -> list[Path]:
    import cv2

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sub = folder / f"ID{i:03d}"
        sub.mkdir(parents=True)
        image = (rng.random((2048, 2048)) * 60 + 80).astype(np.uint8)
        paths.append(sub / f"image{1661319100000 + i}.png")
        cv2.imwrite(str(paths[-1]), image)
    return paths


def naive(model_path: Path, images: list[Path], out: Path, size: int) -> float:
    import cv2
    import torch
    import torch.nn.functional as F

    from hbens.classes import CLASSES
    from tests.oracles import encode_reference

    start = time.perf_counter()
    model = torch.jit.load(str(model_path)).eval()
    rows = []
    for path in sorted(images, key=lambda p: p.name):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        x = torch.from_numpy(cv2.resize(image, (size, size)))[None, None].repeat(1, 3, 1, 1)
        with torch.no_grad():
            logits = (model(x) + model(x.flip(-1)).flip(-1)) / 2
            probabilities = torch.sigmoid(F.interpolate(logits, size=(2048, 2048), mode="bilinear"))[0]
        masks = (probabilities > 0.5).numpy()
        rows += [(path.name, name, encode_reference(mask)) for name, mask in zip(CLASSES, masks)]
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "class", "rle"])
        writer.writerows(rows)
    return time.perf_counter() - start


def hbens_predict(model_path: Path, folder: Path, out_dir: Path, out_csv: Path, size: int):
    from hbens.predictors import PredictOptions, Predictor, load_model, predict_folder
    from hbens.predictors.model import InferenceModel

    start = time.perf_counter()
    options = PredictOptions(size=size, tta="hflip")
    predictor = Predictor(InferenceModel(load_model(model_path)), options)
    summary = predict_folder({"model": predictor}, folder, out_dir, options, csv=out_csv)
    return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    from hbens.metrics import dice_runs
    from hbens.rle import string_to_runs
    from hbens.submission import read_submission

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path = tmp / "model.pt"
        build_model(model_path, args.size)
        images = make_images(tmp / "images", args.images)
        warm = make_images(tmp / "warm", 1)
        naive_cold = naive(model_path, warm, tmp / "naive-warm.csv", args.size)
        hb_cold, _ = hbens_predict(model_path, tmp / "warm", tmp / "warm-stores", tmp / "warm.csv", args.size)
        naive_time = naive(model_path, images, tmp / "naive.csv", args.size)
        hb_time, summary = hbens_predict(model_path, tmp / "images", tmp / "stores", tmp / "hbens.csv", args.size)
        ours, theirs = read_submission(tmp / "hbens.csv"), read_submission(tmp / "naive.csv")
        dice = np.mean([dice_runs(string_to_runs(ours[k]), string_to_runs(theirs[k])) for k in theirs])
        full_maps = args.images * 29 * 2048 * 2048 * 4
        outside = hb_time - summary.forward_seconds
        print(f"{args.images} images of 2048x2048, Unet-ResNet34 at {args.size}, TTA hflip, CPU")
        print(f"first image of a process (numba kernels, TorchScript warm-up): naive {naive_cold:.1f} s, "
              f"hbens {hb_cold:.1f} s; the timings below come after it, model loading included")
        print(f"naive loop:      {naive_time:7.1f} s")
        print(f"hbens predict:   {hb_time:7.1f} s   {naive_time / hb_time:.2f}x faster; "
              f"forward passes {summary.forward_seconds:.1f} s, outside them {outside:.1f} s "
              f"({100 * outside / hb_time:.1f} % of the total)")
        print(f"store: {summary.store_bytes / args.images / 1e6:.2f} MB per image vs {full_maps / args.images / 1e6:.0f} MB "
              f"of float32 maps (1/{full_maps / summary.store_bytes:.0f})")
        print(f"mean Dice between the two submissions: {dice:.5f} (uint8 store vs float threshold)")


if __name__ == "__main__":
    main()
