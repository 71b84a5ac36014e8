"""The pipeline: the same bytes and stats on every executor, failures reported per image, Dask faults."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hbens import rle
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.execution import EXECUTORS, ClusterLost, Execution, absolute_paths, executor_name, path_field
from hbens.pipeline import ImageOutput, map_images, run_images
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


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:abc", "tcp://:1", "tcp://host:99999", "tcp://host:0",
                                     "tcp://host:8786/path", "tcp://a b:1", "tcp://[::1:1"])
def test_malformed_scheduler_addresses_are_refused_before_connecting(address):
    started = time.monotonic()
    with pytest.raises(HbensError, match="not a Dask scheduler address; expected tcp://HOST:PORT"):
        Execution(scheduler=address)
    assert time.monotonic() - started < 1


def test_scheduler_addresses_of_names_and_ip_addresses_are_accepted():
    for address in ("tcp://10.0.0.5:8786", "tcp://node-7.cluster.local:1", "tcp://[::1]:65535", "tcp://scheduler"):
        assert executor_name(address) == "tcp"


@dataclass(frozen=True)
class File:
    path: str = path_field()
    note: str = "kept.csv"


@dataclass(frozen=True, kw_only=True)
class Task:
    image: str
    files: list[File | None]
    store: str | None = path_field(None)
    folders: dict[str, str] | None = path_field(None)


def test_absolute_paths_resolves_path_fields_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = Task(image="a.png", files=[File("m/a.npz"), None, File(str(tmp_path / "x.npz"))], store="out/a.npz",
                folders={"unet": "p/unet"})
    sent = absolute_paths(task)
    assert sent == Task(image="a.png", files=[File(str(tmp_path / "m/a.npz")), None, File(str(tmp_path / "x.npz"))],
                        store=str(tmp_path / "out/a.npz"), folders={"unet": str(tmp_path / "p/unet")})
    assert sent.files[0].note == "kept.csv" and sent.files[2] is task.files[2]
    resolved = Task(image="a.png", files=[None], store=str(tmp_path / "a.npz"))
    assert absolute_paths(resolved) is resolved and absolute_paths([1, "x"]) == [1, "x"]


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

    def __init__(self, n_workers: int, cwd: Path | None = None):
        dask = str(Path(sys.executable).with_name("dask"))
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        self.scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                           "--no-dashboard"], **quiet)
        self.workers = [subprocess.Popen([dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                                          "--no-dashboard", "--no-nanny"], cwd=cwd, **quiet) for _ in range(n_workers)]
        self._wait_for(n_workers)

    def _wait_for(self, n_workers: int) -> None:
        from distributed import Client

        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    with Client(self.address, timeout=5) as client:
                        if n_workers:
                            client.wait_for_workers(n_workers, timeout=max(1, deadline - time.monotonic()))
                        return
                except (OSError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise
        except BaseException:
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


def forever(item: int) -> ImageOutput:
    """A task that never ends (until its worker is killed)."""
    while True:
        time.sleep(0.05)


def kill_workers_when_busy(cluster: DaskCluster) -> None:
    """Kill every worker of ``cluster`` once the scheduler has given one of them a task."""
    from distributed import Client

    with Client(cluster.address, timeout=10) as watcher:
        deadline = time.monotonic() + 120
        while not any(watcher.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    for worker in cluster.workers:
        os.killpg(worker.pid, signal.SIGKILL)


def test_a_cluster_whose_workers_all_die_ends_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr("hbens.execution.WORKERLESS_LIMIT", 1.0)
    cluster = DaskCluster(1)
    try:
        killer = threading.Thread(target=kill_workers_when_busy, args=(cluster,), daemon=True)
        killer.start()
        names = [f"img{i}" for i in range(3)]
        with pytest.raises(ClusterLost, match=f"no Dask worker left on {cluster.address} for 1 s; restart"):
            run_images(forever, range(3), Execution(scheduler=cluster.address, keep_going=True), names=names,
                       csv=tmp_path / "o.csv")
        killer.join()
    finally:
        cluster.stop()
    assert not list(tmp_path.iterdir())


def test_a_cluster_without_workers_is_one_line(tmp_path, example, monkeypatch):
    monkeypatch.setattr("hbens.execution.WORKERLESS_LIMIT", 1.0)
    cluster = DaskCluster(0)
    try:
        result = CliRunner().invoke(cli, ["clean", str(example[1][0]), "--largest", "-o", str(tmp_path / "o.csv"),
                                          "--quiet", "--scheduler", cluster.address])
    finally:
        cluster.stop()
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"Error: --scheduler {cluster.address}: no Dask worker joined within 1 s; start some "
        f"(dask worker {cluster.address}) and run again"]
    assert not list(tmp_path.iterdir())


@pytest.fixture
def validation(tmp_path) -> Path:
    """Two models' stores, the truth and the X-rays of two images (tests/tune_data.py) in ``tmp/data``."""
    from tests import tune_data as data

    folder = tmp_path / "data"
    layouts = data.discs(2, seed=3)
    data.write_model(folder / "a", data.Model(default=data.Fault(confidence=0.6)), layouts)
    data.write_model(folder / "b", data.Model(default=data.Fault(shift=(1, 1))), layouts, 4)
    data.write_truth(folder / "gt.csv", layouts)
    data.write_xrays(folder / "xr", layouts)
    return folder


RELATIVE = {
    "fuse": ["fuse", "a", "b", "--quiet", "-o", "{run}.csv"],
    "crf": ["crf", "a", "--images", "xr", "--iterations", "2", "--quiet", "--csv", "{run}.csv", "-o", "{run}"],
    "tune": ["tune", "a", "b", "--gt", "gt.csv", "--images", "xr", "--folds", "2", "--try", "thresholds,crf",
             "--quiet", "-o", "{run}.yaml"],
}
"""Commands on relative paths in ``validation``'s folder (``{run}`` names the outputs of each run)."""


def written(folder: Path, run: str) -> dict[str, bytes]:
    """The bytes of every file a run wrote (its outputs start with ``run``), by path below them."""
    paths = [path for path in folder.rglob("*")
             if path.is_file() and path.relative_to(folder).parts[0].startswith(run)]
    return {str(path.relative_to(folder)).replace(run, "RUN", 1): path.read_bytes() for path in paths}


@pytest.mark.slow
def test_relative_paths_on_an_external_cluster_give_the_default_bytes(validation, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cluster = DaskCluster(1, cwd=elsewhere)
    monkeypatch.chdir(validation)
    try:
        for command, args in RELATIVE.items():
            runs = {}
            for run, extra in ((f"{command}-default", []), (f"{command}-tcp", ["--scheduler", cluster.address])):
                result = CliRunner().invoke(cli, [arg.format(run=run) for arg in args] + extra)
                assert result.exit_code == 0, (run, result.output)
                runs[run] = (result.stdout, written(validation, run))
            default, tcp = runs.values()
            assert default[1] and default == tcp, command
    finally:
        cluster.stop()
    assert not list(elsewhere.iterdir())


@pytest.mark.slow
def test_a_crf_whose_workers_all_die_ends_in_one_line(validation, tmp_path):
    """The CRF of 300 iterations is at work (its folder made, a task on the worker) when the worker is killed."""
    from distributed import Client

    cluster = DaskCluster(1, cwd=tmp_path)
    argv = [sys.executable, "-m", "hbens", "crf", "a", "--images", "xr", "--iterations", "300", "--quiet",
            "--csv", "k.csv", "-o", "k", "--scheduler", cluster.address]
    process = subprocess.Popen(argv, cwd=validation, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Client(cluster.address, timeout=10) as watcher:
            deadline = time.monotonic() + 120
            while not ((validation / "k").is_dir() and any(watcher.processing().values())):
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()
                time.sleep(0.05)
        os.killpg(cluster.workers[0].pid, signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = process.communicate(timeout=90)
        seconds = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        cluster.stop()
    assert process.returncode == 1 and seconds < 60, stderr
    assert stderr.splitlines() == [f"Error: no Dask worker left on {cluster.address} for 10 s; restart the workers "
                                   "and run again"] and not stdout
    left = sorted(str(path.relative_to(validation)) for path in validation.rglob("*")
                  if path.name.startswith((".", "k")))
    assert left in ([], ["k", "k/image1000.npz"]), left
