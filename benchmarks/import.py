"""Importing peers' saved arrays into hbens stores vs merely loading them with np.load.

Each input is what teams save per image: ``np.savez_compressed(path, output=uint16(sigmoid *
10000))`` of shape (29, 2048, 2048).  The maps are made from real models' binary masks
(../shared/realdata/masks, cycled) when present, else from synthetic hands, blurred into soft
probabilities.  Prints the time of ``import_image`` per image against ``np.load`` of the same
file (goal: within 1.5x), the store's size against the source's (goal: 1/20 or less; ``--noise``
gives the background the small values of a real network, which a compressed source pays for), and the
peak memory of a fresh process importing 1 and N images (goal: flat in N).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import in_process  # noqa: E402

MASKS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "masks"


def mask_sets(n: int) -> list[np.ndarray | None]:
    """``n`` (29, 2048, 2048) uint8 mask arrays: the real ones cycled, or None for a synthetic hand."""
    files = sorted(MASKS.glob("*/*.npz")) if MASKS.is_dir() else []
    return [files[i % len(files)] for i in range(n)] if files else [None] * n


def synthetic_masks(seed: int) -> np.ndarray:
    from hbens.annotations import polygon_mask
    from hbens.classes import CLASSES, IMAGE_SHAPE
    from hbens.synthetic import hand_polygons

    polygons = hand_polygons(np.random.default_rng(seed), IMAGE_SHAPE)
    return np.stack([polygon_mask(polygons[name], IMAGE_SHAPE) for name in CLASSES]).astype(np.uint8)


def write_source(path: Path, masks_file: Path | None, seed: int, noise: float) -> None:
    """A soft map as a model gives it: sigmoid(20 * (blurred mask - 0.5) + N(0, noise)) * 10000 as uint16,
    one class at a time (noise > 0 gives the background the small non-zero values of a real network)."""
    import cv2

    rng = np.random.default_rng(seed)

    if masks_file is None:
        masks = synthetic_masks(seed)
    else:
        with np.load(masks_file) as archive:
            masks = archive["mask"]
    output = np.empty(masks.shape, np.uint16)
    for index, mask in enumerate(masks):
        blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3.0)
        logits = 20 * (blurred - 0.5)
        if noise:
            logits += rng.normal(0, noise, logits.shape).astype(np.float32)
        output[index] = np.rint(10000 / (1 + np.exp(-logits))).astype(np.uint16)
    np.savez_compressed(path, output=output)


def import_all(paths: list[Path], out: Path) -> None:
    from hbens.importer import import_image
    from hbens.maps.saved_arrays import ArrayFormat

    for path in paths:
        import_image(path, out, ArrayFormat(), precision="uint8")


def load_all(paths: list[Path]) -> None:
    for path in paths:
        with np.load(path) as archive:
            archive["output"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.0, help="std of the logit noise added to the masks")
    args = parser.parse_args()

    from hbens.importer import import_image
    from hbens.maps.saved_arrays import ArrayFormat

    sources = mask_sets(args.images)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "stores").mkdir()
        paths = [folder / f"image{i:03d}.npz" for i in range(args.images)]
        for i, (path, masks_file) in enumerate(zip(paths, sources)):
            write_source(path, masks_file, i, args.noise)

        import_image(paths[0], folder / "stores", ArrayFormat())  # first call: imports, page cache
        load_seconds = import_seconds = 0.0
        source_bytes = store_bytes = 0
        for path in paths:
            start = time.perf_counter()
            load_all([path])
            load_seconds += time.perf_counter() - start
            stats = import_image(path, folder / "stores", ArrayFormat(), precision="uint8")
            import_seconds += stats.seconds
            source_bytes += stats.source_bytes
            store_bytes += stats.store_bytes

        _, load_peak = in_process(load_all, paths[:1])
        peaks = {n: in_process(import_all, paths[:n], folder / "stores")[1] for n in sorted({1, args.images})}

    origin = "real masks of 5 models" if sources[0] is not None else "synthetic hands"
    print(f"{args.images} images, 29 x 2048 x 2048 uint16 sigmoid*10000 .npz from {origin}, blurred, "
          f"logit noise {args.noise:g}")
    print(f"np.load:      {load_seconds / args.images:6.3f} s per image")
    print(f"import_image: {import_seconds / args.images:6.3f} s per image   "
          f"{import_seconds / load_seconds:.2f}x np.load (goal <= 1.5x)")
    print(f"size: source {source_bytes / args.images / 1e6:.2f} MB, "
          f"store {store_bytes / args.images / 1e6:.3f} MB per image   "
          f"1/{source_bytes / store_bytes:.0f} of the source (goal <= 1/20), "
          f"1/{29 * 2048 * 2048 * 2 / (store_bytes / args.images):.0f} of the uint16 array")
    print(f"peak RSS: np.load of one file {load_peak:.0f} MB; import of "
          + ", ".join(f"{n} image(s) {peak:.0f} MB" for n, peak in peaks.items())
          + f"   {max(peaks.values()) / min(peaks.values()):.2f}x from 1 to {args.images} (goal: flat)")


if __name__ == "__main__":
    main()
