"""The voxel shader against a float64 NumPy twin and the analytic integral of the profile."""

import numpy as np
import pytest
from scipy.stats import chi

from slingbag.core.cloud import GaussianCloud
from slingbag.errors import InputError
from slingbag.model.voxelize import grid_for_cloud, voxelize

SHELL_F = np.array([0.5, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0])
SHELL_W = np.arange(10, 0, -1) / 55.0


def _distances(cloud, origin, spacing, shape):
    """(N, nx, ny, nz) distance from every ball to every voxel, float64."""
    axes = [origin[d] + np.arange(shape[d]) * spacing[d] for d in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return np.linalg.norm(grid[None] - cloud.xyz[:, None, None, None, :], axis=-1)


def twin(cloud, origin, spacing, shape, model, cut):
    """Every ball evaluated at every voxel, no support shortcut."""
    r = _distances(cloud, origin, spacing, shape)
    a = cloud.sigma[:, None, None, None]
    p0 = cloud.p0[:, None, None, None]
    if model == "gaussian":
        f = np.where(r < cut * a, np.exp(-(r**2) / (2 * a**2)) - np.exp(-(cut**2) / 2), 0.0)
    else:
        f = sum(w * (r < fk * a) for fk, w in zip(SHELL_F, SHELL_W, strict=True))
    return (p0 * f).sum(axis=0)


def _near_shell_edge(cloud, origin, spacing, shape, rel=1e-5):
    """Voxels within ``rel`` sigma of a shell's surface, where float32 may round either way."""
    r = _distances(cloud, origin, spacing, shape) / cloud.sigma[:, None, None, None]
    return (np.abs(r[..., None] - SHELL_F).min(axis=-1) < rel).any(axis=0)


def _random_cloud(rng, origin, spacing, shape, n=40):
    """Balls of 0.4..2.5 voxels, centres up to 3 sigma beyond every face of the grid."""
    sigma = rng.uniform(0.4, 2.5, n) * spacing.min()
    lo = origin - 3 * sigma[:, None]
    hi = origin + (np.array(shape) - 1) * spacing + 3 * sigma[:, None]
    xyz = lo + rng.uniform(size=(n, 3)) * (hi - lo)
    return GaussianCloud(xyz, rng.uniform(0.5, 2.0, n), sigma)


@pytest.mark.parametrize("model,cut", [("gaussian", 3.0), ("gaussian", 2.0), ("shells", 3.0)])
def test_matches_numpy_twin(rng, model, cut):
    # Anisotropic voxels and an origin far from 0 (float32 centres must stay precise).
    origin = np.array([0.05, -0.031, 0.0172])
    spacing = np.array([1.0e-4, 1.3e-4, 0.8e-4])
    shape = (13, 10, 11)
    cloud = _random_cloud(rng, origin, spacing, shape)
    got = voxelize(cloud, origin, spacing, shape, model=model, cut=cut).data
    want = twin(cloud, origin, spacing, shape, model, cut)
    assert got.dtype == np.float32 and got.shape == shape
    if model == "shells":
        ambiguous = _near_shell_edge(cloud, origin, spacing, shape)
        assert ambiguous.sum() < 0.001 * ambiguous.size
        got, want = got[~ambiguous], want[~ambiguous]
    assert want.max() > 1.0  # the balls did land on the grid
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_ball_outside_grid_leaves_it_untouched():
    origin, spacing, shape = np.zeros(3), np.full(3, 1e-4), (8, 8, 8)
    # 3.2 sigma beyond the x = max face: just out of reach.
    far = GaussianCloud([[7e-4 + 3.2e-4, 4e-4, 4e-4], [-1.0, -1.0, 5.0]], [1.0, 1.0], [1e-4, 1e-4])
    assert not voxelize(far, origin, spacing, shape).data.any()
    assert not voxelize(far, origin, spacing, shape, model="shells").data.any()


def _gaussian_integral(p0, sigma, cut):
    """Integral over space of p0 (exp(-r^2/2s^2) - exp(-cut^2/2)) on r < cut s."""
    return (
        p0
        * sigma**3
        * ((2 * np.pi) ** 1.5 * chi.cdf(cut, 3) - np.exp(-(cut**2) / 2) * 4 / 3 * np.pi * cut**3)
    )


@pytest.mark.parametrize("cut", [3.0, 2.0])
def test_gaussian_integral(cut):
    cloud = GaussianCloud([[1.03e-3, -2.17e-3, 0.51e-3]], [2.5], [0.4e-3])
    spacing = 0.4e-3 / 5
    origin, spacing3, shape = grid_for_cloud(cloud, spacing, cut=cut)
    vol = voxelize(cloud, origin, spacing3, shape, cut=cut)
    total = vol.data.astype(np.float64).sum() * spacing**3
    assert total == pytest.approx(_gaussian_integral(2.5, 0.4e-3, cut), rel=0.01)
    # The grid holds the whole support: its faces are zero.
    for face in (vol.data[0], vol.data[-1], vol.data[:, 0], vol.data[:, :, -1]):
        assert not face.any()


def test_shells_integral():
    sigma, p0 = 0.3e-3, 1.7
    cloud = GaussianCloud([[0.11e-3, 0.23e-3, -0.05e-3]], [p0], [sigma])
    spacing = sigma / 8
    origin, spacing3, shape = grid_for_cloud(cloud, spacing, model="shells")
    vol = voxelize(cloud, origin, spacing3, shape, model="shells")
    total = vol.data.astype(np.float64).sum() * spacing**3
    want = p0 * (SHELL_W * 4 / 3 * np.pi * (SHELL_F * sigma) ** 3).sum()
    assert total == pytest.approx(want, rel=0.01)


def test_empty_cloud_and_bad_arguments():
    empty = GaussianCloud(np.zeros((0, 3)), [], [])
    vol = voxelize(empty, [0, 0, 0], 1e-4, (3, 4, 5))
    assert vol.shape == (3, 4, 5) and not vol.data.any()
    one = GaussianCloud([[0, 0, 0]], [1.0], [1e-4])
    with pytest.raises(InputError, match="model"):
        voxelize(one, [0, 0, 0], 1e-4, (3, 3, 3), model="cubes")
    with pytest.raises(InputError, match="spacing"):
        voxelize(one, [0, 0, 0], 0.0, (3, 3, 3))
    with pytest.raises(InputError, match="shape"):
        voxelize(one, [0, 0, 0], 1e-4, (3, 0, 3))
    with pytest.raises(InputError, match="cut"):
        voxelize(one, [0, 0, 0], 1e-4, (3, 3, 3), cut=-1)
    with pytest.raises(InputError, match="ball"):
        grid_for_cloud(empty, 1e-4)
