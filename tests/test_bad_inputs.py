"""Bad files and options: one clear line, exit code 2, no traceback, no output left behind.

Each case writes a broken input into ``tmp_path`` and runs ``slingbag simulate`` in-process.
Acquisition files are checked through ``read_acquisition`` directly (the loader every
command that reads signals shares).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from slingbag.cli import main
from slingbag.errors import InputError
from slingbag.io.native import read_acquisition, read_result

PLY_HEADER = (
    "ply\nformat ascii 1.0\nelement vertex {n}\nproperty float x\nproperty float y\n"
    "property float z\nproperty float {amp}\nproperty float {size}\nend_header\n"
)
GOOD_ROWS = "0 0 0.01 1 1e-4\n0.001 0 0.01 2 1e-4\n"


def _ply(n=2, rows=GOOD_ROWS, amp="p0", size="sigma"):
    return PLY_HEADER.format(n=n, amp=amp, size=size) + rows


def _binary_ply_truncated():
    header = _ply(n=3, rows="").replace("ascii", "binary_little_endian")
    return header.encode() + np.zeros(2 * 5, "<f4").tobytes()


# (name, file name, content or None for "no file", extra CLI options, words the message has)
PHANTOM_CASES = [
    ("not-ply", "c.ply", "hello world\n", "PLY file"),
    ("empty-ply", "c.ply", "", "PLY file"),
    ("no-sigma", "c.ply", _ply(size="width"), "sigma"),
    ("no-x", "c.ply", _ply().replace("property float x\n", "property float w\n"), "property x"),
    ("nan-p0", "c.ply", _ply(rows="0 0 0.01 nan 1e-4\n0 0 0.01 1 1e-4\n"), "p0"),
    ("inf-z", "c.ply", _ply(rows="0 0 inf 1 1e-4\n0 0 0.01 1 1e-4\n"), "property z"),
    ("negative-sigma", "c.ply", _ply(rows="0 0 0.01 1 -1e-4\n0 0 0.01 1 1e-4\n"), "positive"),
    (
        "zero-radius",
        "c.ply",
        _ply(amp="intensity", size="radius", rows="0 0 0 1 0\n0 0 0 1 1\n"),
        "radius",
    ),
    ("too-few-rows", "c.ply", _ply(n=5), "5 vertex rows"),
    ("too-many-rows", "c.ply", _ply(n=1), "1 vertex rows"),
    ("binary-truncated", "c.ply", _binary_ply_truncated(), "bytes"),
    ("bad-format", "c.ply", _ply().replace("ascii 1.0", "utf8 1.0"), "format"),
    ("no-end-header", "c.ply", "ply\nformat ascii 1.0\nelement vertex 1\n", "end_header"),
    ("word-in-row", "c.ply", _ply(rows="0 0 zero 1 1e-4\n0 0 0 1 1e-4\n"), "numbers"),
    ("ragged-row", "c.ply", _ply(rows="0 0 0 1\n0 0 0 1 1e-4 7\n"), "vertex 0"),
    ("zero-vertices", "c.ply", _ply(n=0, rows=""), "at least one ball"),
    (
        "list-in-vertex",
        "c.ply",
        _ply().replace("end_header", "property list uchar int ids\nend_header"),
        "lists",
    ),
    ("no-vertex-element", "c.ply", "ply\nformat ascii 1.0\nelement face 0\nend_header\n", "vertex"),
    ("missing-ply", "missing.ply", None, "not found"),
    ("h5-not-hdf5", "v.h5", "not hdf5 at all", "HDF5"),
    ("h5-no-volume", "v.h5", {"other": np.ones(3)}, "volume"),
    ("h5-nan-volume", "v.h5", {"volume": np.full((2, 2, 2), np.nan)}, "finite"),
    ("h5-volume-no-spacing", "v.h5", {"volume": np.ones((2, 2, 2)), "-spacing": True}, "spacing"),
]


def _write(path, content):
    if content is None:
        return
    if isinstance(content, dict):
        with h5py.File(path, "w") as f:
            for name, value in content.items():
                if name.startswith("-"):
                    continue
                f[name] = value
                f[name].attrs["origin"] = [0.0, 0.0, 0.0]
                if "-spacing" not in content:
                    f[name].attrs["spacing"] = [1e-4] * 3
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _run(argv, capsys):
    """Run the CLI in-process; return (exit code, stderr lines, stdout)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def _assert_one_line_failure(code, err, tmp_path, out_name="out.h5", *words):
    assert code == 2
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert err[0].startswith("slingbag")
    for word in words:
        assert word.lower() in err[0].lower(), err[0]
    assert not (tmp_path / out_name).exists()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("name", "file", "content", "word"), PHANTOM_CASES, ids=[c[0] for c in PHANTOM_CASES]
)
def test_bad_phantom_file(tmp_path, capsys, name, file, content, word):
    path = tmp_path / file
    _write(path, content)
    code, err, _ = _run(
        ["simulate", str(path), "--array", "planar-49", "-o", str(tmp_path / "out.h5")], capsys
    )
    _assert_one_line_failure(code, err, tmp_path, "out.h5", str(path), word)


ARRAY_CASES = [
    ("unknown-preset", None, "planar-50", ["planar-576", "hemisphere-1024"]),
    ("missing-file", None, "sensors/none.txt", ["not found"]),
    ("two-columns", "a.txt", "0 0\n1 1\n", ["3 numbers"]),
    ("four-columns", "a.csv", "0,0,0,0\n", ["3 numbers"]),
    ("nan", "a.txt", "0 0 0\nnan 0 0\n", ["finite"]),
    ("millimetres", "a.txt", "0 0 0\n60 0 0\n", ["millimetres"]),
    ("empty", "a.txt", "", ["at least one row"]),
    ("words-mid-file", "a.txt", "0 0 0\nx y z\n", ["line 2"]),
    ("binary-text", "a.txt", b"\xff\xfe\x00\x01garbage", ["binary"]),
    ("npy-shape", "a.npy", np.zeros((4, 2)), ["(N, 3)"]),
    ("npy-garbage", "a.npy", b"\x93NUMPY garbage", [".npy"]),
    ("grid-zero", None, "planar:0x4:1e-3", ["planar:NxM:PITCH"]),
    ("grid-pitch-word", None, "planar:4x4:abc", ["planar:NxM:PITCH"]),
    ("grid-pitch-mm", None, "planar:4x4:1.5", ["millimetres"]),
    ("grid-syntax", None, "planar:4by4", ["planar:NxM:PITCH"]),
]


@pytest.mark.parametrize(
    ("name", "file", "spec", "words"), ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES]
)
def test_bad_array(tmp_path, capsys, name, file, spec, words):
    if file is not None:
        path = tmp_path / file
        if isinstance(spec, np.ndarray):
            np.save(path, spec)
        else:
            _write(path, spec)
        spec = str(path)
        words = [spec, *words]
    elif "/" in spec:
        spec = str(tmp_path / spec)
    code, err, _ = _run(
        ["simulate", "vessels", "--array", spec, "-o", str(tmp_path / "out.h5")], capsys
    )
    _assert_one_line_failure(code, err, tmp_path, "out.h5", *words)


OPTION_CASES = [
    ("fs-in-mhz", ["--fs", "40"], ["--fs", "40e6"]),
    ("fs-huge", ["--fs", "1e12"], ["--fs"]),
    ("speed-km-per-s", ["--sound-speed", "1.5"], ["--sound-speed", "m/s"]),
    ("speed-negative", ["--sound-speed=-1500"], ["--sound-speed"]),
    ("noise-negative", ["--noise=-0.1"], ["--noise"]),
    ("noise-nan", ["--noise", "nan"], ["--noise"]),
    ("samples-zero", ["--samples", "0"], ["--samples"]),
    ("samples-word", ["--samples", "many"], ["--samples"]),
    ("t0-huge", ["--t0", "5"], ["--t0"]),
    ("band-reversed", ["--band-limit", "5e6,1e6"], ["--band-limit"]),
    ("band-above-nyquist", ["--band-limit", "1e6,30e6"], ["--band-limit"]),
    ("band-word", ["--band-limit", "low,high"], ["--band-limit"]),
    ("region-short", ["--region", "0,1e-3,0,1e-3"], ["--region"]),
    ("region-mm", ["--region=-10,10,-10,10,12,18"], ["--region", "millimetres"]),
    ("region-empty-box", ["--region", "1e-3,0,0,1e-3,0,1e-3"], ["--region"]),
    ("spacing-zero", ["--spacing", "0"], ["--spacing"]),
    ("spacing-tiny", ["--spacing", "1e-7"], ["--spacing"]),
    ("model-unknown", ["--model", "rays"], ["--model"]),
    ("output-folder-missing", ["-o", "{tmp}/nowhere/out.h5"], ["-o"]),
]


@pytest.mark.parametrize(
    ("name", "options", "words"), OPTION_CASES, ids=[c[0] for c in OPTION_CASES]
)
def test_bad_option(tmp_path, capsys, name, options, words):
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    argv = ["simulate", "vessels", "--array", "planar-49", "-o", str(tmp_path / "out.h5")]
    code, err, _ = _run(argv + options, capsys)
    _assert_one_line_failure(code, err, tmp_path, "out.h5", *words)
    assert not (tmp_path / "nowhere").exists()


def test_region_only_for_vessels(tmp_path, capsys):
    ply = tmp_path / "c.ply"
    ply.write_text(_ply())
    argv = [
        "simulate",
        str(ply),
        "--array",
        "planar-49",
        "-o",
        str(tmp_path / "out.h5"),
        "--spacing",
        "1e-4",
    ]
    code, err, _ = _run(argv, capsys)
    _assert_one_line_failure(code, err, tmp_path, "out.h5", "vessels")


def test_unknown_phantom_name(tmp_path, capsys):
    code, err, _ = _run(
        ["simulate", "veins", "--array", "planar-49", "-o", str(tmp_path / "out.h5")], capsys
    )
    _assert_one_line_failure(code, err, tmp_path, "out.h5", "vessels", "veins")


def test_existing_output_survives_a_failed_run(tmp_path, capsys):
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous result")
    code, err, _ = _run(["simulate", "vessels", "--array", "planar-50", "-o", str(out)], capsys)
    assert code == 2 and len(err) == 1
    assert out.read_bytes() == b"previous result"


# --------------------------------------------------------------------------- acquisitions


def _good_acquisition(f):
    f["signals"] = np.ones((4, 16), np.float32)
    f["sensors/positions"] = np.zeros((4, 3))
    f.attrs["fs"] = 40e6
    f.attrs["sound_speed"] = 1500.0


def _edit(change):
    """A writer: a good acquisition, then ``change(f)`` breaks one thing."""

    def write(path):
        with h5py.File(path, "w") as f:
            _good_acquisition(f)
            change(f)

    return write


def _replace(name, value):
    def change(f):
        del f[name]
        f[name] = value

    return change


def _set_attr(name, value):
    def change(f):
        f.attrs[name] = value

    return change


def _truncated(path):
    with h5py.File(path, "w") as f:
        _good_acquisition(f)
        del f["signals"]
        f["signals"] = np.random.default_rng(0).normal(size=(4, 20000)).astype(np.float32)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


ACQ_CASES = [
    ("missing", None, None, "not found"),
    ("directory", lambda p: p.mkdir(), None, "directory"),
    ("not-hdf5", lambda p: p.write_text("signals,positions\n1,2\n"), None, "HDF5"),
    ("empty-file", lambda p: p.write_bytes(b""), None, "HDF5"),
    ("truncated", _truncated, None, "HDF5"),
    ("no-signals", _edit(lambda f: f.__delitem__("signals")), "signals", "dataset"),
    (
        "no-positions",
        _edit(lambda f: f.__delitem__("sensors/positions")),
        "sensors/positions",
        "dataset",
    ),
    ("signals-1d", _edit(_replace("signals", np.ones(16))), "signals", "2-D"),
    (
        "signals-group",
        _edit(lambda f: (f.__delitem__("signals"), f.create_group("signals"))),
        "signals",
        "dataset",
    ),
    ("signals-text", _edit(_replace("signals", np.array([b"a", b"b"]))), "signals", "numeric"),
    ("signals-empty", _edit(_replace("signals", np.ones((4, 0)))), "signals", "non-empty"),
    ("signals-nan", _edit(_replace("signals", np.full((4, 16), np.nan))), "signals", "finite"),
    ("frames-ambiguous", _edit(_replace("signals", np.ones((2, 4, 16)))), "signals", "--frame"),
    (
        "positions-2-columns",
        _edit(_replace("sensors/positions", np.zeros((4, 2)))),
        "sensors/positions",
        "(n, 3)",
    ),
    (
        "sensor-count",
        _edit(_replace("sensors/positions", np.zeros((5, 3)))),
        "sensors/positions",
        "4 rows",
    ),
    (
        "positions-inf",
        _edit(_replace("sensors/positions", np.full((4, 3), np.inf))),
        "sensors/positions",
        "finite",
    ),
    (
        "positions-mm",
        _edit(_replace("sensors/positions", np.full((4, 3), 60.0))),
        "sensors/positions",
        "millimetres",
    ),
    ("no-fs", _edit(lambda f: f.attrs.__delitem__("fs")), "fs", "attribute"),
    (
        "no-sound-speed",
        _edit(lambda f: f.attrs.__delitem__("sound_speed")),
        "sound_speed",
        "attribute",
    ),
    ("fs-mhz", _edit(_set_attr("fs", 40.0)), "fs", "40e6"),
    ("fs-text", _edit(_set_attr("fs", "fast")), "fs", "number"),
    ("fs-nan", _edit(_set_attr("fs", np.nan)), "fs", "finite"),
    ("speed-mm-per-us", _edit(_set_attr("sound_speed", 1.5)), "sound_speed", "mm/us"),
    ("speed-huge", _edit(_set_attr("sound_speed", 1e5)), "sound_speed", "m/s"),
    ("t0-inf", _edit(_set_attr("t0", np.inf)), "t0", "finite"),
    (
        "wrong-format",
        _edit(_set_attr("format", "slingbag-result")),
        "format",
        "slingbag-acquisition",
    ),
    ("future-version", _edit(_set_attr("version", 7)), "version", "newer"),
    (
        "normals-not-unit",
        _edit(lambda f: f.create_dataset("sensors/normals", data=np.ones((4, 3)))),
        "sensors/normals",
        "unit",
    ),
    (
        "normals-shape",
        _edit(lambda f: f.create_dataset("sensors/normals", data=np.ones((3, 3)))),
        "sensors/normals",
        "(4, 3)",
    ),
    (
        "areas-zero",
        _edit(lambda f: f.create_dataset("sensors/areas", data=np.zeros(4))),
        "sensors/areas",
        "positive",
    ),
    (
        "areas-shape",
        _edit(lambda f: f.create_dataset("sensors/areas", data=np.ones(5))),
        "sensors/areas",
        "(4,)",
    ),
    (
        "truth-volume-no-origin",
        _edit(lambda f: f.create_dataset("truth/volume", data=np.ones((2, 2, 2)))),
        "truth/volume",
        "origin",
    ),
    (
        "truth-cloud-bad-sigma",
        _edit(
            lambda f: (
                f.create_dataset("truth/cloud/xyz", data=np.zeros((2, 3))),
                f.create_dataset("truth/cloud/p0", data=np.ones(2)),
                f.create_dataset("truth/cloud/sigma", data=np.array([1e-4, -1.0])),
            )
        ),
        "truth/cloud/sigma",
        "positive",
    ),
    (
        "truth-cloud-count",
        _edit(
            lambda f: (
                f.create_dataset("truth/cloud/xyz", data=np.zeros((2, 3))),
                f.create_dataset("truth/cloud/p0", data=np.ones(3)),
                f.create_dataset("truth/cloud/sigma", data=np.ones(2) * 1e-4),
            )
        ),
        "truth/cloud/p0",
        "2 values",
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "field", "word"), ACQ_CASES, ids=[c[0] for c in ACQ_CASES]
)
def test_bad_acquisition(tmp_path, name, make, field, word):
    path = tmp_path / "acq.h5"
    if make is not None:
        make(path)
    with pytest.raises(InputError) as info:
        read_acquisition(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    if field is not None:
        assert field in message
    assert word.lower() in message.lower(), message


def test_acquisition_frame_out_of_range(tmp_path):
    path = tmp_path / "acq.h5"
    _edit(lambda f: None)(path)
    with pytest.raises(InputError, match="--frame"):
        read_acquisition(path, frame=3)


def test_acquisition_given_as_result(tmp_path):
    path = tmp_path / "acq.h5"
    _edit(_set_attr("format", "slingbag-acquisition"))(path)
    with pytest.raises(InputError, match="acquisition file"):
        read_result(path)


# ------------------------------------------- acquisitions every command refuses alike


def _planar_acquisition(path, change=None):
    """A 5 x 5 array of 2 mm pitch with noisy signals, then ``change`` breaks it."""
    from slingbag.core.acquisition import Acquisition
    from slingbag.io.native import write_acquisition

    g = (np.arange(5) - 2) * 2e-3
    X, Y = np.meshgrid(g, g)
    positions = np.stack([X.ravel(), Y.ravel(), 0 * X.ravel()], 1)
    signals = np.random.default_rng(0).normal(size=(25, 512)).astype(np.float32)
    acq = Acquisition(signals, positions, fs=40e6, sound_speed=1500.0)
    write_acquisition(path, change(acq) if change else acq)


def _one_duplicate(acq):
    pos = acq.positions.copy()
    pos[7] = pos[3]
    return acq.replace(positions=pos)


USABLE_CASES = [
    ("all-zero-signals", lambda a: a.replace(signals=np.zeros_like(a.signals)), "non-zero"),
    ("duplicate-positions", _one_duplicate, "sensors 3 and 7"),
    # 8 mm read as 8 m: inside the 10 m bound the reader checks, far beyond the window's
    # reach (19 mm).
    ("positions-in-mm", lambda a: a.replace(positions=a.positions * 1000), "millimetres"),
]
COMMANDS = {
    "ubp": (["ubp", "{data}", "-o", "{out}"], "out.h5"),
    "reconstruct": (["reconstruct", "{data}", "-o", "{out}", "--quiet"], "out.h5"),
    "reconstruct-series": (
        ["reconstruct-series", "{good}", "{data}", "-o", "{out}", "--quiet"],
        "out.h5",
    ),
    "convert": (["convert", "{data}", "{out}"], "out.ipasc.h5"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("name", "change", "words"), USABLE_CASES, ids=[c[0] for c in USABLE_CASES]
)
def test_every_command_refuses_an_unusable_acquisition(
    tmp_path, capsys, command, name, change, words
):
    good, data = tmp_path / "good.h5", tmp_path / "data.h5"
    _planar_acquisition(good)
    _planar_acquisition(data, change)
    argv, out_name = COMMANDS[command]
    names = {"data": str(data), "good": str(good), "out": str(tmp_path / out_name)}
    code, err, _ = _run([a.format(**names) for a in argv], capsys)
    _assert_one_line_failure(code, err, tmp_path, out_name, str(data), words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5", "good.h5"]


def test_a_usable_acquisition_passes_the_check(tmp_path):
    from slingbag.core.acquisition import check_acquisition
    from slingbag.io.formats import load_acquisition

    _planar_acquisition(tmp_path / "good.h5")
    acq = load_acquisition(tmp_path / "good.h5")
    assert check_acquisition(acq) is acq
