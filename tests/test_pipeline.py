"""The pipeline: the same bytes and stats on every executor, failures reported per image, Dask faults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hbens import rle
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.pipeline import EXECUTORS, Execution, ImageOutput, executor_name, map_images, run_images
from hbens.postproc import CleanConfig, active_cleanup, clean_configs, clean_csv
from hbens.submission import write_submission

EXECUTIONS = {
    "default": [],
    "threads-2": ["--workers", "2"],
    "processes-2": ["--scheduler", "processes", "--workers", "2"],
    "dask-local-2": ["--scheduler", "local", "--workers", "2"],
}


def square(item: int) -> ImageOutput:
    if item == 3:
        raise HbensError("three is bad")
    return ImageOutput(f"img{item}", [("Ulna", str(item * item))], item)


def slow_square(item: int) -> ImageOutput:
    time.sleep(0.01 * (item % 3))
    return ImageOutput(f"img{item}", [("Ulna", str(item * item))], item)


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_map_images_keeps_order_and_reports_failures(scheduler):
    execution = Execution(workers=3, scheduler=scheduler, keep_going=True)
    names = [f"img{i}" for i in range(10)]
    results = list(map_images(square, range(10), execution, names=names))
    assert [index for index, _ in results] == list(range(10))
    assert results.pop(3)[1] == "img3: three is bad"
    assert [output.stats for _, output in results] == [i for i in range(10) if i != 3]
    with pytest.raises(HbensError, match="img3: three is bad .*--keep-going"):
        list(map_images(square, range(10), Execution(workers=2), names=names))


def test_run_images_sums_stats_and_writes_nothing_on_failure(tmp_path):
    summary = run_images(slow_square, range(6), Execution(workers=2), names=[f"img{i}" for i in range(6)],
                         csv=tmp_path / "o.csv")
    assert summary.stats == 15 and summary.images == 6 and summary.rows == 6
    assert (tmp_path / "o.csv").read_text().splitlines()[1:3] == ["img0,Ulna,0", "img1,Ulna,1"]
    with pytest.raises(HbensError):
        run_images(square, range(6), Execution(workers=2), names=[f"img{i}" for i in range(6)], csv=tmp_path / "p.csv")
    assert not list(tmp_path.glob("*p.csv*"))


def test_scheduler_names():
    assert set(EXECUTORS) == {"threads", "processes", "local", "tcp"}
    assert executor_name("tcp://10.0.0.1:8786") == "tcp"
    for bad in ("tcp://", "mpi", ""):
        with pytest.raises(HbensError, match="expected auto, threads, processes, local or tcp://HOST:PORT"):
            Execution(scheduler=bad)
    with pytest.raises(HbensError, match="--workers 0"):
        Execution(workers=0)


def process_id(item: int) -> ImageOutput:
    return ImageOutput(f"img{item}", [], {os.getpid()})


def test_auto_runs_tasks_that_hold_the_gil_on_processes():
    assert Execution(workers=2).resolved(holds_gil=True).scheduler == "processes"
    assert Execution(workers=2).resolved(holds_gil=False).scheduler == "threads"
    assert Execution(workers=1).resolved(holds_gil=True).scheduler == "threads"
    assert Execution(workers=2, scheduler="threads").resolved(holds_gil=True).scheduler == "threads"
    names = [f"img{i}" for i in range(4)]
    for holds_gil, elsewhere in [(True, True), (False, False)]:
        ran_in = set().union(*(output.stats for _, output in
                               map_images(process_id, range(4), Execution(workers=2), names=names, holds_gil=holds_gil)))
        assert (os.getpid() not in ran_in) == elsewhere


def test_unreachable_scheduler_is_one_line_within_seconds(tmp_path, example):
    _, csvs = example
    port = free_port()
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["clean", str(csvs[0]), "--largest", "-o", str(tmp_path / "o.csv"), "--quiet",
                                      "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert time.monotonic() - started < 30
    assert result.exit_code == 1 and "cannot connect" in result.output and len(result.output.splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_scheduler_without_distributed_says_how_to_install(tmp_path, example):
    _, csvs = example
    code = ("import sys; sys.modules['distributed'] = None; from hbens.cli import main; sys.argv = ['hbens', 'clean', "
            f"{str(csvs[0])!r}, '--largest', '-o', {str(tmp_path / 'o.csv')!r}, '--scheduler', 'local']; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and "pip install 'hbens[dask]'" in result.stderr
    assert "Traceback" not in result.stderr


def run_everywhere(args: list[str], output: Path) -> dict[str, tuple[bytes, str]]:
    """Run one command under every executor; the output file's bytes and the summary line of each."""
    results = {}
    for name, extra in EXECUTIONS.items():
        target = output.with_name(f"{name}-{output.name}")
        result = CliRunner().invoke(cli, [*args, "-o", str(target), *extra])
        assert result.exit_code == 0, (name, result.output)
        summary = [line for line in result.output.splitlines() if "removed" in line or "changed" in line]
        results[name] = (target.read_bytes(), " ".join(summary).split(" in ")[-1].split(";", 1)[-1])
    return results


@pytest.mark.slow
def test_fuse_and_clean_are_identical_under_every_executor(tmp_path, example):
    _, csvs = example
    fused = run_everywhere(["fuse", *map(str, csvs), "--largest", "--fill-holes"], tmp_path / "f.csv")
    cleaned = run_everywhere(["clean", str(csvs[1]), "--min-area", "30", "--fill-holes"], tmp_path / "c.csv")
    for results in (fused, cleaned):
        first = results["default"]
        assert first[1].strip()
        assert all(value == first for value in results.values())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def many_images_csv(path: Path, n_images: int, rng) -> Path:
    """A submission of ``n_images`` 2048x2048 images, each class a few random blobs (some specks)."""
    rows = {}
    for i in range(n_images):
        for name in ("Ulna", "Radius", "Pisiform"):
            mask = np.zeros((2048, 2048), np.uint8)
            for _ in range(4):
                top, left = rng.integers(0, 1900, 2)
                size = rng.integers(2, 120)
                mask[top : top + size, left : left + size] = 1
            rows[(f"image{i:04d}.png", name)] = rle.encode(mask)
    write_submission(path, rows)
    return path


class DaskCluster:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, stopped by process id."""

    def __init__(self, n_workers: int):
        dask = str(Path(sys.executable).with_name("dask"))
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                           "--no-dashboard"], **quiet)
        self.workers = [subprocess.Popen([dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                                          "--no-dashboard", "--no-nanny"], **quiet) for _ in range(n_workers)]
        self._wait_for(n_workers)

    def _wait_for(self, n_workers: int) -> None:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(n_workers, timeout=max(1, deadline - time.monotonic()))
                    return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def cluster():
    started = DaskCluster(2)
    yield started
    started.stop()


@pytest.mark.slow
def test_clean_on_a_dask_cluster_survives_a_killed_worker(tmp_path, cluster, rng):
    source = many_images_csv(tmp_path / "in.csv", 24, rng)
    cleanup = active_cleanup(clean_configs(CleanConfig(min_area=100, fill_holes=True)))
    reference = clean_csv(source, tmp_path / "ref.csv", cleanup)
    result = CliRunner().invoke(cli, ["clean", str(source), "--min-area", "100", "--fill-holes", "--quiet",
                                      "-o", str(tmp_path / "tcp.csv"), "--scheduler", cluster.address])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tcp.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()

    killed = []

    def kill_one_worker(_output: ImageOutput) -> None:
        if not killed:
            os.killpg(cluster.workers[0].pid, signal.SIGKILL)
            killed.append(True)

    from hbens.postproc.clean import CleanItem, clean_image
    from hbens.submission import iter_rows, scan_submission

    index = scan_submission(source)
    grouped: dict[str, list] = {}
    for image, name, text in iter_rows(index):
        grouped.setdefault(image, []).append((name, text))
    items = [CleanItem(image=image, rows=rows, cleanup=cleanup) for image, rows in grouped.items()]
    try:
        summary = run_images(clean_image, items, Execution(scheduler=cluster.address), names=list(grouped),
                             csv=tmp_path / "killed.csv", inputs=[source], on_output=kill_one_worker)
    except HbensError as error:
        assert "died" in str(error) and not (tmp_path / "killed.csv").exists()
    else:
        assert summary.stats == reference.stats
        assert (tmp_path / "killed.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert killed and cluster.workers[0].wait(10) is not None
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
