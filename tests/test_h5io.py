"""Acquisition and result HDF5 files: round trips, layout on disk, and the simulate command."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from slingbag.cli import main
from slingbag.core.acquisition import Acquisition, SensorArray
from slingbag.core.cloud import GaussianCloud
from slingbag.core.volume import Volume
from slingbag.errors import InputError
from slingbag.io.atomic import atomic_path
from slingbag.io.native import (
    read_acquisition,
    read_result,
    read_volume,
    write_acquisition,
    write_result,
)


def _acquisition(rng, n_sensors=6, n_samples=40, truth=True):
    positions = rng.uniform(-0.05, 0.05, (n_sensors, 3))
    normals = rng.normal(size=(n_sensors, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    acq = Acquisition(
        signals=rng.normal(size=(n_sensors, n_samples)),
        positions=positions,
        fs=40e6,
        sound_speed=1510.0,
        t0=2e-6,
        normals=normals,
        areas=rng.uniform(1e-6, 1e-5, n_sensors),
        attrs={"note": "test", "gain_db": 12.5, "band": np.array([1e6, 4e6])},
    )
    if truth:
        acq.truth_volume = Volume(rng.random((4, 5, 6)), [0, 0, 0.01], [1e-4, 1e-4, 2e-4])
        acq.truth_cloud = GaussianCloud(
            rng.normal(size=(7, 3)) * 1e-3, rng.random(7), rng.uniform(1e-5, 1e-4, 7)
        )
    return acq


def test_acquisition_round_trip(tmp_path, rng):
    acq = _acquisition(rng)
    path = tmp_path / "a.h5"
    write_acquisition(path, acq)
    back = read_acquisition(path)
    np.testing.assert_array_equal(back.signals, acq.signals)
    np.testing.assert_array_equal(back.positions, acq.positions)
    np.testing.assert_array_equal(back.normals, acq.normals)
    np.testing.assert_array_equal(back.areas, acq.areas)
    assert (back.fs, back.sound_speed, back.t0) == (40e6, 1510.0, 2e-6)
    np.testing.assert_array_equal(back.truth_volume.data, acq.truth_volume.data)
    np.testing.assert_array_equal(back.truth_volume.spacing, [1e-4, 1e-4, 2e-4])
    np.testing.assert_array_equal(back.truth_cloud.xyz, acq.truth_cloud.xyz)
    assert back.attrs["note"] == "test"
    assert back.attrs["gain_db"] == 12.5
    assert back.attrs["band"] == [1e6, 4e6]
    assert back.source == str(path)


def test_acquisition_layout_on_disk(tmp_path, rng):
    path = tmp_path / "a.h5"
    write_acquisition(path, _acquisition(rng))
    with h5py.File(path) as f:
        # Fixed-length UTF-8 text (h5py hands it back as bytes).
        assert f.attrs["format"] == b"slingbag-acquisition"
        assert f.attrs["version"] == 1
        assert f["signals"].dtype == np.float32
        assert f["sensors/positions"].dtype == np.float64
        assert f["truth/volume"].dtype == np.float32
        assert set(f["truth/cloud"]) == {"xyz", "p0", "sigma"}
        assert list(f["truth/volume"].attrs["origin"]) == [0, 0, 0.01]


def test_minimal_acquisition_defaults_t0(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["signals"] = np.ones((2, 3))
        f["sensors/positions"] = np.zeros((2, 3))
        f.attrs["fs"] = 1e7
        f.attrs["sound_speed"] = 1500
    acq = read_acquisition(path)
    assert acq.t0 == 0.0
    assert acq.normals is None and acq.truth_cloud is None
    assert acq.signals.dtype == np.float32


def test_multi_frame_signals_need_a_frame(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["signals"] = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        f["sensors/positions"] = np.zeros((3, 3))
        f.attrs["fs"] = 1e7
        f.attrs["sound_speed"] = 1500
    with pytest.raises(InputError, match="--frame"):
        read_acquisition(path)
    np.testing.assert_array_equal(read_acquisition(path, frame=1).signals[0], [12, 13, 14, 15])
    with pytest.raises(InputError, match="frame"):
        read_acquisition(path, frame=2)


def test_result_round_trip(tmp_path, rng):
    volume = Volume(rng.random((3, 4, 5)), [1e-3, 2e-3, 3e-3], 1e-4)
    cloud = GaussianCloud(rng.random((5, 3)) * 1e-2, rng.random(5), rng.uniform(1e-5, 1e-4, 5))
    history = {"loss": [3.0, 2.0, 1.0], "n_balls": np.array([10, 9, 8])}
    sensors = SensorArray(rng.uniform(-0.05, 0.05, (4, 3)))
    path = tmp_path / "r.h5"
    write_result(
        path,
        volume=volume,
        cloud=cloud,
        history=history,
        sensors=sensors,
        attrs={"method": "slingbag", "config": "[fit]\nlr = 0.05\n"},
    )
    result = read_result(path)
    np.testing.assert_array_equal(result.volume.data, volume.data)
    np.testing.assert_array_equal(result.volume.origin, volume.origin)
    np.testing.assert_array_equal(result.cloud.p0, cloud.p0)
    np.testing.assert_array_equal(result.history["n_balls"], [10, 9, 8])
    np.testing.assert_array_equal(result.sensor_positions, sensors.positions)
    assert result.attrs["method"] == "slingbag"
    assert result.attrs["config"] == "[fit]\nlr = 0.05\n"
    assert result.attrs["software_version"]
    assert result.source == str(path)
    # The volume of a result is a volume phantom too.
    np.testing.assert_array_equal(read_volume(path).data, volume.data)


def test_result_without_cloud_and_format_checks(tmp_path, rng):
    path = tmp_path / "u.h5"
    write_result(path, volume=Volume(np.ones((2, 2, 2)), [0, 0, 0], 1e-4), attrs={"method": "ubp"})
    result = read_result(path)
    assert result.cloud is None and result.history == {}
    with pytest.raises(InputError, match="slingbag-acquisition"):
        read_acquisition(path)
    acq_path = tmp_path / "a.h5"
    write_acquisition(acq_path, _acquisition(rng))
    with pytest.raises(InputError, match="slingbag-result"):
        read_result(acq_path)
    assert read_volume(acq_path).shape == (4, 5, 6)  # its truth/volume


def test_read_volume_plain_dataset_and_missing(tmp_path):
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        f["volume"] = np.ones((3, 3, 3))
        f["volume"].attrs["origin"] = [0, 0, 0]
        f["volume"].attrs["spacing"] = 2e-4  # one number: cubic voxels
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.spacing, [2e-4] * 3)
    with h5py.File(path, "w") as f:
        f["other"] = np.ones(3)
    with pytest.raises(InputError, match="'volume'"):
        read_volume(path)


def test_writer_failure_leaves_old_file_and_no_temp(tmp_path, rng):
    path = tmp_path / "a.h5"
    write_acquisition(path, _acquisition(rng))
    before = path.read_bytes()
    bad = _acquisition(rng)
    bad.positions = bad.positions[:2]  # disagrees with the signals
    with pytest.raises(ValueError):
        write_acquisition(path, bad)
    with pytest.raises(ValueError):
        write_result(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]


def test_atomic_path_keyboard_interrupt(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.bin.")
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert list(tmp_path.iterdir()) == [target]


def test_simulate_command_writes_truth(tmp_path, capsys):
    out = tmp_path / "sim.h5"
    code = main(
        [
            "simulate",
            "vessels",
            "--array",
            "planar:4x4:5e-3",
            "-o",
            str(out),
            "--region=-2e-3,2e-3,-2e-3,2e-3,5e-3,7e-3",
            "--spacing",
            "2e-4",
            "--samples",
            "400",
            "--noise",
            "0.01",
            "--band-limit",
            "0.5e6,8e6",
        ]
    )
    assert code == 0
    summary = capsys.readouterr().out
    assert "16 sensors" in summary and str(out) in summary
    acq = read_acquisition(out)
    assert acq.signals.shape == (16, 400)
    assert np.abs(acq.signals).max() > 0
    assert acq.truth_volume is not None and acq.truth_volume.shape == (21, 21, 11)
    assert len(acq.truth_cloud) > 0
    np.testing.assert_array_equal(acq.normals[0], [0, 0, 1])
    assert acq.attrs["phantom"] == "vessels"
    assert [p.name for p in tmp_path.iterdir()] == ["sim.h5"]


def test_simulate_command_from_ply(tmp_path, capsys):
    from slingbag.io.ply import write_ply

    ply = tmp_path / "c.ply"
    write_ply(ply, GaussianCloud([[0, 0, 5e-3], [1e-3, 0, 6e-3]], [1, 2], [1e-4, 1e-4]))
    out = tmp_path / "s.h5"
    assert (
        main(
            [
                "simulate",
                str(ply),
                "--array",
                "planar-49",
                "-o",
                str(out),
                "--samples",
                "300",
                "--model",
                "shells",
            ]
        )
        == 0
    )
    acq = read_acquisition(out)
    assert acq.truth_volume is None
    np.testing.assert_allclose(acq.truth_cloud.p0, [1, 2])
    assert acq.attrs["simulated_model"] == "shells"


# --------------------------------------------------------------------------- properties

_values = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    n_sensors=st.integers(1, 8),
    n_samples=st.integers(1, 30),
    fs=st.floats(1e5, 1e10),
    sound_speed=st.floats(300, 5000),
    t0=st.floats(-1e-4, 1e-4),
)
def test_property_acquisition_round_trip(tmp_path, data, n_sensors, n_samples, fs, sound_speed, t0):
    signals = data.draw(arrays(np.float32, (n_sensors, n_samples), elements=_values))
    positions = data.draw(arrays(np.float64, (n_sensors, 3), elements=st.floats(-10, 10)))
    acq = Acquisition(signals, positions, fs, sound_speed, t0)
    path = tmp_path / "p.h5"
    write_acquisition(path, acq)
    back = read_acquisition(path)
    np.testing.assert_array_equal(back.signals, signals)
    np.testing.assert_array_equal(back.positions, positions)
    assert (back.fs, back.sound_speed, back.t0) == (fs, sound_speed, t0)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), n=st.integers(1, 20))
def test_property_result_cloud_round_trip(tmp_path, data, n):
    xyz = data.draw(arrays(np.float64, (n, 3), elements=st.floats(-1, 1)))
    p0 = data.draw(arrays(np.float64, n, elements=st.floats(-1e3, 1e3)))
    sigma = data.draw(arrays(np.float64, n, elements=st.floats(1e-7, 1e-2)))
    path = tmp_path / "r.h5"
    write_result(path, cloud=GaussianCloud(xyz, p0, sigma))
    back = read_result(path).cloud
    np.testing.assert_array_equal(back.xyz, xyz)
    np.testing.assert_array_equal(back.p0, p0)
    np.testing.assert_array_equal(back.sigma, sigma)


def _valid_h5_bytes(tmp_path) -> bytes:
    path = tmp_path / "valid.h5"
    write_acquisition(path, _acquisition(np.random.default_rng(0), n_samples=8, truth=False))
    return path.read_bytes()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_property_garbage_is_input_error(tmp_path, data):
    valid = _valid_h5_bytes(tmp_path)
    kind = data.draw(st.sampled_from(["random", "truncated", "flipped"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=600))
    elif kind == "truncated":
        blob = valid[: data.draw(st.integers(0, len(valid) - 1))]
    else:
        position = data.draw(st.integers(0, len(valid) - 1))
        blob = valid[:position] + bytes([valid[position] ^ 0xFF]) + valid[position + 1 :]
    path = tmp_path / "g.h5"
    path.write_bytes(blob)
    for reader in (read_acquisition, read_result, read_volume):
        try:
            reader(path)
        except InputError as err:
            assert str(path) in str(err)
            assert "\n" not in str(err)


def test_writers_into_a_missing_folder_are_input_errors(tmp_path, rng):
    target = tmp_path / "nowhere" / "a.h5"
    with pytest.raises(InputError, match="existing folder"):
        write_acquisition(target, _acquisition(rng))
    with pytest.raises(InputError, match="existing folder"), atomic_path(target):
        pass
    assert not (tmp_path / "nowhere").exists()


def test_leftover_temporary_files_are_removed(tmp_path):
    # A writer killed with SIGKILL leaves its temporary file: the next write removes it.
    import os
    import time

    from slingbag.io.atomic import remove_leftovers

    target = tmp_path / "out.npz"
    stale = tmp_path / ".out.npz.abc123.tmp"
    stale.write_bytes(b"half")
    past = time.time() - 60
    os.utime(stale, (past, past))
    other = tmp_path / ".other.npz.abc123.tmp"  # another target's: kept
    other.write_bytes(b"x")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert not stale.exists() and other.exists()
    stale.write_bytes(b"half again")
    remove_leftovers(target)
    assert not stale.exists() and other.exists()


def test_io_never_loads_the_solver(tmp_path):
    """Reading and writing files (here in a fresh interpreter) imports neither the
    reconstruction nor Taichi; the package's functions are still there when asked for."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import json, sys
import numpy as np
from slingbag.io.native import read_acquisition, read_result, write_acquisition, write_result
from slingbag.core.acquisition import Acquisition
from slingbag.core.volume import Volume
acq = Acquisition(np.ones((2, 8)), np.eye(3)[:2] * 1e-3, fs=40e6, sound_speed=1500.0)
write_acquisition({str(tmp_path / "a.h5")!r}, acq)
read_acquisition({str(tmp_path / "a.h5")!r})
write_result({str(tmp_path / "r.h5")!r}, volume=Volume(np.ones((2, 2, 2)), np.zeros(3), 1e-4))
read_result({str(tmp_path / "r.h5")!r})
loaded = sorted(m for m in sys.modules if m.startswith(("slingbag", "taichi")))
import slingbag
print(json.dumps([loaded, [slingbag.reconstruct.__name__, slingbag.ubp.__module__]]))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    loaded, names = json.loads(out.stdout.strip().splitlines()[-1])
    assert "slingbag.io.native" in loaded
    assert "slingbag.fit.reconstruct" not in loaded and "taichi" not in loaded, loaded
    assert names == ["reconstruct", "slingbag.baselines.ubp"]  # the functions, not the modules


def test_a_result_and_a_series_frame_store_cloud_and_history_alike(tmp_path):
    from slingbag.series.store import _read_frame, _write_frame

    rng = np.random.default_rng(3)
    cloud = GaussianCloud(rng.normal(size=(5, 3)) * 1e-3, rng.uniform(1, 2, 5), np.full(5, 1e-4))
    history = {"loss": np.linspace(1, 0.1, 7), "balls": np.arange(7)}
    write_result(tmp_path / "r.h5", cloud=cloud, history=history)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        out = {"cloud": cloud, "history": history, "seconds": 1.0, "warm": False}
        _write_frame(f.create_group("frame"), {**out, "signal_scale": 2.0})
    with h5py.File(tmp_path / "r.h5") as r, h5py.File(tmp_path / "s.h5") as s:
        for name in ("cloud/xyz", "cloud/p0", "cloud/sigma", "history/loss", "history/balls"):
            assert r[name].dtype == s["frame"][name].dtype, name
            assert np.array_equal(r[name][()], s["frame"][name][()]), name
        frame = _read_frame(s["frame"])
    assert np.array_equal(frame["cloud"].xyz, cloud.xyz)
    back = read_result(tmp_path / "r.h5")
    assert np.array_equal(back.history["balls"], history["balls"])
