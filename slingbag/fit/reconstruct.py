"""SlingBAG reconstruction: fit a cloud of Gaussian balls to the measured signals.

Adam on p0, sigma and (in the fine stage) positions, with adaptive density control
(:mod:`slingbag.fit.density`) between steps, then the cloud is splatted onto a voxel grid.
All lengths of a preset are in units of the region's resolution and p0 in units of the
fitted initial amplitude, so the same preset works at any scale and for any signal units.

This module is the public entry point; the fit itself lives in :mod:`slingbag.fit`: a
plan decided once per pass (``plan``), one state object (``state``), the loop
(``loop``), its divergence guard (``guard``), the density strategy (``density``) and
the calibration passes (``passes``).

Calibration in passes: a cloud built at a wrong sound speed or t0 keeps a memory of them
(structure that mimics the wrong wavefronts) that stops its own calibration short, ~10 %
of the error for the sound speed and more for t0.  A fresh cloud at the values the previous
pass learned (and in its carried region) leaves little of either, so each pass starts anew.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.acquisition import Acquisition, check_acquisition
from ..core.cloud import GaussianCloud
from ..core.conditioning import clean_acquisition, condition
from ..core.config import load_config, to_toml
from ..core.volume import Volume, grid_for_region
from .params import TIMING
from .passes import PassResult, run_passes
from .plan import adapt_to_response
from .speedcheck import check_sound_speed
from .timing import expected_errors

log = logging.getLogger("slingbag")


@dataclass
class Reconstruction:
    """The result of :func:`reconstruct`.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    cloud : GaussianCloud
        The fitted balls, p0 in the units of the input signals' pressure.
    volume : Volume
        The cloud splatted onto the output grid.
    history : dict of ndarray
        Per iteration: ``loss`` (data misfit relative to the signals' energy), ``balls``,
        ``time`` (s since start), ``stage`` (0 coarse, 1 fine); with calibration, the
        learned values and, over several passes, ``pass``.
    config : dict
        The configuration used (see :func:`slingbag.load_config`).
    attrs : dict
        Region, signal scale, timings and the like, for the result file; with
        calibration, the learned values (``calibrated_*``) and, for the sound speed and
        t0, what the array lets them be resolved to (``calibration_*``, see
        :func:`slingbag.fit.timing.timing_tradeoff` and
        :func:`~slingbag.fit.timing.expected_errors`).
    """

    cloud: GaussianCloud
    volume: Volume
    history: dict
    config: dict
    attrs: dict = field(default_factory=dict)


def reconstruct(
    acquisition: Acquisition,
    config: dict | None = None,
    *,
    region=None,
    spacing: float | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    callback=None,
    init_cloud: GaussianCloud | None = None,
) -> Reconstruction:
    """Reconstruct the initial pressure from one acquisition with SlingBAG.

    Parameters
    ----------
    acquisition : Acquisition
        Signals, sensor positions, fs, sound speed and t0.
    config : dict, optional
        From :func:`slingbag.load_config` (default preset if None).
    region : (lo, hi) or [x0, x1, y0, y1, z0, z1], optional
        Box to reconstruct in metres; inferred from the array and signal window if None.
    spacing : float, optional
        Output voxel spacing (m); default: the preset's (the region resolution).
    iterations : int, optional
        Total iterations, shared between the stages in the preset's proportion.
    seed : int, optional
        Random seed (initialisation, sensor batches, split directions).
    progress : bool
        Show a progress bar (loss, balls, it/s, ETA).
    checkpoint : path, optional
        File the full optimiser state is written to, atomically.
    checkpoint_every : int, optional
        Iterations between checkpoints (0: none); default the preset's
        ``run.checkpoint_every``.
    resume : bool
        Continue from ``checkpoint`` if it exists, exactly as the unbroken run would.
    callback : callable, optional
        Called as ``callback(iteration, loss, cloud)`` after every iteration that steps
        (not after one the divergence guard takes back): ``iteration`` is the number of
        iterations done in this calibration pass, ``loss`` the value just appended to
        ``history["loss"]``, ``cloud`` the loop's live state (copy what you keep) with
        float32 arrays ``xyz`` and ``sigma`` in metres and ``p0`` in units of the
        result's ``attrs["signal_scale"]``.
    init_cloud : GaussianCloud, optional
        Start from this cloud (e.g. the previous frame's result, p0 in signal units)
        instead of a fresh initialisation; the coarse stage is then usually set to 0
        iterations by the caller's preset.

    Returns
    -------
    Reconstruction
        The fitted cloud (p0 in the units of the signals), its volume, history and attrs.

    Notes
    -----
    Calibrating the sound speed or t0 runs ``calibrate.passes`` reconstructions in turn,
    each from a fresh cloud at the values the previous pass learned (a cloud built at
    wrong values keeps a memory of them that stops its calibration short); the result is
    the last pass's, and its history holds every pass.  A run that does not calibrate them
    first checks the file's sound speed (:mod:`slingbag.fit.speedcheck`).
    """
    channels = condition(check_acquisition(acquisition).signals)
    acquisition = clean_acquisition(acquisition, channels)
    cfg = adapt_to_response(load_config() if config is None else config, acquisition)
    extra = _before_the_run(acquisition, channels, cfg, region, seed)
    last, histories, passes = run_passes(
        acquisition, cfg, region=region, spacing=spacing, iterations=iterations, seed=seed,
        progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        resume=resume, callback=callback, init_cloud=init_cloud,
    )  # fmt: skip
    rec = _result(last, cfg, extra)
    if passes > 1:
        rec.attrs["calibration_passes"] = passes
        rec.history = _joined_histories(histories, passes - len(histories))
    return rec


def _before_the_run(acq: Acquisition, channels, cfg: dict, region, seed) -> dict:
    """Say which sensor faces are in the model and check the file's sound speed; the
    result's attributes that record both, and the channels dropped (per-sensor results,
    e.g. learned gains, follow the kept ones)."""
    attrs = {"dropped_channels": np.asarray(channels.dead, dtype=np.int64)}
    if acq.faces is not None:
        attrs["sensor_element"] = acq.element.describe()
        log.info(
            "sensor faces in the model: %s (the acquisition's element; --element overrides)",
            attrs["sensor_element"],
        )
    found = check_sound_speed(acq, cfg, region=region, seed=seed)
    if found is not None:
        attrs["sound_speed_check"] = found
    return attrs


def _result(last: PassResult, cfg: dict, extra: dict) -> Reconstruction:
    """The last pass's cloud splatted onto the output grid over the (carried) region,
    with the attributes of the result file (``extra`` among them)."""
    from ..model.voxelize import voxelize

    plan = last.plan
    origin, spc, shape = grid_for_region(last.lo, last.hi, plan.out_spacing)
    volume = voxelize(last.cloud, origin, spc, shape, model=plan.model)
    elapsed = time.perf_counter() - last.started
    log.info("done: %d balls, %d iterations in %.1f s", last.cloud.n, last.iterations, elapsed)
    attrs = {
        "method": "slingbag",
        "model": plan.model,
        "region_lo": np.asarray(last.lo, float),
        "region_hi": np.asarray(last.hi, float),
        "signal_scale": plan.scale,
        "iterations": last.iterations,
        "seconds": elapsed,
        "seed": plan.seed,
        "config": to_toml(cfg),
        # The L1 weight per unit of the cloud's p0, for slingbag.loss_and_grad(l1_weight=).
        "l1_weight": (last.l1_abs or 0.0) / plan.scale,
        **extra,
    }
    for key, val in last.learned.items():
        attrs[f"calibrated_{key}"] = val
        if key in ("sound_speed", "t0"):
            log.info("calibrated %s: %.6g", key, val)
    if plan.tradeoff is not None:
        # The joint figures only when both were learned (they describe that estimate).
        joint = all(k in last.learned for k in TIMING)
        for key, val in plan.tradeoff.items():
            if joint or key in ("sound_speed_residual", "t0_residual"):
                attrs[f"calibration_{key}"] = val
        for key, val in expected_errors(plan.tradeoff, plan.acq.fs).items():
            if joint or not key.startswith("joint"):
                attrs[f"calibration_expected_error_{key}"] = val
    return Reconstruction(
        cloud=last.cloud, volume=volume, history=last.history, config=cfg, attrs=attrs
    )


def _joined_histories(histories: list, first: int) -> dict:
    out = {}
    for key in set().union(*histories):
        parts = [
            np.asarray(h[key]) if key in h else np.full(len(h["loss"]), np.nan) for h in histories
        ]
        out[key] = np.concatenate(parts)  # NumPy keeps ints unless a pass lacks the key
    out["pass"] = np.concatenate(
        [np.full(len(h["loss"]), first + i) for i, h in enumerate(histories)]
    )
    return out
