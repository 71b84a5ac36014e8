"""benchmarks/gpu.py: the grid of settings, the agreement measure, and a whole CPU smoke run."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
_spec = importlib.util.spec_from_file_location("benchmark_gpu", SCRIPT)
gpu = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gpu  # dataclasses look their module up there
_spec.loader.exec_module(gpu)


def test_gpu_grid_covers_sizes_ttas_and_batch_sizes():
    grid = gpu.settings(gpu.GPU_PLAN)
    assert len(grid) == 2 * (2 * 2 + 3)
    assert {s.size for s in grid if s.size} == {1024, 2048}
    assert {s.batch_size for s in grid if s.window} == {1, 2, 4}
    assert {s.window for s in grid if s.window} == {1024}
    assert {s.tta for s in grid} == {"none", "hflip"}


def test_agreement_of_identical_disjoint_and_empty_masks():
    first = torch.zeros(3, 4, 4)
    first[0, :2] = 0.9  # class 0: 8 pixels
    first[1, :, :2] = 0.9  # class 1: 8 pixels
    second = first.clone()
    second[1] = 0.0
    second[1, :, 2:] = 0.7  # class 1: disjoint 8 pixels; class 2 empty in both
    diff, dice = gpu.agreement(first, second)
    assert diff == pytest.approx(0.9)
    assert dice == pytest.approx([1.0, 0.0, 1.0])
    assert gpu.agreement(first, first) == (0.0, [1.0, 1.0, 1.0])


def test_plan_flags_shrink_the_grid():
    plan = gpu.plan_from_arguments(["--cpu-smoke", "--images", "1", "--batch-sizes", "2", "--image-size", "512"])
    assert (plan.device, plan.images, plan.batch_sizes, plan.window) == ("cpu", 1, (2,), 256)


@pytest.mark.slow
def test_cpu_smoke_run_prints_a_sane_row_per_setting(tmp_path):
    lines = []
    rows = gpu.run(gpu.CPU_PLAN, tmp_path, out=lines.append)
    expected = gpu.settings(gpu.CPU_PLAN)
    assert [row.setting for row in rows] == expected
    for row in rows:
        assert 0 < row.images_per_second < 1000
        assert 0 <= row.outside_share < 1
        assert row.peak_gib is None
    text = "\n".join(lines)
    for setting in expected:
        (line,) = [line for line in lines if line.startswith(setting.label)]
        numbers = re.findall(r"\d+\.\d+", line[len(setting.label):])
        assert len(numbers) == 2 and float(numbers[0]) > 0 and 0 <= float(numbers[1]) <= 100
        assert line.count("n/a") == 3  # peak memory, fp16 max |dp| and Dice need a GPU
    assert text.count("GPU fp32 vs CPU fp32") == len(gpu.MODELS)
    assert text.count(gpu.NA) == len(gpu.MODELS)
    assert "total:" in lines[-1]
