"""The divergence guard: a NaN or exploding loss undoes the density step just before it,
or rolls the run back and halves the learning rates, or (past ``run.max_retries`` of the
configuration) stops with the best state so far."""

from __future__ import annotations

import logging

import numpy as np

from .state import RunState

log = logging.getLogger("slingbag")

#: Iterations after a density step in which a divergence undoes that step.
UNDO_WINDOW = 3
#: How far the lowest misfit is raised when a stage begins (see :func:`judge_in_band`).
BAND_SWITCH = 100.0


def diverged(loss, grads, best_loss, steps_done) -> bool:
    """A NaN/Inf loss or gradient, or a loss that explodes past 50x the best so far."""
    if not np.isfinite(loss) or grads is None:
        return True
    if any(not np.all(np.isfinite(g)) for g in grads.values() if isinstance(g, np.ndarray)):
        return True
    return steps_done > 5 and loss > 50 * max(best_loss, 1e-12)


def judge_in_band(run: RunState, stage: str) -> None:
    """Before an iteration of ``stage``: on entering it, raise the lowest misfit so far,
    the other stage's, by :data:`BAND_SWITCH`.  The stages compare in different bands; on
    clean records the fine band's first misfit is 20-60 times the coarse band's best,
    which would pass for a blow-up, while a density step that blew up is 10^4 times and
    more.  From the stage's first misfit on, the stage is judged by its own."""
    g = run.guard
    if g.fit_stage != stage:
        if g.fit_stage:
            g.best_fit *= BAND_SWITCH
        g.fit_stage = stage


def recover(run: RunState, loss: float, max_retries: int, say) -> bool:
    """Take the run back after a diverged iteration; False when it must stop (it then
    holds the best state so far).  ``say`` reports what was done."""
    g = run.guard
    if g.undo is not None and run.it - g.undo["it"] < UNDO_WINDOW:
        # The density step just before blew the loss up (e.g. a split exposing amplitude
        # the data could not see): going back to after it would only repeat the failure,
        # so it is undone.  The run goes on from the state just before it, so that step
        # is skipped; the next one is due `density.every` iterations later.
        halved = run.lr_scale
        back_to = run.restore(g.undo)
        run.lr_scale = min(run.lr_scale, halved)
        g.rollback, g.undo = g.undo, None
        g.best_loss, g.best = np.inf, g.rollback
        say(
            f"loss {loss:.4g} at iteration {run.it + 1}: the density step at "
            f"iteration {back_to} was undone"
        )
    else:
        g.retries += 1
        if g.retries > max_retries:
            log.warning("diverged %d times: stopping with the best cloud so far", g.retries - 1)
            if g.best is not None:
                run.restore(g.best)
            return False
        back_to = run.restore(g.rollback)
        run.lr_scale *= 0.5
        say(
            f"loss {loss:.4g} at iteration {run.it + 1}: rolled back to "
            f"iteration {back_to}, learning rates halved"
        )
    for key in run.history:
        del run.history[key][back_to:]
    if run.history["balls"]:
        run.history["balls"][-1] = run.cloud.n  # the undone step's count is gone too
    run.it = back_to
    return True


def note_step(run: RunState, loss: float, stage: str) -> None:
    """After a parameter step of ``stage``: keep the state as the best when its loss is
    the lowest.  The stages compare in different bands, so their losses are not
    comparable: the first fine-stage state replaces a coarse-stage best."""
    g = run.guard
    if loss < g.best_loss or stage != g.best_stage:
        g.best_loss, g.best, g.best_stage = loss, run.snapshot(run.it + 1), stage


def note_density_step(run: RunState, loss: float, stage: str, before: dict, counts: dict):
    """After a density step: the state ``before`` it may be returned to for a few
    iterations, and the new state is the rollback point and the best so far."""
    changed = any(counts.get(k, 0) for k in ("pruned", "split", "duplicated"))
    g = run.guard
    g.undo = before if changed else None
    g.rollback = run.snapshot(run.it + 1)
    g.best_loss, g.best, g.best_stage = loss, g.rollback, stage


def expire_undo(run: RunState) -> None:
    if run.guard.undo is not None and run.it - run.guard.undo["it"] >= UNDO_WINDOW:
        run.guard.undo = None
