"""Adaptive density control: when to prune, split and duplicate balls.

The policy is a small object with hooks (after gsplat's ``Strategy``): the optimiser loop
calls :meth:`DensityStrategy.step_post_backward` after every iteration; the strategy
decides whether this iteration is a density step and edits the :class:`CloudState` in
place, keeping each surviving ball's optimiser moments and zeroing those of new balls.

The three operations are plain functions of arrays so they can be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CloudState:
    """The optimised arrays (float32) and their Adam moments.

    ``xyz`` in metres, ``sigma`` in metres, ``p0`` in internal amplitude units.
    """

    xyz: np.ndarray
    p0: np.ndarray
    sigma: np.ndarray
    moments: dict = field(default_factory=dict)  # name -> (m, v) arrays shaped like the param

    @property
    def n(self) -> int:
        return len(self.p0)

    def take(self, index: np.ndarray, new: dict | None = None) -> None:
        """Keep the balls at ``index`` (in that order) and append ``new`` balls (dict of
        arrays), carrying moments over for kept balls and zeroing them for new ones."""
        n_new = 0 if not new else len(new["p0"])
        for name in ("xyz", "p0", "sigma"):
            kept = getattr(self, name)[index]
            if n_new:
                kept = np.concatenate([kept, new[name].astype(np.float32)])
            setattr(self, name, np.ascontiguousarray(kept, dtype=np.float32))
            if name in self.moments:
                m, v = self.moments[name]
                pad = np.zeros((n_new,) + m.shape[1:], np.float32)
                self.moments[name] = (
                    np.concatenate([m[index], pad]),
                    np.concatenate([v[index], pad]),
                )


def prune_mask(p0, sigma, xyz, *, p0_min, sigma_min, lo, hi) -> np.ndarray:
    """True for the balls to keep: p0 >= p0_min, sigma >= sigma_min, centre inside
    the box [lo, hi]."""
    inside = np.all((xyz >= lo) & (xyz <= hi), axis=1)
    return (p0 >= p0_min) & (sigma >= sigma_min) & inside & np.isfinite(p0)


def _unit_rows(v: np.ndarray, rng) -> np.ndarray:
    """Rows of ``v`` scaled to unit length; zero rows get a random direction."""
    v = np.asarray(v, np.float64).copy()
    norm = np.linalg.norm(v, axis=1)
    zero = norm < 1e-30
    if zero.any():
        v[zero] = rng.standard_normal((int(zero.sum()), 3))
        norm[zero] = np.linalg.norm(v[zero], axis=1)
    return v / norm[:, None]


def split(xyz, p0, sigma, grad_xyz, rng):
    """Each ball becomes two of half the size, offset by +/- sigma/2 along its position
    gradient (a random axis if that is zero); p0 grows so the field's integral is kept
    (two balls of half the width carry 2/8 of the mass at the same p0).

    Returns a dict of the new balls (``2 * len(p0)`` of them).
    """
    d = _unit_rows(grad_xyz, rng) * (0.5 * np.asarray(sigma)[:, None])
    new_xyz = np.concatenate([xyz + d, xyz - d])
    new_sigma = np.concatenate([sigma, sigma]) * 0.5
    new_p0 = np.concatenate([p0, p0]) * 4.0
    return {"xyz": new_xyz, "p0": new_p0, "sigma": new_sigma}


def duplicate(xyz, p0, sigma, grad_xyz, step, rng):
    """A copy of each ball ``step`` metres down its position gradient (the direction that
    lowers the misfit).  The copy and the original share the p0 (half each), so the field
    is unchanged where they overlap.  Returns (p0 of the originals, new balls)."""
    d = -_unit_rows(grad_xyz, rng) * step
    half = np.asarray(p0) * 0.5
    return half, {"xyz": xyz + d, "p0": half.copy(), "sigma": np.asarray(sigma).copy()}


@dataclass
class DensityStrategy:
    """Prune / split / duplicate every ``every`` iterations (lengths in metres).

    Attributes mirror the ``[density]`` section of a preset, converted to metres.
    """

    every: int
    prune_p0: float
    prune_sigma: float
    split_sigma: float
    duplicate_period: int
    duplicate_at: int
    duplicate_step: float
    duplicate_fraction: float
    max_balls: int
    lo: np.ndarray
    hi: np.ndarray
    log: list = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: dict, res: float, lo, hi) -> DensityStrategy:
        d = cfg["density"]
        return cls(
            every=int(d["every"]),
            prune_p0=float(d["prune_p0"]),
            prune_sigma=float(d["prune_sigma"]) * res,
            split_sigma=float(d["split_sigma"]) * res,
            duplicate_period=int(d["duplicate_period"]),
            duplicate_at=int(d["duplicate_at"]),
            duplicate_step=float(d["duplicate_step"]) * res,
            duplicate_fraction=float(d["duplicate_fraction"]),
            max_balls=int(d["max_balls"]),
            lo=np.asarray(lo, np.float32),
            hi=np.asarray(hi, np.float32),
        )

    def is_density_step(self, it: int) -> bool:
        return it > 0 and it % self.every == 0

    def wants_duplicate(self, it: int, stage: str) -> bool:
        return (
            stage == "fine"
            and self.duplicate_fraction > 0
            and it % self.duplicate_period == self.duplicate_at
        )

    def p0_threshold(self, p0: np.ndarray) -> float:
        # Relative to the bright end of the cloud, so the same fraction works for any
        # signal scale; the 99th percentile ignores a few runaway balls.
        return self.prune_p0 * float(np.percentile(p0, 99)) if len(p0) else 0.0

    def is_due(self, it: int, stage: str) -> bool:
        """Whether any density operation runs at iteration ``it`` of ``stage``."""
        return self.is_density_step(it) or self.wants_duplicate(it, stage)

    def step_post_backward(self, state: CloudState, grads: dict, it: int, stage: str, rng):
        """Run the density operations due at iteration ``it`` of ``stage``.

        Returns a dict of counts (empty when nothing was due).
        """
        if not self.is_due(it, stage):
            return {}
        due_dup = self.wants_duplicate(it, stage)
        counts = {"before": state.n}
        gx = grads["xyz"]
        if self.is_density_step(it):
            keep = prune_mask(
                state.p0,
                state.sigma,
                state.xyz,
                p0_min=self.p0_threshold(state.p0),
                sigma_min=self.prune_sigma,
                lo=self.lo,
                hi=self.hi,
            )
            big = keep & (state.sigma > self.split_sigma)
            small = np.flatnonzero(keep & ~big)
            big_idx = np.flatnonzero(big)
            new = (
                split(state.xyz[big_idx], state.p0[big_idx], state.sigma[big_idx], gx[big_idx], rng)
                if len(big_idx)
                else None
            )
            counts["pruned"] = int((~keep).sum())
            counts["split"] = int(len(big_idx))
            state.take(small, new)
            gx = np.concatenate([gx[small], np.zeros((2 * len(big_idx), 3), np.float32)])
        if due_dup:
            room = max(0, self.max_balls - state.n)
            n_dup = min(int(round(self.duplicate_fraction * state.n)), room)
            if n_dup > 0:
                norm = np.linalg.norm(gx, axis=1)
                pick = np.argsort(-norm)[:n_dup]
                half, new = duplicate(
                    state.xyz[pick],
                    state.p0[pick],
                    state.sigma[pick],
                    gx[pick],
                    self.duplicate_step,
                    rng,
                )
                state.p0[pick] = half
                state.take(np.arange(state.n), new)
            counts["duplicated"] = int(max(n_dup, 0))
        counts["after"] = state.n
        self.log.append((it, stage, counts))
        return counts
