"""Universal back-projection: kernel against a NumPy twin, point sources, geometry, CLI."""

import numpy as np
import pytest

from slingbag.baselines.ubp import default_grid, infer_geometry, ubp
from slingbag.core.acquisition import Acquisition
from slingbag.core.volume import Volume
from slingbag.errors import InputError

FS, C = 40e6, 1500.0


def ubp_reference(
    signals, positions, weighted_normals, fs, c, t0, origin, spacing, shape, omega0=None
):
    """Plain float64 NumPy twin of the UBP kernel (same discrete form, written separately)."""
    p = np.asarray(signals, dtype=np.float64)
    n_s, n_t = p.shape
    dp = np.empty_like(p)
    dp[:, 1:-1] = (p[:, 2:] - p[:, :-2]) / 2.0
    dp[:, 0] = (-3.0 * p[:, 0] + 4.0 * p[:, 1] - p[:, 2]) / 2.0
    dp[:, -1] = (3.0 * p[:, -1] - 4.0 * p[:, -2] + p[:, -3]) / 2.0
    dp *= fs
    t = t0 + np.arange(n_t) / fs
    b = 2.0 * p - 2.0 * t * dp
    axes = [origin[d] + np.arange(shape[d]) * spacing[d] for d in range(3)]
    r = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    acc = np.zeros(len(r))
    wsum = np.zeros(len(r))
    samples = np.arange(n_t)
    for s in range(n_s):
        v = r - positions[s]
        d = np.linalg.norm(v, axis=1)
        w = np.maximum(v @ weighted_normals[s], 0.0) / d**3
        u = (d / c - t0) * fs
        val = np.interp(u, samples, b[s])
        val[(u < 0) | (u > n_t - 1)] = 0.0
        acc += w * val
        wsum += w
    norm = wsum if omega0 is None else np.full_like(wsum, omega0)
    out = np.where(norm > 0, acc / np.where(norm > 0, norm, 1.0), 0.0)
    return out.reshape(shape)


def ball_signals(positions, centre, p0, a, n_samples, t0=0.0, fs=FS, c=C):
    """Exact signal of one Gaussian ball at point sensors (SPEC section 2)."""
    t = t0 + np.arange(n_samples) / fs
    r = np.linalg.norm(positions - centre, axis=1)[:, None]
    d = r - c * t
    e = r + c * t
    q = p0 / (2 * r) * (d * np.exp(-(d**2) / (2 * a * a)) + e * np.exp(-(e**2) / (2 * a * a)))
    return q.astype(np.float32)


def planar(n=16, pitch=1.5e-3):
    g = (np.arange(n) - (n - 1) / 2) * pitch
    xx, yy = np.meshgrid(g, g, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel(), np.zeros(n * n)])


def fibonacci_sphere(n, radius, cap=1.0):
    """``n`` points spread evenly over the part ``z >= 1 - 2 cap`` of a sphere."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * cap * i / n
    rho = np.sqrt(1.0 - z**2)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return radius * np.column_stack([rho * np.cos(phi), rho * np.sin(phi), z])


def argmax_pos(vol: Volume):
    idx = np.unravel_index(np.argmax(vol.data), vol.shape)
    return vol.origin + np.array(idx) * vol.spacing


@pytest.mark.parametrize("normalize", ["weights", "omega0"])
def test_kernel_matches_numpy_twin(rng, normalize):
    n_s, n_t = 23, 180
    t0 = 17 / FS + 3e-9  # not a whole sample: t0 enters b and the time index
    pos = rng.uniform(-4e-3, 4e-3, (n_s, 3))
    pos[:, 2] = rng.uniform(-1e-3, 0.0, n_s)
    nrm = rng.normal(size=(n_s, 3)) * 0.3 + [0, 0, 1]
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    areas = rng.uniform(0.5, 2.0, n_s) * 1e-6
    signals = rng.normal(size=(n_s, n_t)).astype(np.float32)
    # Grid reaching beyond the time window, so the out-of-window rule is exercised too.
    origin, spacing, shape = np.array([-3e-3, -2e-3, 1e-3]), np.array([4e-4, 5e-4, 7e-4]), (9, 7, 8)
    acq = Acquisition(signals, pos, FS, C, t0, normals=nrm, areas=areas)
    got = ubp(acq, origin, spacing, shape, normalize=normalize, closed=False).data
    ref = ubp_reference(
        signals,
        pos,
        nrm * areas[:, None],
        FS,
        C,
        t0,
        origin,
        spacing,
        shape,
        omega0=2 * np.pi if normalize == "omega0" else None,
    )
    assert got.dtype == np.float32 and got.shape == shape
    d = np.linalg.norm(
        np.stack(
            np.meshgrid(
                *[origin[k] + np.arange(shape[k]) * spacing[k] for k in range(3)], indexing="ij"
            ),
            -1,
        )[..., None, :]
        - pos,
        axis=-1,
    )
    u = (d / C - t0) * FS
    assert (u > n_t - 1).any() and (u < n_t - 1).any()  # both regimes present
    assert np.abs(got - ref).max() < 1e-3 * np.abs(ref).max()


def test_point_source_planar():
    pos = planar(16)
    centre = np.array([0.7e-3, -1.1e-3, 8.05e-3])
    sig = ball_signals(pos, centre, 1.0, 0.12e-3, 800)
    acq = Acquisition(sig, pos, FS, C)  # no normals: inferred (plane facing the grid)
    spacing = 0.2e-3
    origin = centre - 10 * spacing + np.array([0.03e-3, -0.07e-3, 0.05e-3])
    vol = ubp(acq, origin, spacing, (21, 21, 21))
    assert np.all(np.abs(argmax_pos(vol) - centre) <= spacing * 1.0 + 1e-12)
    # With the normals given as +z, a grid below the array is behind every sensor: nothing
    # is projected there.  Inferred normals would face that grid instead (a mirror image).
    up = np.tile([0.0, 0.0, 1.0], (len(pos), 1))
    below_origin = origin * [1, 1, -1] - [0, 0, 20 * spacing]
    below = ubp(acq, below_origin, spacing, (21, 21, 21), normals=up)
    assert np.all(below.data == 0)
    mirror = ubp(acq, below_origin, spacing, (21, 21, 21))
    assert np.all(np.abs(argmax_pos(mirror) - centre * [1, 1, -1]) <= spacing + 1e-12)


@pytest.mark.parametrize("cap", [1.0, 0.5])
def test_point_source_sphere(cap):
    pos = fibonacci_sphere(400, 20e-3, cap)
    centre = np.array([1.3e-3, -2.1e-3, 0.9e-3])
    a, p0 = 0.15e-3, 2.0
    sig = ball_signals(pos, centre, p0, a, 1400)
    acq = Acquisition(sig, pos, FS, C)
    geom = infer_geometry(pos)
    assert geom.kind == "spherical" and geom.closed == (cap == 1.0)
    spacing = 0.2e-3
    origin = centre - 8 * spacing + 0.04e-3
    vol = ubp(acq, origin, spacing, (17, 17, 17))
    peak = argmax_pos(vol)
    assert np.all(np.abs(peak - centre) <= spacing + 1e-12)
    if cap == 1.0:
        # Full view: UBP recovers the amplitude of the (voxel-sampled) Gaussian.
        expect = p0 * np.exp(-np.sum((peak - centre) ** 2) / (2 * a * a))
        assert vol.data.max() == pytest.approx(expect, rel=0.15)
        # With physical areas (4 pi R^2 / N) Omega_0 = 4 pi gives nearly the same image.
        alt = ubp(acq, origin, spacing, (17, 17, 17), normalize="omega0")
        assert alt.data.max() == pytest.approx(vol.data.max(), rel=0.05)


def test_infer_geometry_planar_faces_the_grid():
    pos = planar(6) + [0, 0, 2e-3]
    up = infer_geometry(pos, grid_centre=[0, 0, 10e-3])
    down = infer_geometry(pos, grid_centre=[0, 0, -10e-3])
    assert up.kind == "planar" and not up.closed and up.omega0 == pytest.approx(2 * np.pi)
    np.testing.assert_allclose(up.normals, np.tile([0, 0, 1.0], (36, 1)), atol=1e-9)
    np.testing.assert_allclose(down.normals, np.tile([0, 0, -1.0], (36, 1)), atol=1e-9)
    assert up.areas == pytest.approx(np.full(36, 1.5e-3**2))


def test_infer_geometry_sphere_and_given_normals():
    full = infer_geometry(fibonacci_sphere(300, 0.05) + [0.01, 0, 0])
    assert full.kind == "spherical" and full.closed
    np.testing.assert_allclose(full.centre, [0.01, 0, 0], atol=1e-9)
    assert full.radius == pytest.approx(0.05)
    hemi = infer_geometry(fibonacci_sphere(300, 0.05, cap=0.5))
    assert not hemi.closed and hemi.coverage == pytest.approx(0.5, abs=0.05)
    given = np.tile([1.0, 0, 0], (300, 1)) * 3.0
    kept = infer_geometry(fibonacci_sphere(300, 0.05), normals=given)
    np.testing.assert_allclose(kept.normals, given / 3.0)
    with pytest.raises(InputError):
        infer_geometry(fibonacci_sphere(10, 0.05), normals=np.zeros((10, 3)))


def test_default_grid_planar_and_truth():
    pos = planar(8)
    acq = Acquisition(np.zeros((64, 400), np.float32), pos, FS, C, t0=40 / FS)
    origin, spacing, shape, desc = default_grid(acq, 0.5e-3)
    top = origin + (np.array(shape) - 1) * spacing
    assert origin[0] == pytest.approx(pos[:, 0].min()) and top[0] >= pos[:, 0].max() - 0.5e-3
    assert origin[2] == pytest.approx(C * 40 / FS)  # from depth c t0 ...
    assert top[2] == pytest.approx(C * (40 + 399) / FS, abs=0.5e-3)  # ... to c t_max
    assert "planar" in desc
    _, auto_spacing, auto_shape, _ = default_grid(acq)
    assert np.prod(auto_shape) <= 1.1e6 and auto_spacing[0] >= C / FS
    truth = Volume(np.zeros((5, 6, 7)), [1e-3, 2e-3, 3e-3], 1e-4)
    o, s, sh, _ = default_grid(acq.replace(truth_volume=truth))
    assert sh == (5, 6, 7) and np.allclose(o, truth.origin) and np.allclose(s, 1e-4)


def test_cli_round_trip(tmp_path):
    import slingbag.io.native as h5io
    from slingbag.cli import main

    pos = planar(12)
    centre = np.array([0.5e-3, 0.3e-3, 6e-3])
    truth = Volume(np.zeros((15, 15, 15), np.float32), centre - 7 * 0.25e-3, 0.25e-3)
    acq = Acquisition(
        ball_signals(pos, centre, 1.0, 0.15e-3, 600),
        pos,
        FS,
        C,
        normals=np.tile([0, 0, 1.0], (len(pos), 1)),
        truth_volume=truth,
    )
    data, out = tmp_path / "acq.h5", tmp_path / "ubp.h5"
    h5io.write_acquisition(data, acq)
    assert main(["ubp", str(data), "-o", str(out)]) == 0
    res = h5io.read_result(out)
    assert res.attrs["method"] == "ubp" and res.volume.shape == (15, 15, 15)
    np.testing.assert_allclose(res.volume.origin, truth.origin)
    assert np.all(np.abs(argmax_pos(res.volume) - centre) <= 0.25e-3 + 1e-12)
    np.testing.assert_allclose(res.sensor_positions, pos)
    # --region / --spacing override the truth grid.
    region = "-1e-3,2e-3,-1e-3,1e-3,5e-3,7e-3"
    out2 = tmp_path / "ubp2.h5"
    assert (
        main(["ubp", str(data), "-o", str(out2), f"--region={region}", "--spacing", "0.5e-3"]) == 0
    )
    assert h5io.read_result(out2).volume.shape == (7, 5, 5)
    # Bad input: one line, exit code 2, no file.
    out3 = tmp_path / "bad.h5"
    assert main(["ubp", str(data), "-o", str(out3), "--region=1,2,3"]) == 2
    assert not out3.exists()
