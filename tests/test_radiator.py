"""The windowed radiator kernels against the NumPy twin, finite differences and exact
solutions (the split ``gaussian`` algorithm is tested in test_gauss_split.py)."""

import numpy as np
import pytest
import radiator_twin as twin
from finite_differences import p0_differences, radiator_differences

from slingbag.core.cloud import GaussianCloud
from slingbag.fit.loss import loss_and_grad
from slingbag.model.radiator import (
    RadiatorModel,
    backward_signals,
    forward_signals,
    simulate,
)

FS, C = 40e6, 1500.0
# The twin's gaussian is the profile cut at 3 sigma: the windowed algorithm's.
W = RadiatorModel(algorithm="windowed")
MODEL = {"gaussian": W, "shells": RadiatorModel("shells")}


def random_scene(rng, n=60, s=7, sig=(0.1e-3, 0.6e-3)):
    xyz = rng.uniform([-4e-3, -4e-3, 8e-3], [4e-3, 4e-3, 12e-3], (n, 3))
    p0 = rng.uniform(0.5, 2.0, n)
    sigma = rng.uniform(*sig, n)
    sensors = rng.uniform([-15e-3, -15e-3, -1e-3], [15e-3, 15e-3, 1e-3], (s, 3))
    return xyz, p0, sigma, sensors


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("model", ["gaussian", "shells"])
@pytest.mark.parametrize("t0", [0.0, 2.5e-6])
def test_forward_matches_twin(rng, model, t0):
    xyz, p0, sigma, sensors = random_scene(rng)
    T = 768
    ref = twin.signals(xyz, p0, sigma, sensors, T, FS, C, t0, model)
    got = forward_signals(xyz, p0, sigma, sensors, T, FS, C, t0, MODEL[model])
    assert np.abs(ref).max() > 0
    assert rel_err(got, ref) < 1e-4


def test_forward_tiny_and_large_balls(rng):
    # Balls far below one sample's travel (no recurrence) and far above it.
    xyz, p0, _, sensors = random_scene(rng, n=40)
    sigma = np.concatenate([np.full(20, 2e-6), np.full(20, 1.5e-3)])
    T = 768
    ref = twin.signals(xyz, p0, sigma, sensors, T, FS, C, 0.0)
    got = forward_signals(xyz, p0, sigma, sensors, T, FS, C, 0.0, W)
    assert rel_err(got, ref) < 1e-4


def test_sensor_inside_ball_uses_incoming_wave(rng):
    # A sensor inside the ball's support sees the (R + ct) term too.
    xyz = np.array([[0.0, 0.0, 0.0]])
    sensors = np.array([[0.2e-3, 0.0, 0.0], [0.0, 0.5e-3, 0.1e-3]])
    sigma, p0 = np.array([0.4e-3]), np.array([1.0])
    ref = twin.signals(xyz, p0, sigma, sensors, 128, FS, C)
    got = forward_signals(xyz, p0, sigma, sensors, 128, FS, C, 0.0, W)
    assert rel_err(got, ref) < 1e-4


def test_gpu_layout_matches_cpu_layout(rng, monkeypatch):
    # The pair-parallel (atomic) layout GPUs use, run here on the CPU.
    import slingbag.model.radiator as fwd

    xyz, p0, sigma, sensors = random_scene(rng)
    rows = forward_signals(xyz, p0, sigma, sensors, 512, FS, C, 0.0, W)
    monkeypatch.setattr(fwd, "_per_row", lambda: False)
    pairs = forward_signals(xyz, p0, sigma, sensors, 512, FS, C, 0.0, W)
    assert rel_err(pairs, rows) < 1e-5


@pytest.mark.parametrize("model", ["gaussian", "shells"])
def test_backward_matches_finite_differences(rng, model):
    xyz, p0, sigma, sensors = random_scene(rng, n=6, s=4)
    T, t0 = 640, 1e-6
    G = rng.standard_normal((len(sensors), T))

    def obj(xyz=xyz, p0=p0, sigma=sigma, c=C, t0=t0):
        return float((G * twin.signals(xyz, p0, sigma, sensors, T, FS, c, t0, model)).sum())

    got = backward_signals(xyz, p0, sigma, sensors, G, FS, C, t0, MODEL[model], scalars=True)
    fd = radiator_differences(obj, xyz, p0, sigma, C, t0)
    for name, ref in fd.items():
        val = np.asarray(got[name], float)
        scale = np.abs(ref).max()
        assert scale > 0, name
        assert np.abs(val - ref).max() / scale < 2e-3, (name, val, ref)


def test_loss_and_grad_is_gradient_of_loss(rng):
    xyz, p0, sigma, sensors = random_scene(rng, n=5, s=3)
    truth = GaussianCloud(xyz, p0, sigma)
    # The model loss_and_grad fits ("gaussian" is the windowed one there; simulate would
    # take the exact, uncut form of the name).
    acq = simulate(truth, sensors, W, n_samples=512)
    guess = GaussianCloud(xyz + 2e-5, p0 * 1.3, sigma * 0.9)
    loss, g = loss_and_grad(guess, acq)
    assert loss > 0
    fd = p0_differences(lambda cloud: loss_and_grad(cloud, acq)[0], guess)
    for i in range(len(p0)):
        assert g["p0"][i] == pytest.approx(fd[i], rel=2e-2, abs=1e-3 * np.abs(g["p0"]).max())
    # At the truth the misfit and its gradient vanish (up to float32 rounding).
    loss0, g0 = loss_and_grad(truth, acq)
    assert loss0 < 1e-10 * loss
    assert np.abs(g0["p0"]).max() < 1e-3 * np.abs(g["p0"]).max()


def test_gaussian_balls_make_a_uniform_sphere():
    """Many tiny balls filling a sphere radiate the exact uniform-sphere N-wave.

    The balls fill the sphere with partial-volume weights at its surface, and their own
    width blurs its edge by sigma along every ray, so the exact N-wave is compared after the
    same blur (a Gaussian of sigma / c in time)."""
    from scipy.ndimage import gaussian_filter1d

    b, P, h = 1e-3, 1.0, 0.05e-3
    ax = np.arange(-b - 2 * h, b + 2 * h, h)
    X, Y, Z = np.meshgrid(ax, ax, ax, indexing="ij")
    fill = np.clip((b - np.sqrt(X**2 + Y**2 + Z**2)) / h + 0.5, 0.0, 1.0)
    keep = fill > 0
    xyz = np.stack([X[keep], Y[keep], Z[keep]], axis=1)
    # sigma = h: narrower balls leave a lattice ripple in the field that the N-wave, a time
    # derivative, amplifies by about b / h.
    sigma = h
    # Each ball carries its voxel's share: p0 * integral(profile) = P * fill * h^3, where the
    # profile (Gaussian cut at 3 sigma and lowered to zero there) integrates to
    # sigma^3 * [(2 pi)^1.5 * P(chi_3 < 3) - exp(-4.5) * 36 pi].
    chi3 = 0.9707091134651118
    mass = (2 * np.pi) ** 1.5 * chi3 - np.exp(-4.5) * 36 * np.pi
    p0 = P * fill[keep] * h**3 / (mass * sigma**3)
    fs = 160e6
    sensors = np.array([[0.0, 0.0, 10e-3], [6e-3, 0.0, 8e-3], [0.0, -12e-3, 1e-3]])
    T = 1600
    exact = twin.uniform_sphere(b, P, sensors, T, fs, C)
    exact = gaussian_filter1d(exact, sigma / C * fs, axis=1)
    got = forward_signals(xyz, p0, np.full(len(xyz), sigma), sensors, T, fs, C, 0.0, W)
    corr = np.corrcoef(got.ravel(), exact.ravel())[0, 1]
    peak = [np.abs(got[s]).max() / np.abs(exact[s]).max() for s in range(3)]
    print(f"tiny balls vs uniform sphere: correlation {corr:.4f}, peak ratios {np.round(peak, 3)}")
    assert corr > 0.99
    assert np.allclose(peak, 1.0, atol=0.05)


def test_shells_and_gaussian_agree(rng):
    xyz, p0, sigma, sensors = random_scene(rng, n=200, s=8)
    g = forward_signals(xyz, p0, sigma, sensors, 1024, FS, C, 0.0, W)
    s = forward_signals(xyz, p0, sigma, sensors, 1024, FS, C, 0.0, "shells")
    corr = np.corrcoef(g.ravel(), s.ravel())[0, 1]
    print(f"shells vs gaussian correlation: {corr:.4f}")
    assert corr > 0.95
