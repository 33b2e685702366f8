"""Point cloud to voxels: the SlingBAG "shader" (see docs/method.md)."""

from __future__ import annotations

import numpy as np

from ..core.cloud import MODELS, GaussianCloud
from ..core.volume import Volume, grid_for_region
from ..errors import InputError

# The shells model's outermost sphere has radius 3 sigma, whatever ``cut`` says.
SHELLS_SUPPORT = 3.0


def _check_grid(origin, spacing, shape):
    """Origin, spacing and shape as float64 (3,), float64 (3,) and a tuple of 3 ints."""
    origin = np.asarray(origin, dtype=np.float64).reshape(-1)
    if origin.size != 3 or not np.isfinite(origin).all():
        raise InputError("voxelize", "origin", "3 finite coordinates (metres)", got=origin)
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,)).copy()
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise InputError("voxelize", "spacing", "positive voxel sizes (metres)", got=spacing)
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise InputError("voxelize", "shape", "3 positive integers", got=shape) from None
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("voxelize", "shape", "3 positive integers", got=shape)
    return origin, spacing, shape


def support(model: str, cut: float) -> float:
    """Radius, in sigmas, beyond which a ball of ``model`` contributes nothing."""
    return SHELLS_SUPPORT if model == "shells" else float(cut)


def voxelize(
    cloud: GaussianCloud,
    origin,
    spacing,
    shape,
    model: str = "gaussian",
    cut: float = 3.0,
) -> Volume:
    """Sum the balls' initial-pressure profiles on a regular voxel grid.

    Each ball visits only the voxels inside its support, so the cost grows with the number
    of balls times the voxels per ball, not with the size of the grid.

    Parameters
    ----------
    cloud : GaussianCloud
        The balls (metres).
    origin : array_like, shape (3,)
        Position of voxel ``[0, 0, 0]`` (metres).
    spacing : float or array_like, shape (3,)
        Voxel size along x, y and z (metres).
    shape : tuple of 3 ints
        Number of voxels along x, y and z.
    model : {"gaussian", "shells"}
        ``gaussian``: ``p0 * (exp(-r^2 / 2 sigma^2) - exp(-cut^2 / 2))`` for
        ``r < cut * sigma``, the profile the radiator's ``gaussian`` model propagates.
        ``shells``: the paper's staircase of ten uniform spheres out to ``3 sigma``.
    cut : float
        Support of the ``gaussian`` profile in sigmas (ignored by ``shells``).

    Returns
    -------
    Volume
        The float32 voxel values; voxel ``[i, j, k]`` sits at
        ``origin + (i, j, k) * spacing``.

    Raises
    ------
    InputError
        On an unknown model, a non-positive cut, or a malformed grid.
    """
    if model not in MODELS:
        raise InputError("voxelize", "model", "one of " + ", ".join(MODELS), got=model)
    if not (np.isfinite(cut) and cut > 0):
        raise InputError("voxelize", "cut", "a positive number of sigmas", got=cut)
    origin, spacing, shape = _check_grid(origin, spacing, shape)
    out = np.zeros(shape, dtype=np.float32)
    if cloud.n > 0:
        _splat(cloud, origin, spacing, out, model, float(cut))
    return Volume(out, origin, spacing)


def _splat(cloud, origin, spacing, out, model, cut):
    from ..backend import ensure_init

    ensure_init()
    from ..kernels.splat import splat

    # Index-unit centres computed in float64 keep float32 precise far from the origin.
    centres = np.ascontiguousarray((cloud.xyz - origin) / spacing, dtype=np.float32)
    p0 = np.ascontiguousarray(cloud.p0, dtype=np.float32)
    sigma = np.ascontiguousarray(cloud.sigma, dtype=np.float32)
    h = [float(s) for s in spacing]
    reach = float(sigma.max(initial=0.0)) * support(model, cut) / h[0]  # voxels along x
    rows = int(min(out.shape[0], np.ceil(2 * reach) + 2))
    splat(centres, p0, sigma, out, h[0], h[1], h[2], cut, rows, MODELS[model])


def grid_for_cloud(
    cloud: GaussianCloud, spacing, *, model: str = "gaussian", cut: float = 3.0
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """A grid that holds every ball's whole support.

    Parameters
    ----------
    cloud : GaussianCloud
        The balls; must not be empty.
    spacing : float or array_like, shape (3,)
        Voxel size (metres).
    model, cut
        As in :func:`voxelize`; they set how far each ball reaches.

    Returns
    -------
    origin : ndarray, shape (3,)
    spacing : ndarray, shape (3,)
    shape : tuple of 3 ints
        Ready for ``voxelize(cloud, origin, spacing, shape)``.
    """
    if cloud.n == 0:
        raise InputError("grid_for_cloud", "cloud", "at least one ball", got="an empty cloud")
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,)).copy()
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise InputError("grid_for_cloud", "spacing", "positive voxel sizes (metres)", got=spacing)
    lo, hi = cloud.bounds(support(model, cut))
    # Snap outward to whole voxels so the supports' edges fall inside the grid.
    lo = np.floor(lo / spacing) * spacing
    hi = np.ceil(hi / spacing) * spacing
    return grid_for_region(lo, hi, spacing)
