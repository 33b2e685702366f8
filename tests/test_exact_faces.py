"""The benchmark simulator's exact face average (slingbag.benchmark.exact_faces) against
a dense grid of point sensors over the face, through the point simulator it shares no
code with, and against itself at a high quadrature order."""

import numpy as np
import pytest

from slingbag.benchmark import conditions, exact
from slingbag.benchmark.exact import simulate_spheres, simulate_voxels
from slingbag.core.element import Element
from slingbag.errors import InputError

C, FS = 1500.0, 40e6


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


# name: shape, size, normal, width axis (None: the default), source relative to the face.
SCENES = {
    "square, normal incidence": ("rect", [2e-3, 2e-3], [0, 0, 1], None, [0.2, -0.1, 10]),
    "square, 60 deg": ("rect", [2e-3, 2e-3], [0, 0, 1], None, [8.27, 2.46, 5]),
    "disc, normal incidence": ("disc", 3e-3, [0, 0, 1], None, [0.2, -0.1, 10]),
    "disc, 60 deg": ("disc", 3e-3, [0, 0, 1], None, [8.27, 2.46, 5]),
    "tilted 2 x 1 rect, turned axis": (
        "rect",
        [2e-3, 1e-3],
        [0.3, -0.2, 1],
        [np.cos(0.5), np.sin(0.5), -0.05],
        [6, -4, 7],
    ),
    "disc, near field": ("disc", 3e-3, [0, 0, 1], None, [1.0, 0.5, 2]),
    "square, near field": ("rect", [2e-3, 2e-3], [0, 0, 1], None, [1.5, 0.3, 1.5]),
}


def _scene(name):
    """The element, its normal, and a few voxels of varied pressure at the source."""
    shape, size, normal, axis, source = SCENES[name]
    normal = _unit(normal)
    if axis is not None:
        axis = _unit(np.asarray(axis) - np.dot(axis, normal) * normal)[None]
    element = Element(shape, np.array([size], np.float64), axis)
    data = np.zeros((3, 3, 2))
    data[1, 1, 0], data[0, 1, 1], data[2, 2, 1], data[1, 0, 0] = 1.0, 0.7, 1.2, 0.5
    spacing = np.full(3, 0.05e-3)
    origin = np.asarray(source) * 1e-3 - spacing
    r = np.linalg.norm(origin)
    grid = dict(fs=FS, n_samples=400, sound_speed=C, t0=(r - 3.5e-3) / C)
    return element, normal, (data, origin, spacing), grid


def _face_grid(element, normal, n):
    """Points of an n x n midpoint grid over the face and their weights (for a disc, the
    share of each cell inside it, from 8 x 8 sub-points)."""
    e1 = element.width_axes(normal[None])[0]
    e2 = np.cross(normal, e1)
    hw, hh = element.half_extents()[0]
    g = (np.arange(n) + 0.5) / n * 2 - 1
    x, y = np.meshgrid(g * hw, g * hh, indexing="ij")
    w = np.ones(x.shape)
    if element.shape == "disc":
        sub = ((np.arange(8) + 0.5) / 8 - 0.5) * 2 * hw / n
        sx = x[..., None, None] + sub[:, None]
        sy = y[..., None, None] + sub[None, :]
        w = (sx**2 + sy**2 <= hw**2).mean(axis=(2, 3))
    keep = w.ravel() > 0
    points = x.ravel()[keep, None] * e1 + y.ravel()[keep, None] * e2
    return points, w.ravel()[keep]


def _lowpass(sig):
    return conditions.lowpass(np.atleast_2d(sig), FS, 12e6)[0]


@pytest.mark.parametrize("name", list(SCENES))
def test_face_average_matches_a_dense_grid_of_point_sensors(name):
    """321 x 321 point sensors over the face (0.006-0.009 mm apart) through the point
    simulator, averaged: within 2e-3 of the peak after the suite's 12 MHz low-pass
    (measured 5e-5 to 7.5e-4; 641 x 641 brings all to <= 1.6e-4)."""
    element, normal, (data, origin, spacing), grid = _scene(name)
    got = simulate_voxels(
        data, origin, spacing, np.zeros((1, 3)), element=element, normals=normal[None], **grid
    )[0]
    points, w = _face_grid(element, normal, 321)
    want = w @ simulate_voxels(data, origin, spacing, points, **grid) / w.sum()
    got, want = _lowpass(got), _lowpass(want)
    assert np.abs(want).max() > 0
    assert np.abs(got - want).max() < 2e-3 * np.abs(want).max(), name


@pytest.mark.parametrize("name", list(SCENES))
def test_face_quadrature_has_converged(name, monkeypatch):
    """The default quadrature against 16 points per piece, before any filter."""
    element, normal, (data, origin, spacing), grid = _scene(name)
    kw = dict(element=element, normals=normal[None], **grid)
    got = simulate_voxels(data, origin, spacing, np.zeros((1, 3)), **kw)[0]
    monkeypatch.setattr(exact, "FACE_QUADRATURE", (16, 16))
    want = simulate_voxels(data, origin, spacing, np.zeros((1, 3)), **kw)[0]
    assert np.abs(got - want).max() < 2e-3 * np.abs(want).max(), name


def test_a_tiny_face_is_a_point_and_each_sensor_has_its_own_face():
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 1e-3, (20, 3)) + [0, 0, 12e-3]
    p0 = rng.uniform(0.5, 1.5, 20)
    sensors = np.array([[0, 0, 0], [3e-3, -2e-3, 0.5e-3], [-4e-3, 1e-3, 0]])
    normals = np.array([[0, 0, 1], _unit([0.2, 0.1, 1]), _unit([-0.3, 0, 1])])
    kw = dict(fs=FS, n_samples=800, sound_speed=C)
    points = simulate_spheres(centres, p0, 0.05e-3, sensors, **kw)
    tiny = Element("disc", np.full(3, 1e-7))
    faced = simulate_spheres(centres, p0, 0.05e-3, sensors, element=tiny, normals=normals, **kw)
    assert np.abs(faced - points).max() < 1e-4 * np.abs(points).max()
    # Three sizes and shapes of face at once: each row as the sensor alone.
    rects = Element("rect", np.array([[2e-3, 1e-3], [1e-3, 1e-3], [3e-3, 0.5e-3]]))
    both = simulate_spheres(centres, p0, 0.05e-3, sensors, element=rects, normals=normals, **kw)
    for i in range(3):
        one = simulate_spheres(
            centres, p0, 0.05e-3, sensors[i : i + 1], element=rects.take([i]),
            normals=normals[i : i + 1], **kw,
        )  # fmt: skip
        np.testing.assert_allclose(both[i], one[0], rtol=0, atol=1e-12 * np.abs(both).max())
    # A bigger face smooths the wave: its peak drops.
    assert np.abs(both[2]).max() < np.abs(points[2]).max()


def test_faces_need_normals_and_points_ignore_them():
    centres, p0 = np.array([[0, 0, 10e-3]]), np.array([1.0])
    kw = dict(fs=FS, n_samples=600, sound_speed=C)
    with pytest.raises(InputError, match="normals"):
        simulate_spheres(centres, p0, 1e-4, np.zeros((1, 3)), element=Element("disc", [3e-3]), **kw)
    with pytest.raises(InputError, match="layer"):
        simulate_spheres(
            centres, p0, 1e-4, np.zeros((1, 3)), element=Element("disc", [3e-3]),
            normals=[[0, 0, 1]], layer=(5e-3, 1560.0), **kw,
        )  # fmt: skip
    point = simulate_spheres(centres, p0, 1e-4, np.zeros((1, 3)), element=Element("point"), **kw)
    np.testing.assert_array_equal(
        point, simulate_spheres(centres, p0, 1e-4, np.zeros((1, 3)), **kw)
    )
