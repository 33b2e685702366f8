"""Sensor faces in files and on the command line: SPEC section 7's ``element_shape``,
``sensors/element_size`` and ``sensors/element_axis``, IPASC's detector geometry, and
``--element``."""

from __future__ import annotations

import logging
import pickle

import h5py
import numpy as np
import pytest

from slingbag.cli import build_parser, main
from slingbag.core.acquisition import Acquisition, check_acquisition
from slingbag.core.element import Element
from slingbag.errors import InputError
from slingbag.io.formats import load_acquisition, read_any
from slingbag.io.ipasc import read_ipasc, write_ipasc
from slingbag.io.native import read_acquisition, write_acquisition

N = 9


def _acquisition(element=None, normals=True) -> Acquisition:
    """A 3 x 3 planar array at 2 mm pitch facing +z, with noisy signals."""
    g = (np.arange(3) - 1) * 2e-3
    x, y = np.meshgrid(g, g)
    positions = np.stack([x.ravel(), y.ravel(), np.zeros(N)], 1)
    signals = np.random.default_rng(0).normal(size=(N, 128)).astype(np.float32)
    return Acquisition(
        signals,
        positions,
        fs=40e6,
        sound_speed=1500.0,
        normals=np.tile([0.0, 0.0, 1.0], (N, 1)) if normals else None,
        areas=np.full(N, 4e-6),
        element=element,
    )


def _disc():
    return Element("disc", np.linspace(2e-3, 3e-3, N))


def _rect(axis=True):
    size = np.tile([2e-3, 1e-3], (N, 1))
    return Element("rect", size, np.tile([0.6, 0.8, 0.0], (N, 1)) if axis else None)


def _same_element(back, element):
    assert back is not None and back.shape == element.shape
    np.testing.assert_allclose(back.size, element.size, rtol=1e-12)
    if element.axis is None:
        assert back.axis is None
    else:
        np.testing.assert_allclose(back.axis, element.axis, rtol=1e-12)


# --------------------------------------------------------------------------- native HDF5


@pytest.mark.parametrize("make", [_disc, _rect, lambda: _rect(axis=False)])
def test_native_round_trip_keeps_the_element(tmp_path, make):
    element = make()
    write_acquisition(tmp_path / "a.h5", _acquisition(element))
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["sensors"].attrs["element_shape"] == element.shape.encode()
        assert f["sensors/element_size"].dtype == np.float64
        assert ("sensors/element_axis" in f) == (element.axis is not None)
    _same_element(read_acquisition(tmp_path / "a.h5").element, element)


@pytest.mark.parametrize("element", [None, Element("point")])
def test_point_sensors_read_as_no_element(tmp_path, element):
    write_acquisition(tmp_path / "a.h5", _acquisition(element))
    acq = read_acquisition(tmp_path / "a.h5")
    assert acq.element is None and acq.faces is None


def _set(name, value):
    def change(f):
        if name in f:
            del f[name]
        f[name] = value

    return change


def _drop(name):
    def change(f):
        del f[name]

    return change


def _shape_attr(value):
    def change(f):
        f["sensors"].attrs["element_shape"] = value

    return change


def _size(values):
    return _set("sensors/element_size", values)


def _axes(values):
    return _set("sensors/element_axis", values)


def _axis(values):
    return _axes(np.tile(values, (N, 1)))


# (name, element written, change to the file, field named, words of the message)
BAD_FILES = [
    ("unknown-shape", _disc, _shape_attr("hexagon"), "element_shape", "point, disc, rect"),
    ("disc-without-normals", _disc, _drop("sensors/normals"), "sensors/normals", "disc"),
    ("rect-without-normals", _rect, _drop("sensors/normals"), "sensors/normals", "rect"),
    ("no-size", _disc, _drop("sensors/element_size"), "sensors/element_size", "dataset"),
    ("rect-size-1d", _rect, _size(np.full(N, 1e-3)), "element_size", "2-D"),
    ("disc-size-2d", _disc, _size(np.ones((N, 2)) * 1e-3), "size", "1-D"),
    ("size-too-few", _disc, _size(np.full(N - 1, 1e-3)), "size", f"({N},)"),
    ("rect-size-3-cols", _rect, _size(np.ones((N, 3)) * 1e-3), "size", "2)"),
    ("size-nan", _disc, _size(np.r_[np.nan, np.full(N - 1, 1e-3)]), "size", "finite"),
    ("size-zero", _disc, _size(np.zeros(N)), "element_size", "(0, 0.1]"),
    ("size-negative", _rect, _size(-np.ones((N, 2)) * 1e-3), "size", "(0, 0.1]"),
    ("size-in-mm", _disc, _size(np.full(N, 3.0)), "element_size", "metres"),
    ("axis-not-unit", _rect, _axis([2.0, 0.0, 0.0]), "sensors/element_axis", "unit"),
    ("axis-not-in-face", _rect, _axis([0.6, 0.0, 0.8]), "sensors/element_axis", "in the face"),
    ("axis-wrong-shape", _rect, _axes(np.ones((N, 2))), "element_axis", "(9, 3)"),
    ("axis-8-rows", _rect, _axes(np.ones((N - 1, 2))), "element_axis", "(9, 3)"),
    ("axis-nan", _rect, _axis([np.nan, 1.0, 0.0]), "sensors/element_axis", "finite"),
]


@pytest.mark.parametrize(
    ("name", "make", "change", "field", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
def test_bad_element_fields_name_the_file_and_field(tmp_path, name, make, change, field, words):
    path = tmp_path / "bad.h5"
    write_acquisition(path, _acquisition(make()))
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(InputError) as info:
        read_acquisition(path)
    message = str(info.value)
    assert str(path) in message and field in message and words in message, message


def test_check_acquisition_refuses_an_element_that_does_not_fit():
    with pytest.raises(InputError, match="sensors/normals"):
        check_acquisition(_acquisition(_disc(), normals=False))
    with pytest.raises(InputError, match=r"sensors/element_size.*shape \(9,\)"):
        check_acquisition(_acquisition(Element("disc", np.full(4, 1e-3))))
    with pytest.raises(InputError, match="sensors/element_axis"):
        check_acquisition(_acquisition(Element("rect", _rect().size, np.ones((N, 3)))))
    assert check_acquisition(_acquisition(_rect())).element is not None


# --------------------------------------------------------------------------- IPASC


def _writers():
    try:
        import pacfish  # noqa: F401
    except ImportError:
        return [False]
    return [False, True]


@pytest.mark.parametrize("use_pacfish", _writers())
@pytest.mark.parametrize("make", [_disc, _rect, lambda: _rect(axis=False)])
def test_native_to_ipasc_to_native_keeps_the_element(tmp_path, make, use_pacfish):
    acq = _acquisition(make())
    write_acquisition(tmp_path / "a.h5", acq)
    write_ipasc(
        tmp_path / "b.ipasc.h5", read_acquisition(tmp_path / "a.h5"), use_pacfish=use_pacfish
    )
    with h5py.File(tmp_path / "b.ipasc.h5") as f:
        kind = f["meta_data_device/detectors/0000000000/detector_geometry_type"][()]
        assert kind.decode() == ("CIRCULAR" if acq.element.shape == "disc" else "CUBOID")
    middle = read_ipasc(tmp_path / "b.ipasc.h5")
    _same_element(middle.element, acq.element)
    np.testing.assert_allclose(middle.areas, acq.areas)  # areas are not the face's
    write_acquisition(tmp_path / "c.h5", middle)
    _same_element(read_acquisition(tmp_path / "c.h5").element, acq.element)


def test_point_sensors_with_areas_stay_points_through_ipasc(tmp_path):
    acq = _acquisition()
    write_ipasc(tmp_path / "p.ipasc.h5", acq)
    back = read_ipasc(tmp_path / "p.ipasc.h5")
    assert back.element is None
    np.testing.assert_allclose(back.areas, acq.areas)


def _foreign_ipasc(path, geometry, *, types=None, orientation=True):
    """An IPASC file as another writer leaves it: no slingbag fields."""
    write_ipasc(path, _acquisition(), use_pacfish=False)
    with h5py.File(path, "a") as f:
        del f["meta_data/slingbag_t0"]
        del f["meta_data_device/general/slingbag_element_shape"]
        for i, name in enumerate(sorted(f["meta_data_device/detectors"])):
            group = f["meta_data_device/detectors"][name]
            for key in ("detector_geometry_type", "detector_geometry"):
                del group[key]
            if not orientation:
                del group["detector_orientation"]
            kind = types[i] if types else ("CIRCULAR" if np.ndim(geometry) == 0 else "CUBOID")
            group["detector_geometry_type"] = kind
            group["detector_geometry"] = geometry


def test_ipasc_circular_is_a_disc_of_twice_the_radius(tmp_path):
    _foreign_ipasc(tmp_path / "f.h5", 0.5e-3)
    acq = read_ipasc(tmp_path / "f.h5")
    assert acq.element.shape == "disc"
    np.testing.assert_allclose(acq.element.size, np.full(N, 1e-3))
    np.testing.assert_allclose(acq.areas, np.pi * 0.5e-3**2)


@pytest.mark.parametrize(
    ("extents", "face"),
    [([2e-3, 1e-3, 0.2e-3], [2e-3, 1e-3]), ([2e-3, 1e-3, 0.0], [2e-3, 1e-3])],
)
def test_ipasc_cuboid_is_a_rectangle_across_its_depth(tmp_path, extents, face):
    _foreign_ipasc(tmp_path / "f.h5", np.array(extents))
    acq = read_ipasc(tmp_path / "f.h5")
    assert acq.element.shape == "rect" and acq.element.axis is None
    np.testing.assert_allclose(acq.element.size, np.tile(face, (N, 1)))


@pytest.mark.parametrize(
    ("case", "kwargs", "warns"),
    [
        ("sphere", {"geometry": 1e-3, "types": ["SPHERE"] * N}, False),
        ("zero-radius", {"geometry": 0.0}, False),
        ("mixed", {"geometry": 1e-3, "types": ["CIRCULAR"] * (N - 1) + ["SPHERE"]}, True),
        ("millimetres", {"geometry": np.array([2.0, 1.0, 0.2])}, True),
        ("no-orientation", {"geometry": 1e-3, "orientation": False}, True),
    ],
)
def test_ipasc_geometry_slingbag_cannot_use_reads_as_points(tmp_path, caplog, case, kwargs, warns):
    _foreign_ipasc(tmp_path / "f.h5", **kwargs)
    with caplog.at_level(logging.WARNING, logger="slingbag"):
        acq = read_ipasc(tmp_path / "f.h5")
    assert acq.element is None
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warned) == warns, warned
    if warns:
        assert "detector_geometry" in warned[0] and "points" in warned[0]


def test_ipasc_written_by_slingbag_before_elements_reads_as_points(tmp_path):
    path = tmp_path / "old.ipasc.h5"
    write_ipasc(path, _acquisition(), use_pacfish=False)
    with h5py.File(path, "a") as f:  # the areas' CIRCULAR, without the shape marker
        del f["meta_data_device/general/slingbag_element_shape"]
    assert read_ipasc(path).element is None


def test_ipasc_bad_width_axis_names_its_field(tmp_path):
    path = tmp_path / "a.ipasc.h5"
    write_ipasc(path, _acquisition(_rect()), use_pacfish=False)
    with h5py.File(path, "a") as f:
        group = f["meta_data_device/detectors/0000000004"]
        del group["slingbag_element_axis"]
        group["slingbag_element_axis"] = np.array([0.0, 0.0, 1.0])
    with pytest.raises(InputError, match=r"slingbag_element_axis.*in the face"):
        read_ipasc(path)


# --------------------------------------------------------------------------- other layouts


def test_convert_carries_the_element_and_says_when_a_layout_cannot(tmp_path, caplog, capsys):
    write_acquisition(tmp_path / "a.h5", _acquisition(_rect()))
    assert main(["convert", str(tmp_path / "a.h5"), str(tmp_path / "b.ipasc.h5")]) == 0
    assert main(["convert", str(tmp_path / "b.ipasc.h5"), str(tmp_path / "c.h5")]) == 0
    assert "rect 2 x 1 mm faces" in capsys.readouterr().out
    _same_element(read_acquisition(tmp_path / "c.h5").element, _rect())
    with caplog.at_level(logging.WARNING, logger="slingbag"):
        assert main(["convert", str(tmp_path / "c.h5"), str(tmp_path / "d.patato.h5")]) == 0
    assert any("no field for the sensors' faces" in r.getMessage() for r in caplog.records)
    assert read_any(tmp_path / "d.patato.h5").element is None


# --------------------------------------------------------------------------- --element


def _args(command, data, *options):
    return build_parser().parse_args([command, str(data), "-o", "out.h5", *options])


@pytest.mark.parametrize("command", ["reconstruct", "ubp", "mb"])
def test_a_file_with_an_element_is_read_with_it_without_a_flag(tmp_path, command):
    from slingbag.commands.reconstruct import read_input

    write_acquisition(tmp_path / "a.h5", _acquisition(_disc()))
    args = _args(command, tmp_path / "a.h5")
    assert args.element is None
    _same_element(read_input(args).element, _disc())
    _same_element(load_acquisition(tmp_path / "a.h5").element, _disc())


@pytest.mark.parametrize("command", ["reconstruct", "ubp", "mb"])
def test_the_flag_replaces_the_files_element(tmp_path, command):
    from slingbag.commands.reconstruct import read_input

    write_acquisition(tmp_path / "a.h5", _acquisition(_disc()))
    acq = read_input(_args(command, tmp_path / "a.h5", "--element", "rect:2e-3x1e-3"))
    _same_element(acq.element, Element("rect", np.tile([2e-3, 1e-3], (N, 1))))
    acq = read_input(_args(command, tmp_path / "a.h5", "--element", "point"))
    assert acq.element is None


def test_ubp_says_it_does_not_model_the_faces(tmp_path, caplog):
    write_acquisition(tmp_path / "a.h5", _acquisition(_disc()))
    argv = ["ubp", str(tmp_path / "a.h5"), "-o", str(tmp_path / "u.h5"), "--spacing", "5e-4"]
    with caplog.at_level(logging.INFO, logger="slingbag"):
        assert main(argv + ["--region=-1e-3,1e-3,-1e-3,1e-3,2e-3,4e-3"]) == 0
    said = [r.getMessage() for r in caplog.records if "not modelled" in r.getMessage()]
    assert len(said) == 1 and "disc 2 mm" in said[0], said


def test_series_frames_carry_the_flag(tmp_path):
    from slingbag.series.frames import FrameRef, _fingerprint_item

    write_acquisition(tmp_path / "a.h5", _acquisition())
    ref = FrameRef(str(tmp_path / "a.h5"), 0, 0, "disc:3e-3")
    ref = pickle.loads(pickle.dumps(ref))  # as Dask ships it to a worker
    _same_element(ref.load().element, Element("disc", np.full(N, 3e-3)))
    # parts made with other faces are not reused on a resume
    plain = FrameRef(str(tmp_path / "a.h5"))
    assert _fingerprint_item(ref) != _fingerprint_item(plain)
    args = build_parser().parse_args(
        ["reconstruct-series", str(tmp_path / "a.h5"), "-o", "s.h5", "--element", "disc:3e-3"]
    )
    assert args.element == "disc:3e-3"


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.splitlines()


SERIES = ["reconstruct-series", "{data}", "-o", "{out}", "--quiet"]
COMMANDS = {
    "reconstruct": ["reconstruct", "{data}", "-o", "{out}", "--quiet"],
    "reconstruct-series": SERIES,
    "ubp": ["ubp", "{data}", "-o", "{out}"],
    "mb": ["mb", "{data}", "-o", "{out}", "--quiet"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("spec", "normals", "words"),
    [
        ("disc:abc", True, ["--element", "disc:DIAMETER"]),
        ("hexagon:1e-3", True, ["--element", "rect:WIDTHxHEIGHT"]),
        ("disc:3", True, ["--element", "0.1 m"]),
        ("disc:3e-3", False, ["{data}", "sensors/normals", "disc"]),
    ],
)
def test_a_bad_flag_is_one_line(tmp_path, capsys, command, spec, normals, words):
    data, out = tmp_path / "a.h5", tmp_path / "out.h5"
    write_acquisition(data, _acquisition(normals=normals))
    argv = [a.format(data=data, out=out) for a in COMMANDS[command]] + ["--element", spec]
    code, err = _run(argv, capsys)
    assert code == 2 and len(err) == 1, err
    for word in words:
        assert word.format(data=data) in err[0], err[0]
    assert not out.exists()


def test_simulate_writes_the_element(tmp_path, capsys):
    ply = tmp_path / "ball.ply"
    ply.write_text(
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
        "property float z\nproperty float p0\nproperty float sigma\nend_header\n"
        "0 0 0.004 1 2e-4\n"
    )
    out = tmp_path / "sim.h5"
    argv = ["simulate", str(ply), "--array", "planar:3x3:2e-3", "-o", str(out)]
    argv += ["--samples", "256", "--element", "rect:2e-3x1e-3"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "rect 2 x 1 mm faces" in capsys.readouterr().out
    _same_element(read_acquisition(out).element, Element("rect", np.tile([2e-3, 1e-3], (N, 1))))


def test_simulate_refuses_faces_without_normals(tmp_path, capsys):
    positions = np.random.default_rng(1).uniform(-0.01, 0.01, (12, 3))
    np.savetxt(tmp_path / "cloud.txt", positions)
    out = tmp_path / "sim.h5"
    argv = ["simulate", "vessels", "--array", str(tmp_path / "cloud.txt"), "-o", str(out)]
    code, err = _run(argv + ["--element", "disc:3e-3"], capsys)
    assert code == 2 and len(err) == 1, err
    assert "cloud.txt" in err[0] and "normals" in err[0], err[0]
    assert not out.exists()
