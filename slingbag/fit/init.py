"""The cloud a pass starts from: balls where a back-projection is bright, plus a uniform
share, at an amplitude fitted to the data; or a given cloud (a warm start)."""

from __future__ import annotations

import numpy as np

from ..core.volume import grid_for_region
from ..model.radiator import faces_of, forward_signals
from .plan import Plan
from .state import CloudState


def initial_cloud(plan: Plan, rng, init_cloud=None) -> tuple[CloudState, float]:
    """The starting :class:`CloudState` (p0 in the loop's units) and the median of its
    p0, the unit of the p0 learning rates."""
    cfg, res = plan.cfg, plan.res
    if init_cloud is not None and init_cloud.n > 0:
        xyz = np.asarray(init_cloud.xyz, np.float64)
        sigma = np.asarray(init_cloud.sigma, np.float64)
        p0 = np.asarray(init_cloud.p0, np.float64) / plan.scale
    else:
        acq_scaled = plan.acq.replace(signals=plan.meas)
        n0 = initial_count(cfg, plan.lo, plan.hi, res)
        xyz, w = initial_positions(cfg, acq_scaled, plan.lo, plan.hi, res, n0, rng)
        sigma = rng.uniform(*cfg["init"]["sigma"], len(w)) * res
        sigma = np.minimum(sigma, plan.sigma_max or np.inf)
        p0 = w * fit_amplitude(xyz, w, sigma, acq_scaled, plan.model)
    cloud = CloudState(xyz.astype(np.float32), p0.astype(np.float32), sigma.astype(np.float32))
    return cloud, float(np.median(p0))


def initial_count(cfg, lo, hi, res) -> int:
    """``init.balls``, or (0) about one ball per 40 voxels of the region."""
    n = int(cfg["init"]["balls"])
    if n <= 0:
        n_vox = float(np.prod(np.maximum((np.asarray(hi) - lo) / res, 1)))
        n = int(n_vox / 40)
    return max(16, min(n, int(cfg["density"]["max_balls"])))


def initial_positions(cfg, acq_scaled, lo, hi, res, n_balls, rng):
    """Initial centres: where a back-projection is bright (on a grid of spacing ``res``),
    plus a uniform share; and relative weights for their amplitudes."""
    icfg = cfg["init"]
    uniform_share = 1.0 if icfg["method"] == "uniform" else float(icfg["uniform_fraction"])
    n_uni = int(round(uniform_share * n_balls))
    n_bp = n_balls - n_uni
    parts, weights = [], []
    if n_bp > 0:
        from ..baselines.ubp import ubp

        origin, spacing, shape = grid_for_region(lo, hi, res)
        bp = ubp(acq_scaled, origin, spacing, shape)
        w = np.clip(bp.data, 0, None).astype(np.float64).ravel() ** 2
        if w.sum() > 0:
            nz = int((w > 0).sum())
            pick = rng.choice(w.size, size=n_bp, replace=n_bp > nz, p=w / w.sum())
            ijk = np.stack(np.unravel_index(pick, shape), axis=1)
            xyz = origin + (ijk + rng.uniform(-0.5, 0.5, ijk.shape)) * spacing
            parts.append(np.clip(xyz, lo, hi))
            vals = np.sqrt(w[pick])
            weights.append(vals / vals.mean())
        else:
            n_uni = n_balls
    if n_uni > 0:
        parts.append(rng.uniform(lo, hi, (n_uni, 3)))
        weights.append(rng.uniform(*icfg["p0"], n_uni))
    return np.concatenate(parts), np.concatenate(weights)


def fit_amplitude(xyz, p0, sigma, acq, model) -> float:
    """Least-squares factor that best matches the initial cloud's signals to ``acq``'s."""
    meas = acq.signals
    sim = forward_signals(
        xyz, p0, sigma, acq.positions, acq.n_samples, acq.fs, acq.sound_speed, acq.t0, model,
        faces_of(acq),
    ).astype(np.float64)  # fmt: skip
    ss = float((sim * sim).sum())
    if ss == 0:
        return 1.0
    alpha = float((sim * meas).sum()) / ss
    # Uncorrelated starts (uniform init) give a tiny or negative factor: fall back to
    # matching a tenth of the energy so the balls start small but not at zero.
    floor = 0.1 * np.sqrt(float((meas.astype(np.float64) ** 2).sum()) / ss)
    return max(alpha, floor)
