"""The pictures of the demo's report: the truth, the best single model and the best stage over the first
test X-ray, and where the best stage disagrees with the truth and with that model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hbens.annotations import GroundTruth
from hbens.classes import CLASSES
from hbens.demo.plan import DemoRun
from hbens.images import find_images, read_xray
from hbens.pictures import (
    COMPARE_COLORS,
    class_colors,
    compare_masks,
    compare_overlay,
    image_rows,
    overlay,
    png_bytes,
)
from hbens.report import Figure
from hbens.rle import runs_to_string
from hbens.submission import write_submission


def figures(run: DemoRun) -> list[Figure]:
    """Pictures of the first test image, cut to the hand: the truth, the best single model and the
    best stage over the X-ray, and where the best stage disagrees with the truth and with that model."""
    path = find_images(run.images("test"))[0]
    xray = read_xray(path)
    truth = run.csv("test", "truth")
    write_truth_csv(run.truth("test"), truth, shape=run.shape)
    best_model = max((s for s in run.stages if s.kind == "model"), key=lambda s: s.table.mean).name
    best = max((s for s in run.stages if s.kind != "model"), key=lambda s: s.table.mean).name
    sources = {"truth": truth, best_model: run.submissions[best_model], best: run.submissions[best]}
    rows = {name: image_rows(csv, path.name, shape=run.shape)[1] for name, csv in sources.items()}
    comparisons = {(first, second): compare_masks(rows[first], rows[second], shape=run.shape)
                   for first, second in ((best, "truth"), (best, best_model))}
    ys, xs = np.nonzero(comparisons[best, "truth"].both | comparisons[best, "truth"].second)
    margin = run.plan.size // 32
    window = (slice(max(ys.min() - margin, 0), ys.max() + margin + 1),
              slice(max(xs.min() - margin, 0), xs.max() + margin + 1))

    def png(picture: np.ndarray) -> bytes:
        return png_bytes(picture[window], width=2 * (window[1].stop - window[1].start))

    classes = dict(zip(CLASSES, map(tuple, class_colors())))
    titles = {"truth": "ground truth", best_model: f"best single model, {best_model}",
              best: f"best stage, {best}"}
    pictures = [Figure(caption=f"{title}: {path.name}", png=png(overlay(rows[name], xray, run.shape)),
                       legend=classes if name == "truth" else {}) for name, title in titles.items()]
    for (first, second), comparison in comparisons.items():
        legend = {label.replace("the first", first).replace("the second", second): color
                  for label, color in COMPARE_COLORS.items()}
        pictures.append(Figure(caption=f"{first} against {second}", legend=legend,
                               png=png(compare_overlay(comparison, xray))))
    return pictures


def write_truth_csv(truth: Path, output: Path, *, shape: tuple[int, int]) -> None:
    """The annotation JSONs of a folder as a submission CSV (to draw them like a submission)."""
    write_submission(output, {(image, name): runs_to_string(*runs[name])
                              for image, runs in GroundTruth(truth, shape) for name in CLASSES})
