"""The optimiser loop: one iteration at a time over a :class:`~slingbag.fit.state.RunState`
with a frozen :class:`~slingbag.fit.plan.Plan`.

An iteration evaluates the stage's objective on a batch of sensors, lets the divergence
guard take the run back if it blew up, adds the L1 prior, steps the cloud (and, in the
fine stage, the acquisition parameters, carrying the cloud and region with the sound
speed and t0), runs the density step when one is due and records the history.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReconstructionError
from . import guard
from .checkpoint import save_checkpoint
from .objective import add_l1
from .plan import Plan
from .state import RunState

log = logging.getLogger("slingbag")

#: What :func:`iterate` did.
STEPPED, REWOUND, STOPPED = "stepped", "rewound", "stopped"


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often the loop writes checkpoints, and what it writes beside the
    state: the calibration pass's index and how that pass started."""

    path: Path | None
    every: int
    pass_index: int = 0
    pass_start: dict | None = None
    fingerprint: str | None = None

    def due(self, it: int) -> bool:
        return self.path is not None and self.every > 0 and it % self.every == 0


def run_loop(run: RunState, plan: Plan, progress, callback=None, ckpt=None) -> None:
    """Iterate until the plan's last iteration (or the guard stops the run).

    ``callback(iteration, loss, cloud)`` after every iteration that stepped.  A
    checkpoint is written once the window in which the last density step may be undone
    has closed, so that a resumed run steps exactly as an unbroken one.
    """
    while run.it < plan.n_total:
        status = iterate(run, plan, progress)
        if status == STOPPED:
            break
        if status == REWOUND:
            continue
        if callback is not None:
            callback(run.it, run.history["loss"][-1], run.cloud)
        guard.expire_undo(run)
        run.ckpt_due |= ckpt is not None and ckpt.due(run.it)
        if run.ckpt_due and run.guard.undo is None and run.it < plan.n_total:
            run.ckpt_due = False
            save_checkpoint(
                ckpt.path, run, plan.cfg, ckpt.pass_index, ckpt.pass_start, ckpt.fingerprint
            )


def iterate(run: RunState, plan: Plan, progress) -> str:
    """One iteration (see the module docstring); returns STEPPED, REWOUND or STOPPED."""
    stage = plan.stage(run.it)
    cloud, params = run.cloud, run.params
    if cloud.n == 0:
        raise ReconstructionError(
            "every ball was pruned: the signals may be too weak for the preset's "
            "thresholds, or the region misses the sources (check --region, "
            "density.prune_p0 and the signal scale)"
        )
    sensors = plan.sensors(run.rng, stage)
    guard.judge_in_band(run, stage)
    loss, grads = plan.objectives[stage].data(
        cloud.xyz, cloud.p0, cloud.sigma, sensors, params, params.c, params.time0,
        params.needs_scalars,
    )  # fmt: skip
    if guard.diverged(loss, grads, run.guard.best_fit, run.it):
        retries = int(plan.cfg["run"]["max_retries"])
        if not guard.recover(run, loss, retries, progress.say):
            return STOPPED
        progress.rewind(run.it)
        return REWOUND
    run.guard.best_fit = min(run.guard.best_fit, loss)
    if plan.l1_relative > 0:
        if run.l1_abs is None:
            run.l1_abs = plan.l1_relative * float(np.mean(np.abs(grads["p0"])))
        loss = add_l1(loss, grads, cloud.p0, run.l1_abs)
    step_parameters(run, plan, stage, grads)
    guard.note_step(run, loss, stage)
    density_step(run, plan, stage, grads, loss, progress.say)
    record(run, loss, stage)
    run.it += 1
    progress.advance(loss, run.cloud.n, stage)
    return STEPPED


def step_parameters(run: RunState, plan: Plan, stage: str, grads: dict) -> None:
    """Adam on the cloud and, in the fine stage, on the learned acquisition parameters;
    then p0 and the sizes are kept in bounds."""
    cloud, params = run.cloud, run.params
    fine = stage == "fine"
    # Acquisition parameters are learned once the cloud has taken shape: in the coarse
    # stage the balls cannot move, and a sound speed and t0 stepped then slide along the
    # valley in which they trade off against each other.
    carry = params.carry(cloud, plan.acq.positions) if fine and params.needs_scalars else None
    run.adam.step(cloud, grads, plan.learning_rates(run.it, run.p0_unit, run.lr_scale))
    if fine and params.learn:
        params.step(grads, run.lr_scale * plan.decay(run.it), cloud, carry, run.box)
    np.clip(cloud.p0, 0.0, None, out=cloud.p0)
    sigma_max = plan.sigma_max
    if "response" in params.learn:  # the band, and so the largest visible ball, moves
        sigma_max = plan.largest_sigma(params.response, params.c)
    np.clip(cloud.sigma, 0.25 * plan.res, sigma_max, out=cloud.sigma)


def density_step(run: RunState, plan: Plan, stage: str, grads: dict, loss: float, say):
    """Prune, split and duplicate when the strategy says so, on the state after this
    iteration's step; none after the last iteration (balls split or duplicated then
    would never be fitted)."""
    nxt = run.it + 1
    if nxt >= plan.n_total or not plan.density.is_due(nxt, stage):
        return
    before = run.snapshot(nxt)
    lo, hi = run.box.bounds32()
    counts = plan.density.step_post_backward(run.cloud, grads, nxt, stage, run.rng, lo, hi)
    guard.note_density_step(run, loss, stage, before, counts)
    say(
        f"it {nxt:4d} {stage}: loss {loss:.4f}, balls {counts['before']}"
        f" -> {counts['after']} (pruned {counts.get('pruned', 0)}, split "
        f"{counts.get('split', 0)}, duplicated {counts.get('duplicated', 0)})"
    )


def record(run: RunState, loss: float, stage: str) -> None:
    h = run.history
    h["loss"].append(loss)
    h["balls"].append(run.cloud.n)
    h["time"].append(time.perf_counter() - run.started)
    h["stage"].append(0 if stage == "coarse" else 1)
    for key, val in run.params.report().items():
        if np.ndim(val) == 0:
            h.setdefault(key, []).append(val)


class Progress:
    """The progress bar (loss, balls, stage, it/s, ETA), or the log when it is off."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc="slingbag", unit="it", dynamic_ncols=True
            )

    def say(self, msg: str) -> None:
        # Through the bar when there is one, so the line does not tear it.
        if self.bar is not None:
            self.bar.write(msg)
        else:
            log.info(msg)

    def advance(self, loss: float, balls: int, stage: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", balls=f"{balls:,}", stage=stage, refresh=False)
            self.bar.update(1)

    def rewind(self, it: int) -> None:
        if self.bar is not None:
            self.bar.n = it

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
