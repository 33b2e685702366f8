"""Reconstruction passes: one fit of a fresh cloud at given acquisition values, and, when
the sound speed or t0 is calibrated, several in turn, each starting at the values (and in
the carried region) the one before it learned, handed over as a :class:`PassResult`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.acquisition import Acquisition
from ..core.cloud import GaussianCloud
from .checkpoint import checkpoint_pass, load_checkpoint
from .density import prune_mask
from .init import initial_cloud
from .loop import Checkpointing, Progress, run_loop
from .params import Calibration, timing_params
from .plan import Plan, make_plan
from .state import Box, RunState

log = logging.getLogger("slingbag")


@dataclass
class PassResult:
    """What one pass hands over: the cloud (p0 in the signals' units), the region as
    carried, the history, the learned values and where the next pass starts."""

    plan: Plan
    cloud: GaussianCloud
    lo: np.ndarray
    hi: np.ndarray
    history: dict
    learned: dict
    sound_speed: float
    t0: float
    iterations: int
    l1_abs: float | None
    started: float


def run_passes(
    acquisition: Acquisition,
    cfg: dict,
    *,
    region=None,
    init_cloud=None,
    checkpoint=None,
    resume=False,
    **kw,
):
    """Every pass of a reconstruction; returns the last :class:`PassResult`, the
    histories of all passes and their number.  ``kw`` as :func:`run_pass` takes them."""
    passes = max(1, int(cfg["calibrate"]["passes"])) if timing_params(cfg) else 1
    ckpt = Path(checkpoint) if checkpoint else None
    first, acq, histories = 0, acquisition, []
    if resume and ckpt is not None and ckpt.exists():
        # A checkpoint from a run with more passes ends in this run's last one.
        index, start = checkpoint_pass(ckpt)
        first = min(index, passes - 1)
        if start is not None:
            # The pass resumes as it ran: from the values and region the passes before
            # it had learned, with their histories.
            acq = acq.replace(sound_speed=start["sound_speed"], t0=start["t0"])
            region, histories = start["region"], start["histories"]
    result = None
    for k in range(first, passes):
        last = k == passes - 1
        if passes > 1:
            log.info("calibration pass %d of %d", k + 1, passes)
        result = run_pass(
            acq, cfg, region=region, checkpoint=ckpt, resume=resume and k == first,
            init_cloud=init_cloud if last else None, pass_index=k, earlier=histories, **kw,
        )  # fmt: skip
        histories.append(result.history)
        if not last:
            acq = acq.replace(sound_speed=result.sound_speed, t0=result.t0)
            region = (result.lo, result.hi)
            log.info(
                "pass %d: sound speed %.2f m/s, t0 %.1f ns; next pass starts afresh there",
                k + 1,
                acq.sound_speed,
                acq.t0 * 1e9,
            )
    return result, histories, passes


def run_pass(
    acq: Acquisition,
    cfg: dict,
    *,
    region,
    spacing=None,
    iterations=None,
    seed=None,
    progress=True,
    checkpoint=None,
    checkpoint_every=None,
    resume=False,
    callback=None,
    init_cloud=None,
    pass_index=0,
    earlier=(),
) -> PassResult:
    """One reconstruction at the acquisition's sound speed and t0 (see
    :func:`slingbag.reconstruct` for the arguments)."""
    started = time.perf_counter()
    plan = make_plan(
        acq, cfg, region=region, spacing=spacing, iterations=iterations, seed=seed,
        say_timing=pass_index == 0,
    )  # fmt: skip
    every = int(cfg["run"]["checkpoint_every"] if checkpoint_every is None else checkpoint_every)
    start = None
    if timing_params(cfg):
        # How this calibration pass started, for a resume inside it.
        start = {
            "sound_speed": acq.sound_speed,
            "t0": acq.t0,
            "region": region,
            "histories": list(earlier),
        }
    path = Path(checkpoint) if checkpoint else None
    ckpt = Checkpointing(path, every, pass_index, start, plan.fingerprint() if path else None)
    run = start_run(plan, ckpt if resume else None, init_cloud, pass_index, started)
    bar = Progress(plan.n_total, run.it, progress)
    try:
        run_loop(run, plan, bar, callback, ckpt)
    finally:
        bar.close()
    return PassResult(
        plan=plan,
        cloud=final_cloud(run, plan),
        lo=run.box.lo,
        hi=run.box.hi,
        history={k: np.asarray(v) for k, v in run.history.items()},
        learned=run.params.report(),
        sound_speed=run.params.c,
        t0=run.params.time0,
        iterations=run.it,
        l1_abs=run.l1_abs,
        started=started,
    )


def start_run(plan: Plan, resume_from, init_cloud, pass_index: int, started: float) -> RunState:
    """The state a pass starts from: the checkpoint's of ``resume_from`` (a
    :class:`~slingbag.fit.loop.Checkpointing`) when its file exists, or a fresh (or
    given) cloud.  ``started`` (``time.perf_counter()``) is when the pass began: the
    history's times count from it."""
    params = Calibration(plan.acq, plan.cfg)
    if plan.tradeoff is not None:
        steps = params.scale_rates(plan.tradeoff)
        scaled = {k: v for k, v in steps.items() if k in params.timing and v < 1.0}
        if pass_index == 0 and scaled:
            log.info(
                "calibration steps scaled to what this array sees of the region: %s",
                ", ".join(f"{k} x{v:.2f}" for k, v in scaled.items()),
            )
    if resume_from is not None and resume_from.path is not None and resume_from.path.exists():
        run = load_checkpoint(resume_from.path, params, resume_from.fingerprint)
        run.started = started
        log.info("resumed from %s at iteration %d", resume_from.path, run.it)
        return run
    rng = np.random.default_rng(plan.seed)
    cloud, p0_unit = initial_cloud(plan, rng, init_cloud)
    box = Box(plan.lo, plan.hi)
    run = RunState(cloud=cloud, params=params, box=box, rng=rng, p0_unit=p0_unit, started=started)
    run.guard.rollback = run.snapshot()
    log.info(
        "initial cloud: %d balls (%s), res %.3g mm, amplitude unit %.3g",
        cloud.n,
        "warm start" if init_cloud is not None else plan.cfg["init"]["method"],
        plan.res * 1e3,
        p0_unit * plan.scale,
    )
    return run


def final_cloud(run: RunState, plan: Plan) -> GaussianCloud:
    """The cloud after a last prune, so no faint haze of balls lifts the projections
    (and, as at every density step, no ball too small or outside the region is kept);
    p0 back in the signals' units."""
    cloud = run.cloud
    if cloud.n:
        lo, hi = run.box.bounds32()
        final = float(plan.cfg["density"]["final_prune_p0"])
        keep = prune_mask(
            cloud.p0, cloud.sigma, cloud.xyz,
            p0_min=final * float(np.percentile(cloud.p0, 99)),
            sigma_min=plan.density.prune_sigma, lo=lo, hi=hi,
        )  # fmt: skip
        cloud.take(np.flatnonzero(keep))
    return GaussianCloud(cloud.xyz, cloud.p0.astype(np.float64) * plan.scale, cloud.sigma)
