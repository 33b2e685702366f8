"""Image-quality metrics of a reconstruction against the truth.

Both volumes are brought onto the truth's grid (trilinear, zero outside the image's grid),
negatives are clipped to 0 and each is scaled to [0, 1] by its own maximum, so the metrics
judge shape and contrast, not the absolute pressure scale.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.volume import Volume
from ..errors import InputError

AXES = {"x": 0, "y": 1, "z": 2}
BACKGROUND_LEVEL = 0.05  # truth below 5 % of its max is background
VESSEL_LEVEL = 0.10  # truth above 10 % of its max is vessel
SSIM_MAX_WIN = 7  # scikit-image's default window side
# Resampling works slab by slab along x so the coordinate arrays stay small.
_SLAB_VOXELS = 1 << 21
# A target voxel this close (in source voxels) to the source grid's edge counts as on it;
# without the snap, rounding puts an identical grid's last plane a hair outside.
_EDGE_SNAP = 1e-6


def projection(data: np.ndarray, axis: int) -> np.ndarray:
    """The maximum amplitude projection (MAP) of a 3-D array along ``axis``, negatives
    clipped to 0: the one MAP that metrics score and figures show."""
    return np.clip(np.asarray(data), 0.0, None).max(axis=axis)


def maps(volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum amplitude projections of a volume (see :func:`projection`).

    Parameters
    ----------
    volume : Volume or ndarray, shape (nx, ny, nz)

    Returns
    -------
    top : ndarray, shape (nx, ny)
        Maximum along z.
    front : ndarray, shape (nx, nz)
        Maximum along y.
    side : ndarray, shape (ny, nz)
        Maximum along x.
    """
    data = _data(volume)
    if data.ndim != 3 or data.size == 0:
        raise InputError("maps", "volume", "a non-empty 3-D volume", got=f"shape {data.shape}")
    return projection(data, 2), projection(data, 1), projection(data, 0)


def _data(volume) -> np.ndarray:
    return np.asarray(volume.data if isinstance(volume, Volume) else volume)


def _axis_coordinates(src: Volume, target: Volume, d: int) -> np.ndarray:
    """Positions of the target's voxel centres along axis ``d`` in source-index units."""
    u = (target.axes()[d] - src.origin[d]) / src.spacing[d]
    last = src.shape[d] - 1
    u[np.abs(u) < _EDGE_SNAP] = 0.0
    u[np.abs(u - last) < _EDGE_SNAP] = last
    return u


def _same_grid(a: Volume, b: Volume) -> bool:
    if a.shape != b.shape:
        return False
    tol = 1e-6 * b.spacing
    return bool(np.all(np.abs(a.origin - b.origin) < tol) and np.allclose(a.spacing, b.spacing))


def resample(volume: Volume, target: Volume) -> np.ndarray:
    """``volume`` interpolated trilinearly at the voxel centres of ``target``.

    Parameters
    ----------
    volume : Volume
        The image to resample.
    target : Volume
        The grid to resample onto (its data is not used).

    Returns
    -------
    ndarray, float64, shape ``target.shape``
        Zero where a target voxel lies outside ``volume``'s grid.
    """
    from scipy.ndimage import map_coordinates

    src = np.asarray(volume.data, dtype=np.float64)
    if _same_grid(volume, target):
        return src.copy()
    ux, uy, uz = (_axis_coordinates(volume, target, d) for d in range(3))
    out = np.empty(target.shape, dtype=np.float64)
    slab = max(1, _SLAB_VOXELS // max(1, len(uy) * len(uz)))
    for start in range(0, len(ux), slab):
        coords = np.stack(np.meshgrid(ux[start : start + slab], uy, uz, indexing="ij"))
        out[start : start + slab] = map_coordinates(
            src, coords, order=1, mode="constant", cval=0.0, prefilter=False
        )
    return out


def _normalised(data: np.ndarray, name: str) -> np.ndarray:
    """Negatives clipped to 0, then scaled to [0, 1] by the maximum."""
    clipped = np.clip(np.asarray(data, dtype=np.float64), 0.0, None)
    if clipped.size == 0:
        raise InputError("metrics", name, "a non-empty volume", got="no voxels")
    if not np.isfinite(clipped).all():
        raise InputError("metrics", name, "finite voxel values", got="NaN or inf")
    peak = clipped.max()
    if peak <= 0:
        raise InputError(
            "metrics",
            name,
            "some voxels above zero on the truth's grid",
            got="all zero or negative",
            hint="does the volume overlap the truth's region?" if name == "volume" else None,
        )
    return clipped / peak


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two images in [0, 1] (scikit-image), window shrunk to fit small images.

    Returns NaN for an image thinner than 3 pixels, where no SSIM window fits.
    """
    from skimage.metrics import structural_similarity

    side = min(a.shape)
    if side < 3:
        return math.nan
    win = min(SSIM_MAX_WIN, side if side % 2 else side - 1)
    return float(structural_similarity(a, b, data_range=1.0, win_size=win))


def _slice_axis(slice_axis) -> int:
    if isinstance(slice_axis, str) and slice_axis.lower() in AXES:
        return AXES[slice_axis.lower()]
    if slice_axis in (0, 1, 2) and not isinstance(slice_axis, bool):
        return int(slice_axis)
    raise InputError("metrics", "slice_axis", "one of x, y, z", got=slice_axis)


def pick_slice(data: np.ndarray, axis: int, index=None, source="metrics", field="slice_index"):
    """The slice along ``axis`` to compare or show: ``index`` (negative counts from the
    end) checked against the volume, or by default the slice with the largest sum of the
    positive voxels (the rule of :func:`metrics` and of the figures)."""
    n = data.shape[axis]
    if index is None:
        others = tuple(d for d in range(3) if d != axis)
        return int(np.argmax(np.clip(np.asarray(data, np.float64), 0, None).sum(axis=others)))
    i = int(index)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise InputError(source, field, f"an index in [0, {n - 1}] along that axis", got=index)
    return i


def _snr_cnr(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """SNR (dB) and CNR of ``image`` with regions set by ``truth`` (both scaled to [0, 1]).

    A noise-free background (std 0) gives ``inf``; no background at all gives NaN.
    """
    background = image[truth < BACKGROUND_LEVEL]
    vessels = image[truth > VESSEL_LEVEL]
    if background.size == 0:
        return math.nan, math.nan
    noise = float(background.std())
    contrast = float(vessels.mean() - background.mean())
    if noise == 0:
        cnr = math.copysign(math.inf, contrast) if contrast != 0 else math.nan
        return math.inf, cnr
    return 20.0 * math.log10(float(image.max()) / noise), contrast / noise


def metrics(volume: Volume, truth: Volume, *, slice_axis="z", slice_index=None) -> dict:
    """Quality of a reconstructed volume against the truth.

    Both volumes are brought onto the truth's grid, negatives are clipped to 0 and each is
    scaled to [0, 1] by its own maximum, so the metrics judge shape and contrast, not the
    absolute pressure scale.

    Parameters
    ----------
    volume : Volume
        The reconstruction; resampled trilinearly onto the truth's grid (zero outside).
    truth : Volume
        The ground truth; sets the grid and the vessel/background regions.
    slice_axis : {"x", "y", "z"}
        Axis normal to the slice compared by ``ssim_slice``.
    slice_index : int, optional
        Which slice along ``slice_axis``; default the truth's slice with the largest sum.

    Returns
    -------
    dict
        ``ssim_map`` (= ``ssim_map_z``), ``ssim_map_z``, ``ssim_map_y``, ``ssim_map_x``: SSIM
        of the maximum amplitude projections along each axis; ``ssim_slice``: SSIM of the
        slice; ``snr_db``: 20 log10(max / std of the background), background = truth below
        5 % of its max (``inf`` for a noise-free background); ``cnr``: (mean over vessels -
        mean over background) / std of background, vessels = truth above 10 % of its max;
        ``slice_axis`` and ``slice_index``: the slice used.  SSIMs of images thinner than
        3 pixels are NaN.

    Raises
    ------
    InputError
        If either volume is empty, non-finite, or has no positive voxel on the truth's grid.
    """
    axis = _slice_axis(slice_axis)
    truth_n = _normalised(truth.data, "truth")
    image = _normalised(resample(volume, truth), "volume")
    index = pick_slice(truth_n, axis, slice_index)
    result = {}
    for name, d in (("z", 2), ("y", 1), ("x", 0)):
        result[f"ssim_map_{name}"] = ssim(projection(image, d), projection(truth_n, d))
    result["ssim_map"] = result["ssim_map_z"]
    result["ssim_slice"] = ssim(np.take(image, index, axis=axis), np.take(truth_n, index, axis))
    result["snr_db"], result["cnr"] = _snr_cnr(image, truth_n)
    result["slice_axis"] = "xyz"[axis]
    result["slice_index"] = index
    return result
