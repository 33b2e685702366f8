"""Where to reconstruct: the region implied by the array and the signals' time window."""

from __future__ import annotations

import logging

import numpy as np

from .acquisition import Acquisition
from .errors import InputError

log = logging.getLogger("slingbag")


def signal_window(acq: Acquisition, level: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per sensor, the first and last time (s) at which the smoothed signal magnitude
    exceeds ``level`` times its peak over the whole array (NaN where it never does)."""
    from scipy.ndimage import uniform_filter1d

    env = uniform_filter1d(np.abs(acq.signals.astype(np.float64)), 9, axis=1)
    thr = level * env.max()
    above = env > thr
    t = acq.times
    first = np.full(acq.n_sensors, np.nan)
    last = np.full(acq.n_sensors, np.nan)
    any_ = above.any(axis=1)
    idx = np.argmax(above, axis=1)
    first[any_] = t[idx[any_]]
    idx_last = above.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
    last[any_] = t[idx_last[any_]]
    return first, last


def _planar_normal(pos: np.ndarray):
    """Unit normal of a best-fit plane and the RMS distance of the points from it."""
    centred = pos - pos.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[2], s[2] / np.sqrt(len(pos))


def infer_region(acq: Acquisition, res: float, margin: float = 2.0):
    """Box ``(lo, hi)`` in metres that holds the sources the signals can come from.

    Every source lies, for each sensor, within the distances covered by that sensor's
    signal window ``[c t_first, c t_last]``.  The box of the points of a coarse grid that
    satisfy this for most sensors is the region (planar arrays: only on the side their
    normals face, +z by default).
    """
    c = acq.sound_speed
    first, last = signal_window(acq)
    ok = np.isfinite(first)
    if not ok.any():
        raise InputError(acq.source, "signals", "some signal above the noise", "all flat")
    pos = acq.positions[ok]
    r_lo = np.maximum(c * first[ok] - 3 * res, 0)
    r_hi = c * last[ok] + 3 * res
    lo = pos.min(axis=0) - r_hi.max()
    hi = pos.max(axis=0) + r_hi.max()
    normal, flatness = _planar_normal(acq.positions)
    span = np.ptp(acq.positions, axis=0).max()
    planar = flatness < 1e-3 * max(span, 1e-9)
    if planar:
        facing = normal
        if acq.normals is not None:
            facing = np.sign(np.dot(acq.normals.mean(axis=0), normal) or 1.0) * normal
        elif normal[np.argmax(np.abs(normal))] < 0:
            facing = -normal
    # A coarse grid (about 48^3 points) over the bounding box, refined once around the hits.
    for _ in range(2):
        n = 48
        axes = [np.linspace(lo[d], hi[d], n) for d in range(3)]
        X, Y, Z = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
        if planar:
            pts = pts[(pts - acq.positions.mean(axis=0)) @ facing > 0]
        cell = (hi - lo) / (n - 1)
        tol = np.linalg.norm(cell)
        votes = np.zeros(len(pts), np.int32)
        for s in range(len(pos)):
            d = np.linalg.norm(pts - pos[s], axis=1)
            votes += (d >= r_lo[s] - tol) & (d <= r_hi[s] + tol)
        hits = pts[votes >= 0.9 * len(pos)]
        if len(hits) == 0:
            raise InputError(
                acq.source,
                "signals",
                "signals whose timing fits one region for all sensors",
                "no consistent region (check sound_speed, t0 and the positions' units)",
            )
        lo = hits.min(axis=0) - cell
        hi = hits.max(axis=0) + cell
    lo = lo - margin * res
    hi = hi + margin * res
    if planar:
        # Nothing behind the array's face.
        base = acq.positions.mean(axis=0) @ facing
        axis = int(np.argmax(np.abs(facing)))
        if facing[axis] > 0:
            lo[axis] = max(lo[axis], base + res)
        else:
            hi[axis] = min(hi[axis], base - res)
        # Laterally, only where the array sees well: the footprint plus the depth range
        # times a modest aperture angle.
        for d in range(3):
            if d == axis:
                continue
            flo = acq.positions[:, d].min()
            fhi = acq.positions[:, d].max()
            lo[d] = max(lo[d], flo - 0.25 * (fhi - flo))
            hi[d] = min(hi[d], fhi + 0.25 * (fhi - flo))
    log.info(
        "region inferred from the signal window: x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm",
        *(np.stack([lo, hi], axis=1).ravel() * 1e3),
    )
    return lo, hi
