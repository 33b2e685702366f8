"""Everything one reconstruction pass carries from iteration to iteration, in one object.

:class:`RunState` holds the cloud with its optimiser moments, the learned acquisition
parameters, the region box (the one owner of the region: the sound-speed and t0 steps
carry it with the cloud), the random generator, the loss history and the divergence
guard's bookkeeping; a checkpoint writes all of it.  A snapshot (what a rollback
restores) holds the parts a step changes: the cloud, the parameters, the box, Adam's
step count and the learning-rate factor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .optim import Adam


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

    def copy(self) -> CloudState:
        moments = {k: (m.copy(), v.copy()) for k, (m, v) in self.moments.items()}
        return CloudState(self.xyz.copy(), self.p0.copy(), self.sigma.copy(), moments)


class Box:
    """The reconstruction region as its eight corners, so that it can be carried with the
    cloud (a box re-fitted around carried corners at every step would only ever grow)."""

    def __init__(self, lo, hi):
        axes = zip(np.asarray(lo, np.float64), np.asarray(hi, np.float64), strict=True)
        self.corners = np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T

    @property
    def lo(self) -> np.ndarray:
        return self.corners.min(axis=0)

    @property
    def hi(self) -> np.ndarray:
        return self.corners.max(axis=0)

    def bounds32(self):
        """``(lo, hi)`` as float32, the precision the balls' centres are compared in."""
        return self.lo.astype(np.float32), self.hi.astype(np.float32)


@dataclass
class Guard:
    """The divergence guard's bookkeeping: the best state so far, the rollback point, the
    state just before the last density step (while that step may still be undone) and
    how often the run has rolled back."""

    best_loss: float = np.inf
    best: dict | None = None
    best_stage: str = ""  # the stage whose band best_loss is in
    best_fit: float = np.inf  # lowest data misfit so far (the loss less any L1 term)
    fit_stage: str = ""  # the stage best_fit was last judged in
    rollback: dict | None = None
    undo: dict | None = None
    retries: int = 0


@dataclass
class RunState:
    """One pass's whole state (see the module docstring).

    ``params`` are the learned acquisition parameters
    (:class:`~slingbag.fit.params.Calibration`), ``l1_abs`` the L1 weight in the loop's
    units once it is fixed, ``lr_scale`` the learning-rate factor rollbacks halve.
    """

    cloud: CloudState
    params: object
    box: Box
    rng: np.random.Generator
    p0_unit: float
    adam: Adam = field(default_factory=Adam)
    it: int = 0
    lr_scale: float = 1.0
    l1_abs: float | None = None
    history: dict = field(
        default_factory=lambda: {"loss": [], "balls": [], "time": [], "stage": []}
    )
    guard: Guard = field(default_factory=Guard)
    ckpt_due: bool = False
    started: float = field(default_factory=time.perf_counter)  # for the history's times

    def snapshot(self, it: int | None = None) -> dict:
        """A copy of what a rollback restores, labelled with the iteration ``it``."""
        return {
            "params": self.params.snapshot(),
            "corners": self.box.corners.copy(),
            "cloud": self.cloud.copy(),
            "t": self.adam.t,
            "it": self.it if it is None else it,
            "lr_scale": self.lr_scale,
        }

    def restore(self, snap: dict) -> int:
        """Return to ``snap``; returns its iteration (the learning-rate factor comes back
        too)."""
        self.cloud = snap["cloud"].copy()
        self.adam.t = snap["t"]
        self.params.restore(snap["params"])
        self.box.corners = snap["corners"].copy()
        self.lr_scale = snap["lr_scale"]
        return snap["it"]
