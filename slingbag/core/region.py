"""Where to reconstruct: the region implied by the array and the signals' time window."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from .acquisition import Acquisition
from .geometry import fit_plane

log = logging.getLogger("slingbag")


def signal_window(acq: Acquisition, level: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per sensor, the first and last time (s) at which the smoothed signal magnitude
    exceeds ``level`` times that sensor's own peak and four times the noise floor (NaN for
    sensors that hear nothing above a hundredth of the array's peak).

    Per-sensor levels keep faint, distant sources in the window of sensors far from
    them; a global level would cut them and shrink the region."""
    from scipy.ndimage import uniform_filter1d

    env = uniform_filter1d(np.abs(acq.signals.astype(np.float64)), 9, axis=1)
    peak = env.max(axis=1, keepdims=True)
    # Most samples of a PA record are noise: a low percentile of the envelope measures the
    # noise floor, which a window edge must clear by a good margin.
    noise = float(np.percentile(env, 30))
    thr = np.maximum(level * peak, 4.0 * noise)
    # A sensor whose peak is under twice that noise margin may have crossed it on a lone
    # noise excursion: its "window" would say nothing about where the sources are.
    heard = (peak > 2.0 * 4.0 * noise) & (peak > 0.01 * env.max())
    above = (env > thr) & heard
    t = acq.times
    first = np.full(acq.n_sensors, np.nan)
    last = np.full(acq.n_sensors, np.nan)
    any_ = above.any(axis=1)
    idx = np.argmax(above, axis=1)
    first[any_] = t[idx[any_]]
    idx_last = above.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
    last[any_] = t[idx_last[any_]]
    return first, last


def infer_region(
    acq: Acquisition,
    res: float,
    margin: float = 2.0,
    votes: float = 0.9,
    lateral_votes: float = 0.6,
):
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
    facing = _planar_facing(acq)
    # A coarse grid (about 48^3 points) over the bounding box, refined once around the hits.
    try:
        for _ in range(2):
            lo, hi = _consistent_box(acq, (pos, r_lo, r_hi), lo, hi, facing, votes, lateral_votes)
    except InputError as err:
        lo, hi = field_of_view(pos, r_hi, facing, res)
        log.warning(
            "%s; reconstructing in the array's field of view instead, x %.1f..%.1f, "
            "y %.1f..%.1f, z %.1f..%.1f mm (--region sets the box)",
            err.got,
            *(np.stack([lo, hi], axis=1).ravel() * 1e3),
        )
        return lo, hi
    lo = lo - margin * res
    hi = hi + margin * res
    if facing is not None:
        _clip_to_view(acq.positions, lo, hi, facing, res)
    log.info(
        "region inferred from the signal window: x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm",
        *(np.stack([lo, hi], axis=1).ravel() * 1e3),
    )
    return lo, hi


def field_of_view(pos: np.ndarray, reach: np.ndarray, facing, res: float):
    """The box ``(lo, hi)`` the sensors at ``pos`` see when the signals' timing pins down
    no region.

    ``reach`` is the far edge of each sensor's signal window (metres).  In front of a
    planar array (``facing`` its unit normal): the median reach's depth, clipped by
    :func:`_clip_to_view` to what the array sees.  Otherwise: the box
    of the points within reach of at least half the sensors (a coarse grid about their
    centre), or of the sensors themselves when there is none.
    """
    if facing is not None:
        axis = int(np.argmax(np.abs(facing)))
        base = float(pos.mean(axis=0)[axis])
        lo, hi = np.full(3, -np.inf), np.full(3, np.inf)
        lo[axis], hi[axis] = sorted((base, base + np.sign(facing[axis]) * float(np.median(reach))))
        _clip_to_view(pos, lo, hi, facing, res)
        return lo, hi
    half = float(np.median(reach))
    grid = np.linspace(-half, half, 25)
    pts = pos.mean(axis=0) + np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(
        -1, 3
    )
    count = np.zeros(len(pts), np.int32)
    for s, r in zip(pos, reach, strict=True):
        count += np.linalg.norm(pts - s, axis=1) <= r
    inside = pts[count >= 0.5 * len(pos)]
    if len(inside) == 0:
        return pos.min(axis=0).astype(float), pos.max(axis=0).astype(float)
    step = grid[1] - grid[0]
    return inside.min(axis=0) - step, inside.max(axis=0) + step


def _planar_facing(acq: Acquisition):
    """The unit normal of a planar array, pointing the way its sensors face (the side the
    given normals point to, else the side of the normal's largest component); None when
    the array is not planar."""
    plane = fit_plane(acq.positions)
    normal, flatness = plane.normal, plane.rms
    span = np.ptp(acq.positions, axis=0).max()
    if not flatness < 1e-3 * max(span, 1e-9):
        return None
    facing = normal
    if acq.normals is not None:
        facing = np.sign(np.dot(acq.normals.mean(axis=0), normal) or 1.0) * normal
    elif normal[np.argmax(np.abs(normal))] < 0:
        facing = -normal
    return facing


def _consistent_box(acq: Acquisition, shells, lo, hi, facing, votes, lateral_votes):
    """The box, one grid cell wider, of the points of a 48^3 grid over ``(lo, hi)`` that
    lie within the distance shells ``(pos, r_lo, r_hi)`` of enough sensors.

    With a planar array (``facing`` not None) only points in front of it count, and the
    lateral axes take the looser ``lateral_votes``.
    """
    pos, r_lo, r_hi = shells
    planar = facing is not None
    n = 48
    axes = [np.linspace(lo[d], hi[d], n) for d in range(3)]
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
    if planar:
        pts = pts[(pts - acq.positions.mean(axis=0)) @ facing > 0]
    cell = (hi - lo) / (n - 1)
    tol = np.linalg.norm(cell)
    count = np.zeros(len(pts), np.int32)
    for s in range(len(pos)):
        d = np.linalg.norm(pts - pos[s], axis=1)
        count += (d >= r_lo[s] - tol) & (d <= r_hi[s] + tol)
    # Most, not all: a sensor with a short window (noise, a dead element) must not
    # veto the region.  Timing pins the depth in front of a planar array far better
    # than the lateral extent, where faint sources at the edge reach fewer sensors in
    # time: those axes take a looser vote.
    hits = pts[count >= votes * len(pos)]
    loose = pts[count >= lateral_votes * len(pos)] if planar else hits
    if len(hits) == 0:
        raise InputError(
            acq.source,
            "signals",
            "signals whose timing fits one region for all sensors",
            "no consistent region (check sound_speed, t0 and the positions' units)",
        )
    depth = int(np.argmax(np.abs(facing))) if planar else -1
    new_lo = loose.min(axis=0) - cell
    new_hi = loose.max(axis=0) + cell
    if planar:
        new_lo[depth] = hits[:, depth].min() - cell[depth]
        new_hi[depth] = hits[:, depth].max() + cell[depth]
    return new_lo, new_hi


def _clip_to_view(positions, lo, hi, facing, res) -> None:
    """Clip the box ``(lo, hi)`` in place to what a planar array sees: nothing behind its
    face and, laterally, the footprint plus the depth range times a modest aperture."""
    axis = int(np.argmax(np.abs(facing)))
    base = float(positions.mean(axis=0)[axis])  # the face's coordinate on that axis
    if facing[axis] > 0:
        lo[axis] = max(lo[axis], base + res)
    else:
        hi[axis] = min(hi[axis], base - res)
    for d in range(3):
        if d == axis:
            continue
        flo = positions[:, d].min()
        fhi = positions[:, d].max()
        lo[d] = max(lo[d], flo - 0.25 * (fhi - flo))
        hi[d] = min(hi[d], fhi + 0.25 * (fhi - flo))
