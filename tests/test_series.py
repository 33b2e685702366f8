"""Series reconstruction on Dask: real scheduler and worker processes on loopback."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("distributed")

from slingbag.core.config import load_config  # noqa: E402
from slingbag.errors import InputError, ReconstructionError  # noqa: E402
from slingbag.io.native import write_acquisition  # noqa: E402
from slingbag.model.radiator import simulate  # noqa: E402
from slingbag.phantoms.dynamic import dynamic_vessels  # noqa: E402
from slingbag.series import expand_inputs, read_series, reconstruct_series  # noqa: E402

REGION = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
N_FRAMES = 4
DASK = str(Path(sys.executable).with_name("dask"))


def _config():
    return load_config("fast", overrides={"init": {"balls": 300}})


@pytest.fixture(scope="module")
def frames():
    dyn = dynamic_vessels(N_FRAMES, seed=3, region=REGION, spacing=0.2e-3)
    return [
        simulate(p.cloud, "planar:4x4:2e-3", model="shells", n_samples=256, noise=0.01, seed=k)
        for k, p in enumerate(dyn.frames)
    ]


def _run(frames, **kw):
    kw.setdefault("iterations", 20)
    kw.setdefault("warm_iterations", 10)
    kw.setdefault("chunk", 2)
    kw.setdefault("seed", 5)
    return reconstruct_series(frames, _config(), region=REGION, progress=False, **kw)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    env = dict(os.environ, SLINGBAG_ARCH="cpu", TI_CPU_MAX_NUM_THREADS="1")
    procs = []

    def start(*args):
        # A session of its own, so the finalizer can end the worker's nanny and its child.
        p = subprocess.Popen(
            [DASK, *args],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(p)
        return p

    def stop():
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    try:
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched_file),
        )
        deadline = time.monotonic() + 30
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(2):
            start(
                "worker",
                "--scheduler-file",
                str(sched_file),
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
            )
        from distributed import Client

        client = Client(scheduler_file=str(sched_file), timeout=30)
        client.wait_for_workers(2, timeout=60)
        yield client
        client.close()
    finally:
        stop()


@pytest.mark.slow
def test_external_cluster_matches_in_process_run(frames, cluster):
    local = _run(frames, workers=2)
    remote = _run(frames, client=cluster)
    assert remote.volumes.shape == (N_FRAMES, *local.volumes.shape[1:])
    assert remote.volumes.max() > 0
    np.testing.assert_allclose(
        remote.volumes, local.volumes, rtol=1e-4, atol=1e-4 * local.volumes.max()
    )
    # Frame 0 is cold, the others warm; chunk 1's first frame starts from frame 0.
    assert list(remote.attrs["warm"]) == [False, True, True, True]
    # A warm frame differs from its start: it was really fitted, not copied.
    assert not np.allclose(remote.volumes[1], remote.volumes[0])


@pytest.mark.slow
def test_killed_worker_chunk_is_rerun(frames, cluster, tmp_path):
    reference = _run(frames, client=cluster, iterations=60, warm_iterations=40)
    out = tmp_path / "series.h5"
    box = {}

    def series():
        try:
            box["result"] = _run(
                frames, client=cluster, iterations=60, warm_iterations=40, output=out
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            box["error"] = exc

    thread = threading.Thread(target=series)
    thread.start()
    pids = cluster.run(os.getpid)
    killed = None
    deadline = time.monotonic() + 30
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        for addr, keys in cluster.processing().items():
            if any("chunk" in str(k) for k in keys):
                os.kill(pids[addr], signal.SIGKILL)  # the worker process, not its nanny
                killed = addr
                break
        time.sleep(0.02)
    thread.join(120)
    assert killed is not None, "no chunk was seen running"
    assert "error" not in box, box.get("error")
    result = box["result"]
    np.testing.assert_allclose(
        result.volumes, reference.volumes, rtol=1e-4, atol=1e-4 * reference.volumes.max()
    )
    # Only the finished series is left: no part folder, no temporary file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series.h5"]
    np.testing.assert_array_equal(read_series(out).volumes, result.volumes)
    cluster.wait_for_workers(2, timeout=60)  # the nanny brings the worker back


@pytest.mark.slow
def test_failed_chunk_keeps_finished_ones_and_rerun_skips_them(frames, cluster, tmp_path, caplog):
    paths = []
    for k, acq in enumerate(frames):
        path = tmp_path / f"frame_{k:02d}.h5"
        write_acquisition(path, acq)
        paths.append(path)
    # Frame 3 (chunk 1) is broken: its signals are NaN, so the worker's reader refuses it.
    with h5py.File(paths[3], "r+") as f:
        f["signals"][0, 0] = np.nan
    out = tmp_path / "out" / "series.h5"
    out.parent.mkdir()
    refs = expand_inputs([tmp_path])
    assert [r.path for r in refs] == [str(p) for p in paths]
    with pytest.raises(ReconstructionError, match="1 of 2 chunks failed"):
        _run(refs, client=cluster, output=out)
    parts = out.with_name("series.h5.parts")
    assert sorted(p.name for p in parts.iterdir()) == ["chunk_0000.h5"]
    assert not out.exists()
    with h5py.File(parts / "chunk_0000.h5", "r") as f:
        kept = [float(f[f"frames/{k}"].attrs["seconds"]) for k in (0, 1)]

    write_acquisition(paths[3], frames[3])
    with caplog.at_level(logging.INFO, logger="slingbag"):
        result = _run(expand_inputs([tmp_path]), client=cluster, output=out)
    assert "resuming: 1 of 2 chunks already done" in caplog.text
    # Chunk 0 came from its part file, not from a second reconstruction.
    assert list(result.frame_seconds[:2]) == kept
    assert sorted(p.name for p in out.parent.iterdir()) == ["series.h5"]
    with h5py.File(out, "r") as f:
        assert f["volumes"].shape == result.volumes.shape
        assert f["volumes"].attrs["spacing"].shape == (3,)
        assert f["frame_seconds"].shape == (N_FRAMES,)
        assert f["frames/3/cloud/xyz"].shape[1] == 3
        assert "loss" in f["frames/3/history"]


def test_multi_frame_file_and_cli(frames, cluster, tmp_path):
    from slingbag.cli import main

    path = tmp_path / "movie.h5"
    write_acquisition(path, frames[0])
    with h5py.File(path, "r+") as f:
        del f["signals"]
        f["signals"] = np.stack([a.signals for a in frames[:3]])
    refs = expand_inputs([path])
    assert [(r.path, r.frame) for r in refs] == [(str(path), k) for k in range(3)]
    out = tmp_path / "s.h5"
    region = ",".join(str(v) for v in REGION)
    config = tmp_path / "tiny.toml"
    config.write_text("[init]\nballs = 300\n")
    address = cluster.scheduler.address
    argv = ["reconstruct-series", str(path), "-o", str(out), "--config", str(config)]
    argv += ["--iterations", "10", "--warm-iterations", "5", "--chunk", "2"]
    argv += [f"--region={region}", "--scheduler", address, "--quiet"]
    assert main(argv) == 0
    assert read_series(out).volumes.shape[0] == 3
    assert main(["reconstruct-series", str(path), "-o", str(out), "--chunk", "0"]) == 2


def test_bad_inputs(frames, tmp_path):
    with pytest.raises(InputError):
        reconstruct_series([], _config())
    with pytest.raises(InputError, match="--chunk"):
        reconstruct_series(frames, _config(), chunk=0)
    with pytest.raises(InputError):
        expand_inputs([tmp_path / "missing.h5"])


def test_dynamic_phantom_pulses_and_washes_in():
    dyn = dynamic_vessels(6, seed=2, region=REGION, spacing=0.2e-3)
    assert len(dyn) == 6
    sums = [float(p.volume.data.sum()) for p in dyn.frames]
    assert sums[-1] > 1.2 * sums[0]  # contrast arrives
    assert dyn.radius_scale.min() < 0.95 < 1.05 < dyn.radius_scale.max()
    shapes = {p.volume.shape for p in dyn.frames}
    assert len(shapes) == 1


def test_reading_a_series_loads_no_dask():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, slingbag; slingbag.read_series; slingbag.write_series; "
        "print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))"
    )
    env_path = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "PYTHONPATH": env_path},
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "False"
