"""Sensor arrays: presets, grid specs, position files and normal inference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slingbag.core.acquisition import SensorArray
from slingbag.core.arrays import infer_normals, list_presets, load_array
from slingbag.errors import InputError


@pytest.mark.parametrize(
    ("name", "side", "pitch"),
    [
        ("planar-49", 7, 20e-3),
        ("planar-196", 14, 10e-3),
        ("planar-576", 24, 6e-3),
        ("planar-4900", 70, 2e-3),
    ],
)
def test_planar_presets(name, side, pitch):
    array = load_array(name)
    assert len(array) == side * side
    assert array.name == name
    np.testing.assert_allclose(array.positions.mean(axis=0), 0, atol=1e-15)
    np.testing.assert_array_equal(array.positions[:, 2], 0)
    width = array.positions[:, 0].max() - array.positions[:, 0].min()
    assert width == pytest.approx((side - 1) * pitch)
    assert 0.11 <= width <= 0.14
    np.testing.assert_array_equal(array.normals, np.tile([0, 0, 1.0], (side * side, 1)))
    np.testing.assert_allclose(array.areas, pitch**2)
    # Neighbours are one pitch apart.
    steps = np.diff(np.unique(array.positions[:, 0]))
    np.testing.assert_allclose(steps, pitch)


def test_planar_spec_rectangular():
    array = load_array("planar:3x5:1.5e-3")
    assert len(array) == 15
    xs, ys = np.unique(array.positions[:, 0]), np.unique(array.positions[:, 1])
    np.testing.assert_allclose(xs, [-1.5e-3, 0, 1.5e-3])
    assert len(ys) == 5 and ys.max() == pytest.approx(3e-3)
    np.testing.assert_allclose(array.areas, 1.5e-3**2)


def test_hemisphere_preset():
    array = load_array("hemisphere-1024")
    assert len(array) == 1024
    radii = np.linalg.norm(array.positions, axis=1)
    np.testing.assert_allclose(radii, 60e-3)
    assert (array.positions[:, 2] <= 0).all()
    np.testing.assert_allclose(array.normals, -array.positions / 60e-3)
    assert array.areas.sum() == pytest.approx(2 * np.pi * 60e-3**2)
    # Quasi-uniform: the nearest neighbour distance barely varies.
    d = np.linalg.norm(array.positions[:, None] - array.positions[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1)
    assert nearest.max() / nearest.min() < 2.0
    # Half the points lie below the 45-degree cone's ring of equal area (z = -r/2).
    assert abs((array.positions[:, 2] < -30e-3).sum() - 512) <= 1


def test_list_presets_all_load():
    names = list_presets()
    assert "planar-576" in names and "hemisphere-1024" in names
    for name in names:
        assert len(load_array(name)) > 0


def test_sphere_file_loads_with_inward_normals(shared_data):
    array = load_array(shared_data / "sphere_1013_sensors.txt")
    assert len(array) == 1013
    np.testing.assert_allclose(np.linalg.norm(array.positions, axis=1), 0.06, rtol=1e-6)
    np.testing.assert_allclose(array.normals, -array.positions / 0.06, atol=1e-6)
    assert array.areas is None


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".csv", "x,y,z\n0,0,0\n0.001,0,0\n0,0.001,0\n0.001,0.001,0\n"),
        (".txt", "# sensors\n0 0 0\n\n0.001\t0\t0\n0 0.001 0   \n0.001;0.001;0\n"),
        (".dat", "0, 0, 0\r\n0.001, 0, 0\r\n0, 0.001, 0\r\n0.001, 0.001, 0\r\n"),
    ],
)
def test_text_formats(tmp_path, suffix, text):
    path = tmp_path / f"s{suffix}"
    path.write_text(text)
    array = load_array(str(path))
    np.testing.assert_allclose(array.positions[3], [0.001, 0.001, 0])
    np.testing.assert_allclose(array.normals, np.tile([0, 0, 1.0], (4, 1)))


def test_npy_file(tmp_path):
    positions = load_array("planar:4x4:1e-3").positions + [0, 0, -0.02]
    path = tmp_path / "p.npy"
    np.save(path, positions)
    array = load_array(path)
    np.testing.assert_array_equal(array.positions, positions)
    # The plane sits below the origin, so its normals face up towards it.
    np.testing.assert_allclose(array.normals[0], [0, 0, 1])


def test_normals_face_the_origin_side_of_a_tilted_plane():
    array = load_array("planar:5x5:1e-3")
    tilt = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)  # plane z=0 -> plane y=0
    positions = array.positions @ tilt.T + [0, 0.03, 0]
    normals = infer_normals(positions)
    np.testing.assert_allclose(normals[0], [0, -1, 0], atol=1e-12)


def test_no_normals_for_scattered_points(rng):
    assert infer_normals(rng.uniform(-0.01, 0.01, (50, 3))) is None
    assert infer_normals(np.c_[np.linspace(0, 1e-2, 5), np.zeros(5), np.zeros(5)]) is None


def test_passthrough_objects():
    array = SensorArray(np.zeros((2, 3)))
    assert load_array(array) is array
    assert len(load_array(np.array([[0, 0, 0], [1e-3, 0, 0]], float))) == 2


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    radius=st.floats(0.01, 0.2),
    centre=st.tuples(*[st.floats(-0.05, 0.05)] * 3),
    n=st.integers(8, 60),
)
def test_property_sphere_normals_point_to_centre(radius, centre, n):
    rng = np.random.default_rng(n)
    unit = rng.normal(size=(n, 3))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    unit[:, 2] = -np.abs(unit[:, 2])  # a cap is enough for the fit
    positions = np.asarray(centre) + radius * unit
    normals = infer_normals(positions)
    np.testing.assert_allclose(normals, -unit, atol=1e-6)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=300), suffix=st.sampled_from([".txt", ".csv", ".npy"]))
def test_property_garbage_files_are_input_errors(tmp_path, blob, suffix):
    path = tmp_path / f"g{suffix}"
    path.write_bytes(blob)
    try:
        array = load_array(str(path))
    except InputError as err:
        assert str(path) in str(err)
        assert "\n" not in str(err)
    else:  # garbage that happens to be numbers must still be a valid array
        assert array.positions.shape[1] == 3
        assert np.isfinite(array.positions).all()


def test_fit_plane_finds_a_tilted_plane_and_its_thickness():
    from slingbag.core.geometry import fit_plane

    rng = np.random.default_rng(0)
    normal = np.array([1.0, 2.0, 2.0]) / 3.0
    u = np.cross(normal, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    a, b = rng.uniform(-1, 1, (2, 500))
    off = rng.choice([-1e-3, 1e-3], 500)  # every point 1 mm off the plane
    pts = np.array([0.1, 0.2, 0.3]) + a[:, None] * u + b[:, None] * v + off[:, None] * normal
    plane = fit_plane(pts)
    assert abs(plane.normal @ normal) == pytest.approx(1.0, abs=1e-6)
    assert plane.rms == pytest.approx(1e-3, rel=1e-2)
    assert plane.size == pytest.approx(np.sqrt(np.mean(a**2)), rel=0.1)
    # Two points fix no plane: +z by convention, no thickness.
    two = fit_plane([[0, 0, 0], [1, 0, 0]])
    assert two.normal.tolist() == [0.0, 0.0, 1.0] and two.rms == 0.0
