"""What a reconstruction pass decides once, before its first iteration.

:func:`make_plan` fixes the signal scale, the region, the output spacing, the stages'
lengths, the sensor batch, the bands the stages compare in, the density strategy, the
ceiling on ball sizes and what the array sees of the sound speed and t0; the result is a
frozen :class:`Plan` that the loop only reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np

from ..core.acquisition import Acquisition
from ..core.config import to_toml
from ..core.geometry import parse_region
from ..errors import InputError, ReconstructionError
from .density import DensityStrategy
from .objective import Objective, stage_lowpass
from .params import TIMING, build_response, response_kind, timing_params
from .timing import expected_errors, timing_tradeoff

log = logging.getLogger("slingbag")

#: Sensors per iteration beyond which a random subset is drawn (``loss.batch_sensors = 0``).
AUTO_BATCH = 256


@dataclass(frozen=True)
class Plan:
    """A pass's fixed decisions (see :func:`make_plan`); lengths in metres, the signals
    ``meas`` scaled to unit peak (``scale`` undoes it)."""

    cfg: dict
    acq: Acquisition
    meas: np.ndarray
    scale: float
    res: float
    model: str
    seed: int
    lo: np.ndarray
    hi: np.ndarray
    out_spacing: float
    n_coarse: int
    n_fine: int
    batch: int
    fine_batch: int
    l1_relative: float
    density: DensityStrategy
    objectives: dict
    sigma_max: float | None
    tradeoff: dict | None

    @property
    def n_total(self) -> int:
        return self.n_coarse + self.n_fine

    def stage(self, it: int) -> str:
        return "coarse" if it < self.n_coarse else "fine"

    def decay(self, it: int) -> float:
        """The fine stage's learning-rate decay at iteration ``it`` of the run."""
        f = self.cfg["fine"]
        fine_it = it - self.n_coarse
        return f["decay"] ** (max(fine_it, 0) // max(int(f["decay_every"]), 1))

    def learning_rates(self, it: int, p0_unit: float, lr_scale: float) -> dict:
        """Adam step sizes of the cloud's parameters at iteration ``it``."""
        res = self.res
        if self.stage(it) == "coarse":
            c = self.cfg["coarse"]
            k = lr_scale
            return {"p0": c["lr_p0"] * p0_unit * k, "sigma": c["lr_sigma"] * res * k, "xyz": 0.0}
        f = self.cfg["fine"]
        k = self.decay(it) * lr_scale
        return {
            "p0": f["lr_p0"] * p0_unit * k,
            "sigma": f["lr_sigma"] * res * k,
            "xyz": f["lr_xyz"] * res * k,
        }

    def sensors(self, rng, stage: str) -> np.ndarray:
        """The sensors of an iteration of ``stage``: all, or a random batch (sorted)."""
        n = self.acq.n_sensors
        batch = self.fine_batch if stage == "fine" else self.batch
        if 0 < batch < n:
            return np.sort(rng.choice(n, batch, replace=False))
        return np.arange(n)

    def largest_sigma(self, response, sound_speed, say=False) -> float | None:
        return largest_sigma(self.cfg, response, sound_speed, self.res, say)

    def fingerprint(self) -> str:
        """A digest of what a checkpoint of this pass must have been written for: the
        signals, the sensor positions, the timing values, the stages' lengths, the seed
        and the configuration (less the number of calibration passes: a checkpoint of a
        run with more passes resumes into this run's last one)."""
        h = hashlib.sha256()
        for a in (self.meas, self.acq.positions):
            h.update(np.ascontiguousarray(a).tobytes())
        cfg = copy.deepcopy(self.cfg)
        cfg["calibrate"].pop("passes", None)
        a = self.acq
        run = [a.fs, a.sound_speed, a.t0, self.n_coarse, self.n_fine, self.seed]
        h.update(json.dumps([*run, to_toml(cfg)]).encode())
        return h.hexdigest()


def make_plan(
    acq: Acquisition, cfg: dict, *, region, spacing, iterations, seed, say_timing=True
) -> Plan:
    """The :class:`Plan` of one pass over ``acq`` (at its sound speed and t0) with the
    configuration ``cfg`` (already through :func:`adapt_to_response`)."""
    res = float(cfg["region"]["res"])
    scale = signal_scale(acq.signals, acq.source)
    meas = (acq.signals / scale).astype(np.float32)
    lo, hi = resolve_region(region, cfg, acq, res)
    out_spacing = output_spacing(cfg, spacing)
    need = estimate_memory(acq, cfg, lo, hi, out_spacing)
    check_memory(need)
    log.info("memory estimate: %.2f GiB", need / 2**30)
    n_coarse, n_fine = _stage_lengths(cfg, iterations)
    response = build_response(cfg, acq)
    tradeoff = None
    if timing_params(cfg):
        # What the array sees of the sound speed and t0 here: said once, and the steps
        # sized to it (every pass, as the carried region moves).
        tradeoff = timing_tradeoff(acq.positions, lo, hi, acq.sound_speed, acq.fs)
        if say_timing:
            say_tradeoff(tradeoff, timing_params(cfg), acq.fs)
    model = cfg["output"]["model"]
    return Plan(
        cfg=cfg,
        acq=acq,
        meas=meas,
        scale=scale,
        res=res,
        model=model,
        seed=int(cfg["init"]["seed"] if seed is None else seed),
        lo=lo,
        hi=hi,
        out_spacing=out_spacing,
        n_coarse=n_coarse,
        n_fine=n_fine,
        batch=batch_size(int(cfg["loss"]["batch_sensors"]), acq.n_sensors),
        fine_batch=fine_batch_size(cfg, acq.n_sensors, acq.n_samples),
        l1_relative=l1_relative_weight(cfg, response is not None, acq.n_sensors),
        density=DensityStrategy.from_config(cfg, res),
        objectives=stage_objectives(acq, meas, cfg, res, model),
        sigma_max=largest_sigma(cfg, response, acq.sound_speed, res, say=True),
        tradeoff=tradeoff,
    )


def _stage_lengths(cfg: dict, iterations) -> tuple[int, int]:
    n_coarse, n_fine = int(cfg["coarse"]["iterations"]), int(cfg["fine"]["iterations"])
    if iterations is not None:
        total = max(int(iterations), 1)
        share = n_coarse / max(n_coarse + n_fine, 1)
        n_coarse = int(round(total * share))
        n_fine = total - n_coarse
    return n_coarse, n_fine


def stage_objectives(acq, meas, cfg, res, model) -> dict:
    """The data as each stage compares them: the coarse stage may fit a smoother version
    (big structure first), the fine stage the preset's band.  Equal widths share one
    :class:`~slingbag.fit.objective.Objective` (one copy of the filtered data)."""
    widths = {stage: stage_lowpass(cfg, stage, acq, meas, res) for stage in ("coarse", "fine")}
    if widths["coarse"] < (float(cfg["loss"]["lowpass_coarse"]) or widths["fine"]):
        log.info(
            "coarse-stage low-pass narrowed to %.2f (from %g): the data's band lies above it",
            widths["coarse"],
            float(cfg["loss"]["lowpass_coarse"]),
        )
    by_width = {
        width: Objective.build(acq, meas, cfg, res, model, lowpass_width=width)
        for width in set(widths.values())
    }
    return {stage: by_width[width] for stage, width in widths.items()}


def signal_scale(signals: np.ndarray, source) -> float:
    """The signals' peak, the loop's unit of amplitude (refusing NaN, Inf and silence)."""
    if not np.all(np.isfinite(signals)):
        raise InputError(source, "signals", "finite values", "NaN or Inf")
    peak = float(np.abs(signals).max())
    if peak == 0:
        raise InputError(source, "signals", "a non-zero signal", "all zeros")
    return peak


def resolve_response_kind(cfg: dict, acq: Acquisition) -> dict:
    """The configuration with ``response.kind = "auto"`` made ``"file"`` or ``"none"``
    (said in the log when the file's response goes into the model); others unchanged."""
    if cfg["response"]["kind"] != "auto":
        return cfg
    out = copy.deepcopy(cfg)
    out["response"]["kind"] = response_kind(cfg, acq)
    if out["response"]["kind"] == "file":
        log.info(
            "sensor response in the model: the file's sensors/impulse_response (%d taps); "
            "--response none leaves it out",
            np.shape(acq.impulse_response)[-1],
        )
    return out


def adapt_to_response(cfg: dict, acq: Acquisition) -> dict:
    """The configuration, with ``region.res`` made finer when the sensor response in the
    model hides balls of the sizes the preset works with.

    Ball sizes run from ``density.prune_sigma`` res up; the response makes balls above
    :meth:`~slingbag.model.response.SensorResponse.largest_visible_sigma` all but invisible.
    When that is below twice the smallest kept size, res shrinks until it is not (a 4 MHz
    band at 1,500 m/s: 0.12 mm).  The input is not modified.

    ``response.kind = "auto"`` becomes ``"file"`` when the acquisition holds an impulse
    response and ``"none"`` otherwise, so the configuration recorded with a result says
    which model was fitted.
    """
    cfg = resolve_response_kind(cfg, acq)
    response = build_response(cfg, acq)
    if response is None:
        return cfg
    res = float(cfg["region"]["res"])
    visible = response.largest_visible_sigma(acq.sound_speed)
    fine = visible / (2.0 * float(cfg["density"]["prune_sigma"]))
    if fine >= res:
        return cfg
    log.info(
        "region.res %.3g mm -> %.3g mm: the sensor response's band (centre %.3g MHz) hides "
        "balls above %.3g mm",
        res * 1e3,
        fine * 1e3,
        response.band_centre() / 1e6,
        visible * 1e3,
    )
    out = copy.deepcopy(cfg)
    out["region"]["res"] = fine
    return out


def largest_sigma(cfg, response, sound_speed, res, say=False) -> float | None:
    """Ceiling on ball sizes: none for broadband data, else the largest ball the sensor
    response in the model lets the data see, but never below twice the prune size (the
    balls would be pruned as they shrink; :func:`adapt_to_response` has made res fine
    enough that this floor binds only after the sound speed or response moved a little)."""
    if response is None:
        return None
    visible = response.largest_visible_sigma(sound_speed)
    floor = 2.0 * float(cfg["density"]["prune_sigma"]) * res
    if say:
        log.info(
            "ball sizes capped at %.3g mm: larger ones are all but invisible through the "
            "sensor response%s",
            visible * 1e3,
            " (so none is split)" if visible < float(cfg["density"]["split_sigma"]) * res else "",
        )
    return max(visible, floor)


def l1_relative_weight(cfg: dict, band_limited: bool, n_sensors: int) -> float:
    """The L1 weight of a pass, relative to the data term's first p0 gradient:
    ``loss.l1_band_limited`` with a sensor response in the model; else ``loss.l1`` on
    arrays of up to ``loss.l1_sensors`` sensors, times ``sqrt(l1_sensors / n_sensors)``
    on larger ones (0: never scaled).  ``n_sensors`` counts the channels kept after
    conditioning.

    The data term is a mean over sensors, so its gradient has the same size on any
    array, while what the data leave undecided (the clouds that fit them about equally,
    among which the prior picks the sparsest) shrinks as sensors are added; the fine
    stage reads them all (up to ``fine.batch_samples``).  Through a transducer's band it
    does not: the smooth structure the band hides is hidden from every sensor alike.
    """
    if band_limited:
        return float(cfg["loss"]["l1_band_limited"])
    base = float(cfg["loss"]["l1"])
    ref = float(cfg["loss"]["l1_sensors"])
    if ref <= 0 or n_sensors <= ref:
        return base
    return base * float(np.sqrt(ref / n_sensors))


def batch_size(setting: int, n_sensors: int) -> int:
    """Sensors per iteration: the setting, or (0) all of them up to AUTO_BATCH and a
    random AUTO_BATCH beyond, which keeps large arrays' iterations affordable."""
    if setting > 0:
        return min(setting, n_sensors)
    return min(n_sensors, AUTO_BATCH)


def fine_batch_size(cfg: dict, n_sensors: int, n_samples: int) -> int:
    """Sensors per fine-stage iteration: as many as ``fine.batch_samples`` samples of
    records hold (all of them when they fit), never fewer than the coarse stage's batch.

    At the clouds the fine stage refines (a few thousand balls) an iteration's cost is
    mostly the records' filtering and residuals, so a budget in samples keeps it
    bounded on any array.  ``fine.batch_samples = 0``: the coarse stage's batch.
    """
    coarse = batch_size(int(cfg["loss"]["batch_sensors"]), n_sensors)
    budget = int(cfg["fine"]["batch_samples"])
    if budget <= 0:
        return coarse
    return min(n_sensors, max(coarse, budget // max(int(n_samples), 1)))


def resolve_region(region, cfg, acq, res):
    """``(lo, hi)`` in metres: ``region`` as given (checked against the time window), the
    preset's bounds, or inferred from the array and the signals."""
    if region is None and cfg["region"]["bounds"]:
        region = cfg["region"]["bounds"]
    if region is None:
        from ..core.region import infer_region

        return infer_region(acq, res, float(cfg["region"]["margin"]))
    lo, hi = parse_region(region)
    check_region_in_window(acq, lo, hi)
    return lo, hi


def check_region_in_window(acq, lo, hi) -> None:
    """Refuse a region no recorded sample can see: for most sensors, the box's distance
    range must overlap the distances the time window covers, ``c * [t0, t_end]``."""
    pos = acq.positions
    near = np.linalg.norm(pos - np.clip(pos, lo, hi), axis=1)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    far = np.linalg.norm(pos[:, None, :] - corners[None], axis=2).max(axis=1)
    c = acq.sound_speed
    t_end = acq.t0 + (acq.n_samples - 1) / acq.fs
    seen = (far >= c * acq.t0) & (near <= c * t_end)
    if seen.mean() < 0.5:
        raise InputError(
            "--region",
            None,
            f"a box within the distances the time window covers ({c * acq.t0 * 1e3:.1f} to "
            f"{c * t_end * 1e3:.1f} mm from the sensors)",
            f"{seen.sum()} of {len(seen)} sensors can see it",
            hint="check the region's units and position, t0 and the sound speed",
        )


def output_spacing(cfg: dict, spacing: float | None = None) -> float:
    """The output grid's voxel spacing: ``spacing`` if given, else ``output.spacing``, else
    the smallest ball the fit keeps (``density.prune_sigma`` res).  A coarser grid would
    blur those balls before anyone looks at them: on the independent benchmark's vessels a
    grid of 1 res instead of 0.5 res costs 0.01-0.03 SSIM(MAP-z) (docs/results.md)."""
    res = float(cfg["region"]["res"])
    smallest = float(cfg["density"]["prune_sigma"]) * res
    return float(spacing or cfg["output"]["spacing"] or min(smallest, res))


def estimate_memory(acq: Acquisition, cfg: dict, lo, hi, spacing: float) -> int:
    """Bytes a run needs at its peak: signal-sized work arrays, the largest cloud with its
    Adam moments and three snapshots of both (rollback, best, and the state before the last
    density step), the back-projection used to start, and the output grid."""
    signals = acq.n_sensors * acq.n_samples * 4 * 8  # measured, simulated, residual, grads...
    state = 5 * 4 + 5 * 8 * 2  # float32 params and float64 Adam moments
    per_ball = 4 * state + 64  # live state, three snapshots, density work
    balls = int(cfg["density"]["max_balls"]) * per_ball
    res = float(cfg["region"]["res"])
    n_init = float(np.prod(np.asarray(hi) - lo) / res**3)
    n_out = float(np.prod(np.asarray(hi) - lo) / spacing**3)
    return int(signals + balls + n_init * 4 * 3 + n_out * 4 * 2)


def check_memory(need: int) -> None:
    import psutil

    avail = psutil.virtual_memory().available
    if need > 0.9 * avail:
        raise ReconstructionError(
            f"this run needs about {need / 2**30:.1f} GiB but {avail / 2**30:.1f} GiB is "
            "free: lower density.max_balls, use a coarser --spacing or a smaller --region"
        )


def say_tradeoff(t: dict, params: list, fs: float) -> None:
    """Log what the array lets the calibration resolve (see ``timing_tradeoff``)."""
    e = expected_errors(t, fs)
    if params != list(TIMING):
        one = (
            f"~{e['sound_speed']:.1f} m/s (t0 known)"
            if params == ["sound_speed"]
            else f"~{e['t0'] * 1e9:.0f} ns (sound speed known)"
        )
        log.info("on this array expect the calibrated %s to be off by %s", params[0], one)
        return
    msg = (
        f"sound speed and t0 trade off on this array: +1 m/s is taken up by "
        f"{t['t0_per_ms'] * 1e9:+.1f} ns of t0 and moves of the sources, leaving "
        f"{t['residual'] * 1e9:.2f} ns rms ({t['residual_samples']:.3f} samples)"
    )
    alone = (
        f"either alone: ~{e['sound_speed']:.1f} m/s with t0 known, ~{e['t0'] * 1e9:.0f} ns "
        f"with the sound speed known"
    )
    # Warned about past 2 m/s, the accuracy the calibration is asked for.
    if e["joint_sound_speed"] <= 2.0:
        log.info(
            "%s; expect ~%.1f m/s and ~%.0f ns (%s)",
            msg,
            e["joint_sound_speed"],
            e["joint_t0"] * 1e9,
            alone,
        )
        return
    log.warning(
        "%s: the joint estimate may slide along that line by ~%.0f m/s and ~%.0f ns (%s); "
        "if either is known, calibrate only the other",
        msg,
        e["joint_sound_speed"],
        e["joint_t0"] * 1e9,
        alone,
    )
