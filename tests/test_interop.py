"""Foreign formats (issue 7): IPASC, PATATO and the SlingBAG text layout, read and written."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from slingbag.cli import main
from slingbag.core.acquisition import Acquisition
from slingbag.core.cloud import GaussianCloud
from slingbag.core.volume import Volume
from slingbag.errors import InputError
from slingbag.io.detect import detect_format
from slingbag.io.formats import load_acquisition, output_format, read_any
from slingbag.io.ipasc import read_ipasc, write_ipasc
from slingbag.io.native import read_acquisition, write_acquisition, write_result
from slingbag.io.patato import read_patato, write_patato
from slingbag.io.text import read_text_layout, write_text_layout

REGION = [-3e-3, 3e-3, -3e-3, 3e-3, -3e-3, 3e-3]


def _acquisition(rng, n_sensors=12, n_samples=64) -> Acquisition:
    """Random signals on random sensors with every optional field the formats carry."""
    normals = rng.normal(size=(n_sensors, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return Acquisition(
        signals=rng.normal(size=(n_sensors, n_samples)),
        positions=rng.uniform(-0.05, 0.05, (n_sensors, 3)),
        fs=31.25e6,
        sound_speed=1487.5,
        t0=1.5e-6,
        normals=normals,
        areas=rng.uniform(1e-6, 1e-5, n_sensors),
    )


def _assert_same(back: Acquisition, acq: Acquisition, *, areas=True) -> None:
    np.testing.assert_array_equal(back.signals, acq.signals)
    assert back.signals.dtype == np.float32
    np.testing.assert_allclose(back.positions, acq.positions, rtol=1e-7, atol=0)
    assert (back.fs, back.sound_speed) == (acq.fs, acq.sound_speed)
    assert back.t0 == pytest.approx(acq.t0, rel=1e-7)
    np.testing.assert_allclose(back.normals, acq.normals, rtol=1e-6, atol=1e-7)
    if areas:
        np.testing.assert_allclose(back.areas, acq.areas, rtol=1e-6)


def _write(fmt, path, acq):
    {
        "slingbag": write_acquisition,
        "ipasc": write_ipasc,
        "patato": write_patato,
        "slingbag-text": write_text_layout,
    }[fmt](path, acq)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "fmt, name, probes",
    [
        ("slingbag", "a.h5", ["a.h5"]),
        ("ipasc", "a.hdf5", ["a.hdf5"]),
        # a PATATO file named like a slingbag one: the content decides
        ("patato", "scan.h5", ["scan.h5"]),
        (
            "slingbag-text",
            "run1",
            ["run1", "run1_sensor_location.txt", "run1_sensor_data.txt", "."],
        ),
    ],
)
def test_detect_format_by_content(tmp_path, rng, fmt, name, probes):
    _write(fmt, tmp_path / name, _acquisition(rng))
    for probe in probes:
        assert detect_format(tmp_path / probe) == fmt
        assert read_any(tmp_path / probe).n_sensors == 12


def test_detect_format_ipasc_with_a_txt_name(tmp_path, rng):
    write_ipasc(tmp_path / "data.txt", _acquisition(rng))
    assert detect_format(tmp_path / "data.txt") == "ipasc"


# --------------------------------------------------------------------------- round trips


def test_round_trip_through_every_format(tmp_path, rng):
    """slingbag -> IPASC -> PATATO -> text -> slingbag keeps everything to float32 precision."""
    acq = _acquisition(rng)
    chain = [
        ("slingbag", tmp_path / "a.h5"),
        ("ipasc", tmp_path / "b.ipasc.h5"),
        ("patato", tmp_path / "c.patato.h5"),
        ("slingbag-text", tmp_path / "d"),
        ("slingbag", tmp_path / "e.h5"),
    ]
    current = acq
    for fmt, path in chain:
        _write(fmt, path, current)
        back = read_any(path)
        assert detect_format(path) == fmt
        _assert_same(back, acq)
        current = back


def test_ipasc_without_pacfish_writes_the_same_layout(tmp_path, rng):
    acq = _acquisition(rng)
    write_ipasc(tmp_path / "plain.h5", acq, use_pacfish=False)
    _assert_same(read_ipasc(tmp_path / "plain.h5"), acq)
    with h5py.File(tmp_path / "plain.h5") as f:
        assert f["binary_time_series_data"].shape == (12, 64, 1, 1)
        assert f["meta_data/ad_sampling_rate"][()] == 31.25e6
        assert len(f["meta_data_device/detectors"]) == 12
        np.testing.assert_array_equal(
            f["meta_data_device/detectors/0000000003/detector_position"][()], acq.positions[3]
        )


def test_ipasc_written_by_slingbag_loads_in_pacfish(tmp_path, rng):
    pacfish = pytest.importorskip("pacfish")
    from pacfish import MetadataDeviceTags
    from pacfish.qualitycontrol import ConsistencyChecker

    acq = _acquisition(rng)
    for use_pacfish in (True, False):
        path = tmp_path / f"out{use_pacfish}.h5"
        write_ipasc(path, acq, use_pacfish=use_pacfish)
        pa = pacfish.load_data(str(path))
        # pacfish squeezes singleton axes of metadata but not of the binary data
        assert pa.binary_time_series_data.shape == (12, 64, 1, 1)
        np.testing.assert_array_equal(pa.binary_time_series_data[:, :, 0, 0], acq.signals)
        ids = sorted(pa.get_detector_ids())
        positions = np.array([pa.get_detector_position(i) for i in ids])
        np.testing.assert_array_equal(positions, acq.positions)
        assert pa.get_sampling_rate() == acq.fs
        assert pa.get_speed_of_sound() == acq.sound_speed
        assert ConsistencyChecker().check_acquisition_meta_data(pa.meta_data_acquisition)
        # every detection-element field passes pacfish's own value-range checks
        for element in pa.meta_data_device["detectors"].values():
            for tag in (
                MetadataDeviceTags.DETECTOR_POSITION,
                MetadataDeviceTags.DETECTOR_ORIENTATION,
                MetadataDeviceTags.DETECTOR_GEOMETRY,
            ):
                assert tag.evaluate_value_range(element[tag.tag]), tag.tag


def _pacfish_file(pacfish, path, rng, n_det=12, n_samples=50, n_wl=3, n_frames=2):
    """A multi-frame, multispectral IPASC file written with pacfish's own API."""
    from pacfish import MetadataAcquisitionTags as A

    binary = rng.normal(size=(n_det, n_samples, n_wl, n_frames)).astype(np.float32)
    positions = rng.uniform(-0.03, 0.03, (n_det, 3))
    # orientations of arbitrary length: IPASC does not require unit vectors
    orientations = rng.normal(size=(n_det, 3)) * rng.uniform(0.5, 3.0, (n_det, 1))
    device = pacfish.DeviceMetaDataCreator()
    device.set_general_information("slingbag-test-device", np.array([-0.01, 0.01] * 3))
    for i in range(n_det):
        element = pacfish.DetectionElementCreator()
        element.set_detector_position(positions[i])
        element.set_detector_orientation(orientations[i])
        element.set_detector_geometry_type("CIRCULAR")
        element.set_detector_geometry(0.5e-3)
        device.add_detection_element(element.get_dictionary())
    pa = pacfish.PAData(binary)
    pa.meta_data_device = device.finalize_device_meta_data()
    pa.meta_data_acquisition = {
        A.UUID.tag: "test",
        A.ENCODING.tag: "raw",
        A.COMPRESSION.tag: "none",
        A.DATA_TYPE.tag: "float32",
        A.DIMENSIONALITY.tag: "time",
        A.SIZES.tag: np.array(binary.shape),
        A.AD_SAMPLING_RATE.tag: 25e6,
        A.SPEED_OF_SOUND.tag: 1520.0,
        A.ACQUISITION_WAVELENGTHS.tag: np.array([700e-9, 800e-9, 900e-9]),
    }
    pacfish.write_data(str(path), pa)
    return binary, positions, orientations


def test_reads_files_written_by_pacfish(tmp_path, rng):
    pacfish = pytest.importorskip("pacfish")
    path = tmp_path / "pacfish.hdf5"
    binary, positions, orientations = _pacfish_file(pacfish, path, rng)
    assert detect_format(path) == "ipasc"
    acq = read_any(path, frame=1, wavelength=2)
    np.testing.assert_array_equal(acq.signals, binary[:, :, 2, 1])
    np.testing.assert_array_equal(acq.positions, positions)
    np.testing.assert_allclose(
        acq.normals, orientations / np.linalg.norm(orientations, axis=1, keepdims=True)
    )
    np.testing.assert_allclose(acq.areas, np.pi * 0.5e-3**2)
    assert (acq.fs, acq.sound_speed, acq.t0) == (25e6, 1520.0, 0.0)
    assert acq.attrs["wavelength_nm"] == pytest.approx(900.0)
    np.testing.assert_array_equal(read_any(path).signals, binary[:, :, 0, 0])

    # converted on to slingbag's HDF5 and back to IPASC, the frame stays the same
    assert main(["convert", str(path), str(tmp_path / "f.h5"), "--frame", "1"]) == 0
    assert main(["convert", str(tmp_path / "f.h5"), str(tmp_path / "g.ipasc.h5")]) == 0
    back = read_any(tmp_path / "g.ipasc.h5")
    np.testing.assert_array_equal(back.signals, binary[:, :, 0, 1])
    np.testing.assert_allclose(back.normals, acq.normals)

    with pytest.raises(
        InputError, match=r"pacfish\.hdf5: --wavelength: expected a wavelength in \[0, 2\]"
    ):
        read_any(path, wavelength=3)
    with pytest.raises(InputError, match=r"--frame: expected a frame in \[0, 1\], got 2"):
        read_any(path, frame=2)


def test_ipasc_detectors_in_natural_order(tmp_path, rng):
    """Ids that are not zero-padded (element_2 < element_10) keep the data's order."""
    acq = _acquisition(rng)
    path = tmp_path / "a.h5"
    write_ipasc(path, acq, use_pacfish=False)
    with h5py.File(path, "r+") as f:
        group = f["meta_data_device/detectors"]
        for i in range(12):
            group.move(str(i).zfill(10), f"detection_element_{i}")
    np.testing.assert_array_equal(read_ipasc(path).positions, acq.positions)


def test_patato_frames_and_wavelengths(tmp_path, rng):
    raw = rng.normal(size=(3, 2, 5, 40)).astype(np.float32)
    geometry = rng.uniform(-0.04, 0.04, (5, 3))
    path = tmp_path / "scan.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["fs"] = 4e7
        f.attrs["speedofsound"] = 1490.0
        f.create_dataset("raw_data", data=raw)
        f.create_dataset("GEOMETRY", data=geometry)
        f.create_dataset("wavelengths", data=np.array([750.0, 850.0]))
    acq = read_any(path, frame=2, wavelength=1)
    np.testing.assert_array_equal(acq.signals, raw[2, 1])
    np.testing.assert_array_equal(acq.positions, geometry)
    assert (acq.fs, acq.sound_speed, acq.t0, acq.normals) == (4e7, 1490.0, 0.0, None)
    assert acq.attrs["wavelength_nm"] == 850.0
    assert read_patato(path, sound_speed=1530).sound_speed == 1530.0
    with pytest.raises(InputError, match=r"scan\.hdf5: --frame: expected a frame in \[0, 2\]"):
        read_any(path, frame=3)


# --------------------------------------------------------------------------- text layout


def test_text_layout_as_the_paper_writes_it(tmp_path, rng):
    """A bare pair (no side files) loads at 40 MHz and 1500 m/s unless told otherwise."""
    positions = rng.uniform(-0.06, 0.06, (7, 3))
    signals = rng.normal(size=(7, 4096)).astype(np.float32)
    np.savetxt(tmp_path / "x_sensor_location.txt", positions, delimiter="\t")
    np.savetxt(tmp_path / "x_sensor_data.txt", signals, delimiter="\t")
    acq = read_text_layout(tmp_path / "x_sensor_location.txt")
    np.testing.assert_array_equal(acq.signals, signals)
    np.testing.assert_array_equal(acq.positions, positions)
    assert (acq.fs, acq.sound_speed, acq.t0, acq.normals) == (40e6, 1500.0, 0.0, None)
    told = read_any(tmp_path / "x", fs=20e6, sound_speed=1540)
    assert (told.fs, told.sound_speed) == (20e6, 1540.0)
    # samples x sensors, as MATLAB users often save it, is recognised
    np.savetxt(tmp_path / "x_sensor_data.txt", signals.T, delimiter="\t")
    np.testing.assert_array_equal(read_any(tmp_path / "x").signals, signals)


def test_text_layout_rat_liver_reconstructs(tmp_path, shared_data):
    import slingbag
    from slingbag.core.arrays import load_array
    from slingbag.core.config import load_config
    from slingbag.io.ply import read_ply

    cloud = read_ply(shared_data / "rat_liver_phantom.ply")
    sensors = load_array(shared_data / "sphere_1013_sensors.txt").positions[::16]
    simulated = slingbag.simulate(cloud, sensors, fs=40e6, n_samples=4096)
    # the paper's layout exactly: two tab-separated files, nothing else
    np.savetxt(tmp_path / "rat_liver_sensor_location.txt", sensors, delimiter="\t")
    np.savetxt(tmp_path / "rat_liver_sensor_data.txt", simulated.signals, delimiter="\t")
    acq = read_any(tmp_path / "rat_liver_sensor_data.txt")
    assert acq.signals.shape == (64, 4096)
    np.testing.assert_array_equal(acq.signals, simulated.signals)
    lo, hi = cloud.xyz.min(axis=0) - 0.5e-3, cloud.xyz.max(axis=0) + 0.5e-3
    rec = slingbag.reconstruct(
        acq,
        load_config("fast"),
        iterations=6,
        seed=0,
        progress=False,
        region=np.stack([lo, hi], axis=1).reshape(-1),
    )
    loss = rec.history["loss"]
    assert np.isfinite(loss).all()
    assert loss[-1] < 0.9 * loss[0]


# --------------------------------------------------------------------------- reconstruction


def test_reconstruction_from_ipasc_equals_slingbag(tmp_path):
    import slingbag
    from slingbag.core.arrays import load_array
    from slingbag.core.config import load_config

    rng = np.random.default_rng(7)
    cloud = GaussianCloud(
        rng.uniform(-2e-3, 2e-3, (50, 3)), rng.uniform(20, 100, 50), rng.uniform(1e-4, 3e-4, 50)
    )
    array = load_array("planar:4x4:5e-3")
    array.positions[:, 2] = -10e-3
    acq = slingbag.simulate(cloud, array, fs=40e6, n_samples=512)
    write_acquisition(tmp_path / "a.h5", acq)
    write_ipasc(tmp_path / "a.ipasc.h5", acq)
    clouds = []
    for name in ("a.h5", "a.ipasc.h5"):
        data = load_acquisition(tmp_path / name)
        rec = slingbag.reconstruct(
            data, load_config("fast"), iterations=10, seed=3, progress=False, region=REGION
        )
        clouds.append(rec.cloud)
    np.testing.assert_array_equal(clouds[0].xyz, clouds[1].xyz)
    np.testing.assert_array_equal(clouds[0].p0, clouds[1].p0)
    np.testing.assert_array_equal(clouds[0].sigma, clouds[1].sigma)


# --------------------------------------------------------------------------- convert


@pytest.mark.parametrize(
    "out, to, fmt",
    [
        ("o.h5", None, "slingbag"),
        ("o.ipasc.h5", None, "ipasc"),
        ("o.hdf5", "ipasc", "ipasc"),
        ("o.patato.hdf5", None, "patato"),
        ("o_txt", None, "slingbag-text"),
        ("o_dir/", None, "slingbag-text"),
        ("o.h5", "text", "slingbag-text"),
    ],
)
def test_convert_command(tmp_path, rng, capsys, out, to, fmt):
    acq = _acquisition(rng)
    write_acquisition(tmp_path / "in.h5", acq)
    args = ["convert", str(tmp_path / "in.h5"), str(tmp_path / out)]
    assert main(args + (["--to", to] if to else [])) == 0
    assert f"-> {fmt}" in capsys.readouterr().out
    target = tmp_path / out
    if fmt == "slingbag-text" and out.endswith(".h5"):
        target = tmp_path / "o.h5"  # a prefix with a dot: the pair is o.h5_sensor_*.txt
        assert (tmp_path / "o.h5_sensor_location.txt").is_file()
    assert detect_format(target) == fmt
    _assert_same(read_any(target), acq)


def test_convert_text_with_options(tmp_path, rng, capsys):
    positions = rng.uniform(-0.06, 0.06, (5, 3))
    np.savetxt(tmp_path / "p_sensor_location.txt", positions, delimiter="\t")
    # 600 samples: a window that reaches across the array (30 would be refused as unusable).
    np.savetxt(tmp_path / "p_sensor_data.txt", rng.normal(size=(5, 600)), delimiter="\t")
    args = ["convert", str(tmp_path), str(tmp_path / "p.h5"), "--fs", "2e7"]
    assert main(args + ["--sound-speed", "1480"]) == 0
    back = read_acquisition(tmp_path / "p.h5")
    assert (back.fs, back.sound_speed) == (2e7, 1480.0)
    # a unit slip in an option is caught like one in a file
    assert main(args + ["--sound-speed", "1.48"]) == 2
    assert "--sound-speed: expected a sound speed" in capsys.readouterr().err


def test_convert_refuses_unknown_output(tmp_path, rng, capsys):
    write_acquisition(tmp_path / "in.h5", _acquisition(rng))
    assert main(["convert", str(tmp_path / "in.h5"), str(tmp_path / "out.mat")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--to" in err and "out.mat" in err
    with pytest.raises(InputError, match="--to"):
        output_format("x.mat")


# --------------------------------------------------------------------------- bad files


def _ipasc(tmp_path, rng, **edits):
    path = tmp_path / "bad.h5"
    write_ipasc(path, _acquisition(rng), use_pacfish=False)
    with h5py.File(path, "r+") as f:
        for name, value in edits.items():
            name = name.replace("__", "/")
            del f[name]
            if value is not None:
                f[name] = value
    return path


def _patato(tmp_path, rng, **edits):
    path = tmp_path / "bad.h5"
    write_patato(path, _acquisition(rng))
    with h5py.File(path, "r+") as f:
        for name in edits:
            if name in f.attrs:
                del f.attrs[name]
            else:
                del f[name]
    return path


@pytest.mark.parametrize(
    "make, pattern",
    [
        (
            lambda p, r: _ipasc(p, r, meta_data__ad_sampling_rate=None),
            r"bad\.h5: meta_data/ad_sampling_rate: expected the sampling rate",
        ),
        (
            lambda p, r: _ipasc(p, r, meta_data__ad_sampling_rate=40.0),
            r"meta_data/ad_sampling_rate: expected a sampling rate .* \(fs is in Hz",
        ),
        (
            lambda p, r: _ipasc(p, r, meta_data__speed_of_sound="None"),
            r"meta_data/speed_of_sound: expected a speed of sound .*give --sound-speed",
        ),
        (
            lambda p, r: _ipasc(p, r, meta_data__speed_of_sound=np.array([1450.0, 1550.0])),
            r"meta_data/speed_of_sound: expected one global value",
        ),
        (
            lambda p, r: _ipasc(p, r, meta_data_device__detectors__0000000004=None),
            r"meta_data_device/detectors: expected 12 detection elements .* got 11",
        ),
        (
            lambda p, r: _ipasc(
                p,
                r,
                meta_data_device__detectors__0000000002__detector_position=np.array(
                    [10.0, 20.0, 30.0]
                ),
            ),
            r"detector_position: expected coordinates in metres.*millimetres",
        ),
        (
            lambda p, r: _ipasc(p, r, meta_data_device=None),
            r"bad\.h5: meta_data_device: expected a group",
        ),
        (
            lambda p, r: _patato(p, r, GEOMETRY=1),
            r"bad\.h5: GEOMETRY: expected a dataset 'GEOMETRY'",
        ),
        (
            lambda p, r: _patato(p, r, speedofsound=1),
            r"bad\.h5: attribute speedofsound: expected a speed of sound.*--sound-speed",
        ),
    ],
    ids=[
        "ipasc-no-fs",
        "ipasc-fs-in-mhz",
        "ipasc-no-c",
        "ipasc-c-map",
        "ipasc-detector-missing",
        "ipasc-mm",
        "ipasc-no-device",
        "patato-no-geometry",
        "patato-no-c",
    ],
)
def test_bad_hdf5_files(tmp_path, rng, make, pattern):
    path = make(tmp_path, rng)
    with pytest.raises(InputError, match=pattern):
        read_any(path)


def test_unknown_files_are_named(tmp_path, rng):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match=r"junk\.bin: expected an acquisition file.*neither"):
        detect_format(junk)

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["images"] = np.zeros(3)
    with pytest.raises(InputError, match=r"other\.h5: expected an acquisition .*holding images"):
        read_any(other)

    result = tmp_path / "result.h5"
    write_result(result, volume=Volume(np.zeros((2, 2, 2)), [0, 0, 0], [1e-4] * 3))
    with pytest.raises(InputError, match=r"result\.h5: .*got a slingbag result file"):
        read_any(result)

    with pytest.raises(InputError, match=r"missing: expected an existing file.*not found"):
        read_any(tmp_path / "missing")

    notes = tmp_path / "notes.txt"
    notes.write_text("hello world\n")
    with pytest.raises(InputError, match=r"notes\.txt: expected an acquisition file"):
        read_any(notes)


def test_bad_text_layouts(tmp_path, rng):
    np.savetxt(tmp_path / "a_sensor_location.txt", rng.normal(size=(4, 3)) * 0.01, delimiter="\t")
    with pytest.raises(InputError, match=r"a_sensor_data\.txt: expected the other file"):
        read_any(tmp_path / "a_sensor_location.txt")

    np.savetxt(tmp_path / "a_sensor_data.txt", rng.normal(size=(5, 20)), delimiter="\t")
    with pytest.raises(InputError, match=r"a_sensor_data\.txt: expected 4 rows .*shape \(5, 20\)"):
        read_any(tmp_path / "a")

    np.savetxt(tmp_path / "a_sensor_location.txt", rng.normal(size=(5, 4)), delimiter="\t")
    with pytest.raises(InputError, match=r"a_sensor_location\.txt: expected rows of 3 numbers"):
        read_any(tmp_path / "a")

    (tmp_path / "a_sensor_location.txt").write_text("0.01\t0.02\t0.03\n0.01\tabc\t0.03\n")
    with pytest.raises(InputError, match=r"a_sensor_location\.txt: expected rows of 3 numbers"):
        read_any(tmp_path / "a")

    np.savetxt(tmp_path / "a_sensor_location.txt", rng.normal(size=(5, 3)) * 0.01)
    (tmp_path / "a_meta.json").write_text(json.dumps({"fs": "fast"}))
    with pytest.raises(InputError, match=r"a_meta\.json: fs: expected a number"):
        read_any(tmp_path / "a")
    (tmp_path / "a_meta.json").write_text(json.dumps({"fs": 40}))
    with pytest.raises(InputError, match=r"a_meta\.json: fs: expected a sampling rate"):
        read_any(tmp_path / "a")

    # a text pair that does not follow the naming pattern cannot be paired up
    shutil.copy(tmp_path / "a_sensor_data.txt", tmp_path / "signals.txt")
    with pytest.raises(InputError, match=r"signals\.txt: expected the SlingBAG text layout"):
        read_any(tmp_path / "signals.txt")

    with pytest.raises(
        InputError,
        match=r"a\.h5: --wavelength: expected 0 \(slingbag files hold one wavelength\), got 1",
    ):
        write_acquisition(tmp_path / "a.h5", _acquisition(rng))
        read_any(tmp_path / "a.h5", wavelength=1)
