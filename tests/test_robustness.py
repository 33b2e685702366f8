"""A run killed with SIGKILL resumes from its checkpoint to the uninterrupted result, and
leaves no partial output behind."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from slingbag.core.cloud import GaussianCloud
from slingbag.io.native import read_result, write_acquisition
from slingbag.model.radiator import simulate

CONFIG = """
[init]
balls = 600
[coarse]
iterations = 40
[fine]
iterations = 40
[density]
every = 10
duplicate_period = 40
duplicate_at = 20
"""
REGION = "-3e-3,3e-3,-3e-3,3e-3,6e-3,8.6e-3"


@pytest.fixture
def small_run(tmp_path):
    t = np.linspace(0, 1, 50)
    xyz = np.stack([-2e-3 + 4e-3 * t, 0.5e-3 * np.sin(6 * t), 7e-3 + 0 * t], 1)
    truth = GaussianCloud(xyz, np.ones(len(xyz)), np.full(len(xyz), 0.12e-3))
    g = (np.arange(6) - 2.5) * 1.5e-3
    X, Y = np.meshgrid(g, g)
    sensors = np.stack([X.ravel(), Y.ravel(), 0 * X.ravel()], 1)
    acq = simulate(truth, sensors, model="shells", n_samples=640, noise=0.01, seed=3)
    data = tmp_path / "data.h5"
    write_acquisition(data, acq)
    cfg = tmp_path / "small.toml"
    cfg.write_text(CONFIG)
    return tmp_path, data, cfg


def _cmd(data, out, cfg, *extra):
    return [
        sys.executable,
        "-m",
        "slingbag",
        "--arch",
        "cpu",
        "reconstruct",
        str(data),
        "-o",
        str(out),
        "--config",
        str(cfg),
        f"--region={REGION}",
        "--seed",
        "7",
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(small_run):
    tmp, data, cfg = small_run
    ref = tmp / "ref.h5"
    subprocess.run(_cmd(data, ref, cfg), check=True, capture_output=True, timeout=300)

    out = tmp / "out.h5"
    ckpt = tmp / "out.h5.ckpt.npz"
    proc = subprocess.Popen(
        _cmd(data, out, cfg, "--checkpoint-every", "5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait for a checkpoint some way into the run, then kill without warning.
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if _checkpoint_iteration(ckpt) >= 20:  # -1 while there is none (or mid-rename)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed run left an output file"

    resumed = subprocess.run(
        _cmd(data, out, cfg, "--checkpoint-every", "5", "--resume"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    a, b = read_result(ref), read_result(out)
    assert np.array_equal(a.cloud.xyz, b.cloud.xyz)
    assert np.array_equal(a.cloud.p0, b.cloud.p0)
    assert np.allclose(a.volume.data, b.volume.data)
    assert not ckpt.exists(), "the checkpoint outlived a finished run"
    # A kill mid-write may leave a temporary file; the resumed run's writes remove it.
    assert not [p for p in tmp.iterdir() if p.name.endswith(".tmp")], "temp files left"


def _checkpoint_iteration(path) -> int:
    import json

    try:
        with np.load(path) as data:
            return int(json.loads(bytes(data["meta"]).decode())["it"])
    except Exception:  # noqa: BLE001 - none yet, or caught mid-rename: try again
        return -1


def test_resume_without_checkpoint_is_one_line(small_run, capsys):
    from slingbag.cli import main

    tmp, data, cfg = small_run
    code = main(["reconstruct", str(data), "-o", str(tmp / "x.h5"), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "checkpoint" in err[0]
    assert not (tmp / "x.h5").exists()


def test_bad_calibration_passes_is_one_line(small_run, capsys):
    from slingbag.cli import main

    tmp, data, cfg = small_run
    argv = ["reconstruct", str(data), "-o", str(tmp / "x.h5"), "--calibrate", "t0"]
    code = main([*argv, "--calibration-passes", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "calibrate.passes" in err[0]
    assert not (tmp / "x.h5").exists()
