"""The split (Gaussian splitting + per-class FFT) radiator against the float64 twin of the
exact closed form, its windowed twin, and central finite differences."""

import numpy as np
import pytest
import radiator_twin as twin
from finite_differences import radiator_differences

import slingbag.model.radiator as fwd
from slingbag.model import gauss_split
from slingbag.model.radiator import RadiatorModel, backward_signals, forward_signals

FS, C = 40e6, 1500.0
SPLIT = RadiatorModel(algorithm="split")
EXACT_CUT = 20.0  # the twin's profile cut so far out that it is the uncut Gaussian
STEP = C / FS


def scene(rng, n=60, s=7, sig=(0.1e-3, 0.6e-3), extra_sigma=()):
    """Random balls above random sensors, float32 (the kernels' input precision)."""
    sigma = np.concatenate([rng.uniform(*sig, n - len(extra_sigma)), extra_sigma])
    xyz = rng.uniform([-4e-3, -4e-3, 8e-3], [4e-3, 4e-3, 12e-3], (n, 3))
    p0 = rng.uniform(0.5, 2.0, n)
    sensors = rng.uniform([-15e-3, -15e-3, -1e-3], [15e-3, 15e-3, 1e-3], (s, 3))
    f = np.float32
    return xyz.astype(f), p0.astype(f), sigma.astype(f), sensors.astype(f)


def exact(xyz, p0, sigma, sensors, T, t0=0.0, c=C):
    return twin.signals(
        np.float64(xyz), np.float64(p0), np.float64(sigma), np.float64(sensors), T, FS, c,
        t0, cut=EXACT_CUT,
    )  # fmt: skip


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


# Widths in samples: tiny (< 1, direct), the direct/split border, huge (> 50).
ODD_SIGMAS = np.array([0.3, 0.9, 1.99, 2.01, 55.0, 70.0]) * STEP


@pytest.mark.parametrize("t0", [0.0, 2.5e-6])
def test_forward_matches_exact_closed_form(rng, t0):
    xyz, p0, sigma, sensors = scene(rng, extra_sigma=ODD_SIGMAS)
    T = 768
    ref = exact(xyz, p0, sigma, sensors, T, t0)
    got = forward_signals(xyz, p0, sigma, sensors, T, FS, C, t0, SPLIT)
    assert got.dtype == np.float32 and got.shape == ref.shape
    err = rel_err(got, ref)
    print(f"split vs exact closed form, t0={t0}: {err:.1e}")
    assert err < 1e-5


def test_forward_matches_windowed_twin_with_wide_cut(rng):
    xyz, p0, sigma, sensors = scene(rng, n=200)
    wide = forward_signals(xyz, p0, sigma, sensors, 1024, FS, C, 0.0, RadiatorModel(cut=7.0))
    got = forward_signals(xyz, p0, sigma, sensors, 1024, FS, C, 0.0, SPLIT)
    assert rel_err(got, wide) < 1e-4  # the windowed twin's own float32 arrival error


def test_sensor_inside_a_ball(rng):
    # The incoming wave (R + ct) term, for balls of every path around the sensors.
    sensors = np.array([[0.0, 0.0, 0.0], [0.3e-3, 0.1e-3, 0.0]], np.float32)
    xyz = np.array([[0.1e-3, 0, 0], [0, 0.2e-3, 0], [0, 0, 0.5e-3], [1e-3, 0, 0]], np.float32)
    sigma = np.array([0.05e-3, 0.3e-3, 1e-3, 2.2e-3], np.float32)
    p0 = np.array([1.0, 2.0, 0.5, 1.0], np.float32)
    for t0 in (0.0, 1e-6):
        ref = exact(xyz, p0, sigma, sensors, 512, t0)
        got = forward_signals(xyz, p0, sigma, sensors, 512, FS, C, t0, SPLIT)
        # A sensor inside a big ball sees two large terms nearly cancel: float32 rounding.
        assert rel_err(got, ref) < 2e-5


def test_pairs_layout_matches_rows_layout(rng, monkeypatch):
    xyz, p0, sigma, sensors = scene(rng, extra_sigma=ODD_SIGMAS)
    rows = forward_signals(xyz, p0, sigma, sensors, 640, FS, C, 1e-6, SPLIT)
    monkeypatch.setattr(fwd, "_per_row", lambda: False)
    pairs = forward_signals(xyz, p0, sigma, sensors, 640, FS, C, 1e-6, SPLIT)
    assert rel_err(pairs, rows) < 3e-6  # the order of float32 additions


def test_backward_is_the_adjoint(rng):
    """<G, J v> from the backward pass equals the forward's directional derivative in p0
    (linear in p0, so exact up to rounding)."""
    xyz, p0, sigma, sensors = scene(rng, extra_sigma=ODD_SIGMAS)
    T = 640
    G = rng.standard_normal((len(sensors), T)).astype(np.float32)
    v = rng.standard_normal(len(p0)).astype(np.float32)
    g = backward_signals(xyz, p0, sigma, sensors, G, FS, C, 0.0, SPLIT)
    jv = forward_signals(xyz, v, sigma, sensors, T, FS, C, 0.0, SPLIT)
    lhs = float((np.float64(G) * jv).sum())
    rhs = float(np.float64(g["p0"]) @ v)
    scale = float((np.abs(G) * np.abs(jv)).sum())  # the sum's size before cancellation
    print(f"adjoint: {lhs:.6e} vs {rhs:.6e}, scale {scale:.3e}")
    assert abs(lhs - rhs) < 1e-6 * scale


@pytest.mark.parametrize("t0", [0.0, 1.5e-6])
def test_backward_matches_finite_differences(rng, t0):
    # Tiny, ordinary and huge balls, one sensor inside a ball.
    xyz, p0, sigma, sensors = scene(rng, n=6, s=4, extra_sigma=np.array([0.6, 3.0, 60.0]) * STEP)
    sensors[0] = xyz[4] + np.float32(0.2e-3)
    T = 640
    G = rng.standard_normal((len(sensors), T))

    def obj(xyz=xyz, p0=p0, sigma=sigma, c=C, t0=t0):
        return float((G * exact(xyz, p0, sigma, sensors, T, t0, c)).sum())

    got = backward_signals(xyz, p0, sigma, sensors, G, FS, C, t0, SPLIT, scalars=True)
    fd = radiator_differences(obj, xyz, p0, sigma, C, t0)
    for name, ref in fd.items():
        val = np.asarray(got[name], float)
        scale = np.abs(ref).max()
        assert scale > 0, name
        assert np.abs(val - ref).max() / scale < 2e-3, (name, val, ref)


def test_plan_classes_cover_the_cloud():
    s = np.concatenate([np.linspace(0.1, 1.9, 50), np.linspace(2.0, 16.0, 5000), [2000.0]])
    p = gauss_split.plan(s, 4096, 196)
    assert sorted(p.order) == list(range(len(s)))
    assert p.n_direct == 51  # below S_DIRECT, and the one wider than a quarter record
    assert p.bounds[0] == p.n_direct and p.bounds[-1] == len(s)
    for k, g in enumerate(p.widths):
        sk = s[p.order[p.bounds[k] : p.bounds[k + 1]]]
        r = np.sqrt(sk**2 - g**2)
        assert r.min() >= gauss_split.R_LO - 1e-9
        assert (r * g / sk).min() > 0.9  # the grid sum equals the integral to < 2e-7
    assert p.n_fft >= 4096 + 2 * p.margin


def test_bench_reference_is_the_closed_form(rng):
    from slingbag.benchmark.speed import exact_signals

    xyz, p0, sigma, sensors = scene(rng, extra_sigma=ODD_SIGMAS)
    ref = exact(xyz, p0, sigma, sensors[:3], 768, 1e-6)
    got = exact_signals(xyz, p0, sigma, sensors[:3], 768, FS, C, 1e-6, chunk=17)
    assert rel_err(got, ref) < 1e-12
