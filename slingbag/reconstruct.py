"""SlingBAG reconstruction: fit a cloud of Gaussian balls to the measured signals.

Adam on p0, sigma and (in the fine stage) positions, with adaptive density control
(:mod:`slingbag.strategy`) between steps, then the cloud is splatted onto a voxel grid.
All lengths of a preset are in units of the region's resolution and p0 in units of the
fitted initial amplitude, so the same preset works at any scale and for any signal units.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .acquisition import Acquisition, check_acquisition
from .calibration import (
    TIMING,
    Calibration,
    build_response,
    expected_errors,
    timing_params,
    timing_tradeoff,
)
from .checkpoint import checkpoint_pass, load_checkpoint, save_checkpoint
from .cloud import GaussianCloud
from .conditioning import clean_acquisition, condition
from .config import load_config, to_toml
from .errors import InputError, ReconstructionError
from .forward import forward_signals
from .geometry import parse_region
from .objective import Objective, add_l1, stage_lowpass
from .optim import Adam
from .strategy import CloudState, DensityStrategy, prune_mask
from .volume import Volume, grid_for_region

log = logging.getLogger("slingbag")


@dataclass
class Reconstruction:
    """The result of :func:`reconstruct`.

    Attributes
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
        :func:`slingbag.calibration.timing_tradeoff` and
        :func:`~slingbag.calibration.expected_errors`).
    """

    cloud: GaussianCloud
    volume: Volume
    history: dict
    config: dict
    attrs: dict = field(default_factory=dict)


def _signal_scale(signals: np.ndarray, source) -> float:
    if not np.all(np.isfinite(signals)):
        raise InputError(source, "signals", "finite values", "NaN or Inf")
    peak = float(np.abs(signals).max())
    if peak == 0:
        raise InputError(source, "signals", "a non-zero signal", "all zeros")
    return peak


def _init_positions(cfg, acq_scaled, lo, hi, res, n_balls, rng):
    """Initial centres: where a back-projection is bright, plus a uniform share."""
    icfg = cfg["init"]
    uniform_share = 1.0 if icfg["method"] == "uniform" else float(icfg["uniform_fraction"])
    n_uni = int(round(uniform_share * n_balls))
    n_bp = n_balls - n_uni
    parts, weights = [], []
    if n_bp > 0:
        from .ubp import ubp

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


def _fit_amplitude(xyz, p0, sigma, acq, meas, model) -> float:
    """Least-squares factor that best matches the initial cloud's signals to the data."""
    sim = forward_signals(
        xyz, p0, sigma, acq.positions, acq.n_samples, acq.fs, acq.sound_speed, acq.t0, model
    ).astype(np.float64)
    ss = float((sim * sim).sum())
    if ss == 0:
        return 1.0
    alpha = float((sim * meas).sum()) / ss
    # Uncorrelated starts (uniform init) give a tiny or negative factor: fall back to
    # matching a tenth of the energy so the balls start small but not at zero.
    floor = 0.1 * np.sqrt(float((meas.astype(np.float64) ** 2).sum()) / ss)
    return max(alpha, floor)


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
        File for checkpoints; with ``checkpoint_every`` > 0 the full optimiser state is
        written there atomically every that many iterations, and ``resume=True`` continues
        from it.
    callback : callable, optional
        ``callback(iteration, loss, state)`` after every iteration.
    init_cloud : GaussianCloud, optional
        Start from this cloud (e.g. the previous frame's result, p0 in signal units)
        instead of a fresh initialisation; the coarse stage is then usually set to 0
        iterations by the caller's preset.

    Returns
    -------
    Reconstruction

    Notes
    -----
    When the sound speed or t0 is calibrated, ``calibrate.passes`` reconstructions run in
    turn, each from a fresh cloud at the values the previous pass learned (and in its
    carried region): a cloud built at wrong values keeps a memory of them (structure that
    mimics the wrong wavefronts) that stops its own calibration short, ~10 % of the error
    for the sound speed and more for t0, and a fresh start at nearly right values leaves
    little of either.  The result is the last pass's; its history holds every pass
    (``history["pass"]``).
    """
    check_acquisition(acquisition)
    channels = condition(acquisition.signals)
    acquisition = clean_acquisition(acquisition, channels)
    cfg = _adapt_to_response(load_config() if config is None else config, acquisition)
    passes = max(1, int(cfg["calibrate"]["passes"])) if timing_params(cfg) else 1
    ckpt = Path(checkpoint) if checkpoint else None
    first, acq, histories, rec = 0, acquisition, [], None
    if resume and ckpt is not None and ckpt.exists():
        # A checkpoint from a run with more passes ends in this run's last one.
        index, start = checkpoint_pass(ckpt)
        first = min(index, passes - 1)
        if start is not None:
            # The pass resumes as it ran: from the values and region the passes before
            # it had learned, with their histories.
            acq = acq.replace(sound_speed=start["sound_speed"], t0=start["t0"])
            region, histories = start["region"], start["histories"]
    for k in range(first, passes):
        last = k == passes - 1
        if passes > 1:
            log.info("calibration pass %d of %d", k + 1, passes)
        rec = _one_pass(
            acq,
            cfg,
            region=region,
            spacing=spacing,
            iterations=iterations,
            seed=seed,
            progress=progress,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume and k == first,
            callback=callback,
            init_cloud=init_cloud if last else None,
            pass_index=k,
            earlier=histories,
        )
        histories.append(rec.history)
        if not last:
            acq = acq.replace(
                sound_speed=float(rec.attrs.get("calibrated_sound_speed", acq.sound_speed)),
                t0=float(rec.attrs.get("calibrated_t0", acq.t0)),
            )
            region = (rec.attrs["region_lo"], rec.attrs["region_hi"])
            log.info(
                "pass %d: sound speed %.2f m/s, t0 %.1f ns; next pass starts afresh there",
                k + 1,
                acq.sound_speed,
                acq.t0 * 1e9,
            )
    # Per-sensor results (e.g. learned gains) follow the kept channels.
    rec.attrs["dropped_channels"] = np.asarray(channels.dead, dtype=np.int64)
    if passes > 1:
        rec.attrs["calibration_passes"] = passes
        rec.history = _joined_histories(histories, passes - len(histories))
    return rec


def _say_tradeoff(t: dict, params: list, fs: float) -> None:
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


def _one_pass(
    acquisition: Acquisition,
    config: dict,
    *,
    region,
    spacing,
    iterations,
    seed,
    progress,
    checkpoint,
    checkpoint_every,
    resume,
    callback,
    init_cloud,
    pass_index: int,
    earlier: list = (),
) -> Reconstruction:
    """One reconstruction of :func:`reconstruct` at the acquisition's sound speed and t0."""
    cfg = config
    acq = acquisition
    res = float(cfg["region"]["res"])
    model = cfg["output"]["model"]
    seed = int(cfg["init"]["seed"] if seed is None else seed)
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()

    scale = _signal_scale(acq.signals, acq.source)
    meas = (acq.signals / scale).astype(np.float32)
    acq_scaled = acq.replace(signals=meas)

    lo, hi = _resolve_region(region, cfg, acq, res)
    out_spacing = float(spacing or cfg["output"]["spacing"] or res)
    need = estimate_memory(acq, cfg, lo, hi, out_spacing)
    _check_memory(need)
    log.info("memory estimate: %.2f GiB", need / 2**30)
    strategy = DensityStrategy.from_config(cfg, res, lo, hi)
    n_coarse, n_fine = int(cfg["coarse"]["iterations"]), int(cfg["fine"]["iterations"])
    if iterations is not None:
        total = max(int(iterations), 1)
        share = n_coarse / max(n_coarse + n_fine, 1)
        n_coarse = int(round(total * share))
        n_fine = total - n_coarse
    n_total = n_coarse + n_fine

    ckpt = Path(checkpoint) if checkpoint else None
    every_ckpt = int(
        cfg["run"]["checkpoint_every"] if checkpoint_every is None else checkpoint_every
    )
    # How this calibration pass started, for a resume inside it (see `reconstruct`).
    pass_start = None
    if timing_params(cfg):
        pass_start = {
            "sound_speed": acquisition.sound_speed,
            "t0": acquisition.t0,
            "region": region,
            "histories": list(earlier),
        }
    cal = Calibration(acq, cfg)
    tradeoff = None
    if cal.timing:
        # What the array sees of the sound speed and t0 here: said once, and the steps
        # sized to it (every pass, as the carried region moves).
        tradeoff = timing_tradeoff(acq.positions, lo, hi, acq.sound_speed, acq.fs)
        if pass_index == 0:
            _say_tradeoff(tradeoff, cal.timing, acq.fs)
        steps = cal.scale_rates(tradeoff)
        scaled = {k: v for k, v in steps.items() if k in cal.timing and v < 1.0}
        if pass_index == 0 and scaled:
            log.info(
                "calibration steps scaled to what this array sees of the region: %s",
                ", ".join(f"{k} x{v:.2f}" for k, v in scaled.items()),
            )
    sigma_max = _largest_sigma(cfg, cal.response, acq.sound_speed, res, say=True)
    history = {"loss": [], "balls": [], "time": [], "stage": []}
    resumed = None  # the loop's state from a checkpoint
    if resume and ckpt is not None and ckpt.exists():
        state, adam, it0, p0_unit, lr_scale, retries, history, rng, resumed = load_checkpoint(ckpt)
        log.info("resumed from %s at iteration %d", ckpt, it0)
    else:
        if init_cloud is not None and init_cloud.n > 0:
            xyz = np.asarray(init_cloud.xyz, np.float64)
            sigma = np.asarray(init_cloud.sigma, np.float64)
            p0 = np.asarray(init_cloud.p0, np.float64) / scale
        else:
            n0 = _initial_count(cfg, lo, hi, res)
            xyz, w = _init_positions(cfg, acq_scaled, lo, hi, res, n0, rng)
            sigma = rng.uniform(*cfg["init"]["sigma"], len(w)) * res
            sigma = np.minimum(sigma, sigma_max or np.inf)
            alpha = _fit_amplitude(xyz, w, sigma, acq_scaled, meas, model)
            p0 = w * alpha
        p0_unit = float(np.median(p0))
        state = CloudState(xyz.astype(np.float32), p0.astype(np.float32), sigma.astype(np.float32))
        adam = Adam()
        it0, lr_scale, retries = 0, 1.0, 0
        log.info(
            "initial cloud: %d balls (%s), res %.3g mm, amplitude unit %.3g",
            state.n,
            "warm start" if init_cloud is not None else cfg["init"]["method"],
            res * 1e3,
            p0_unit * scale,
        )

    # The data as each stage compares them: the coarse stage may fit a smoother version
    # (big structure first), the fine stage the preset's band.
    widths = {stage: stage_lowpass(cfg, stage, acq, meas, res) for stage in ("coarse", "fine")}
    if widths["coarse"] < (float(cfg["loss"]["lowpass_coarse"]) or widths["fine"]):
        log.info(
            "coarse-stage low-pass narrowed to %.2f (from %g): the data's band lies above it",
            widths["coarse"],
            float(cfg["loss"]["lowpass_coarse"]),
        )
    # One objective per band: equal widths share one copy of the filtered data.
    by_width = {
        width: Objective.build(acq, meas, cfg, res, model, lowpass_width=width)
        for width in set(widths.values())
    }
    objectives = {stage: by_width[width] for stage, width in widths.items()}
    if cal.needs_scalars:
        cal.set_region(lo, hi)
    if resumed is not None:
        cal.restore(resumed["cal"])
        _follow_region(strategy, cal)
    batch = _batch_size(int(cfg["loss"]["batch_sensors"]), acq.n_sensors)
    l1 = float(cfg["loss"]["l1" if cal.response is None else "l1_band_limited"])
    l1_abs = None
    best = (np.inf, None)
    best_fit = np.inf  # lowest data misfit so far (the loss less any L1 term)
    snapshot = _snapshot(state, adam, it0, lr_scale, cal)
    if resumed is not None:
        # The L1 weight, the best state and the rollback snapshot as the unbroken run
        # has them, so a resumed run steps (and rolls back) exactly as it would.
        l1_abs, best_fit = resumed["l1_abs"], resumed["best_fit"]
        best, snapshot = tuple(resumed["best"]), resumed["snapshot"]
    undo = None  # the state just before the last density step, while it may be undone
    ckpt_due = False
    bar = _progress(n_total, it0, progress)
    it = it0
    try:
        while it < n_total:
            stage = "coarse" if it < n_coarse else "fine"
            # The fine band's misfit starts a few times above the coarse band's, far below
            # the divergence guard's factor, so the guard's reference carries over.
            objective = objectives[stage]
            if state.n == 0:
                raise ReconstructionError(
                    "every ball was pruned: the signals may be too weak for the preset's "
                    "thresholds, or the region misses the sources (check --region, "
                    "density.prune_p0 and the signal scale)"
                )
            sensors = np.arange(acq.n_sensors)
            if 0 < batch < acq.n_sensors:
                sensors = np.sort(rng.choice(acq.n_sensors, batch, replace=False))
            loss, grads = objective.data(
                state.xyz,
                state.p0,
                state.sigma,
                sensors,
                cal,
                cal.c,
                cal.time0,
                cal.needs_scalars,
            )
            if _diverged(loss, grads, best_fit, it):
                if undo is not None and it - undo["it"] < UNDO_WINDOW:
                    # The density step just before blew the loss up (e.g. a split exposing
                    # amplitude the data could not see): going back to after it would
                    # only repeat the failure, so it is undone.  The run goes on from the
                    # state just before it, so that step is skipped; the next one is due
                    # `density.every` iterations later.
                    halved = lr_scale
                    state_it, lr_scale = _roll_back(state, adam, cal, strategy, undo)
                    lr_scale = min(lr_scale, halved)
                    snapshot, undo = undo, None
                    best = (np.inf, snapshot)
                    _log_line(
                        bar,
                        f"loss {loss:.4g} at iteration {it + 1}: the density step at "
                        f"iteration {state_it} was undone",
                    )
                else:
                    retries += 1
                    if retries > int(cfg["run"]["max_retries"]):
                        log.warning(
                            "diverged %d times: stopping with the best cloud so far",
                            retries - 1,
                        )
                        if best[1] is not None:
                            _roll_back(state, adam, cal, strategy, best[1])
                        break
                    state_it, lr_scale = _roll_back(state, adam, cal, strategy, snapshot)
                    lr_scale *= 0.5
                    _log_line(
                        bar,
                        f"loss {loss:.4g} at iteration {it + 1}: rolled back to "
                        f"iteration {state_it}, learning rates halved",
                    )
                for key in history:
                    del history[key][state_it:]
                if history["balls"]:
                    history["balls"][-1] = state.n  # the undone step's count is gone too
                if bar is not None:
                    bar.n = state_it
                it = state_it
                continue
            best_fit = min(best_fit, loss)
            if l1 > 0:
                if l1_abs is None:
                    l1_abs = l1 * float(np.mean(np.abs(grads["p0"])))
                loss = add_l1(loss, grads, state.p0, l1_abs)
            lrs = _learning_rates(cfg, stage, it - n_coarse, res, p0_unit, lr_scale)
            # Acquisition parameters are learned once the cloud has taken shape: in the
            # coarse stage the balls cannot move, and a sound speed and t0 stepped then
            # slide along the valley in which they trade off against each other.
            carry = None
            if stage == "fine" and cal.needs_scalars:
                carry = cal.carry(state, acq.positions)
            adam.step(state, grads, lrs)
            if stage == "fine" and cal.learn:
                cal.step(grads, lr_scale * _decay(cfg, it - n_coarse), state, carry)
                _follow_region(strategy, cal)
            np.clip(state.p0, 0.0, None, out=state.p0)
            if "response" in cal.learn:  # the band, and so the largest visible ball, moves
                sigma_max = _largest_sigma(cfg, cal.response, cal.c, res)
            np.clip(state.sigma, 0.25 * res, sigma_max, out=state.sigma)
            if loss < best[0]:
                best = (loss, _snapshot(state, adam, it + 1, lr_scale, cal))
            counts = {}
            # None after the last iteration: balls split or duplicated then would never
            # be fitted (the final prune below still drops the faint ones).
            if it + 1 < n_total and strategy.is_due(it + 1, stage):
                before = _snapshot(state, adam, it + 1, lr_scale, cal)
                counts = strategy.step_post_backward(state, grads, it + 1, stage, rng)
            if counts:
                changed = any(counts.get(k, 0) for k in ("pruned", "split", "duplicated"))
                undo = before if changed else None
                snapshot = _snapshot(state, adam, it + 1, lr_scale, cal)
                best = (loss, snapshot)
                msg = (
                    f"it {it + 1:4d} {stage}: loss {loss:.4f}, balls {counts['before']}"
                    f" -> {counts['after']} (pruned {counts.get('pruned', 0)}, split "
                    f"{counts.get('split', 0)}, duplicated {counts.get('duplicated', 0)})"
                )
                _log_line(bar, msg)
            history["loss"].append(loss)
            history["balls"].append(state.n)
            history["time"].append(time.perf_counter() - t_start)
            history["stage"].append(0 if stage == "coarse" else 1)
            for key, val in cal.report().items():
                if np.ndim(val) == 0:
                    history.setdefault(key, []).append(val)
            it += 1
            if bar is not None:
                bar.set_postfix(
                    loss=f"{loss:.4f}", balls=f"{state.n:,}", stage=stage, refresh=False
                )
                bar.update(1)
            if callback is not None:
                callback(it, loss, state)
            if undo is not None and it - undo["it"] >= UNDO_WINDOW:
                undo = None
            ckpt_due |= ckpt is not None and every_ckpt > 0 and it % every_ckpt == 0
            # A checkpoint does not hold the undo state: it is written once the window in
            # which the last density step may be undone has closed, so a resumed run
            # steps exactly as an unbroken one.
            if ckpt_due and undo is None and it < n_total:
                ckpt_due = False
                loop = {
                    "cal": cal.snapshot(),
                    "l1_abs": l1_abs,
                    "best": best,
                    "best_fit": best_fit,
                    "snapshot": snapshot,
                    "pass": pass_index,
                    "pass_start": pass_start,
                }
                save_checkpoint(
                    ckpt, state, adam, it, p0_unit, lr_scale, retries, history, rng, cfg, loop
                )
    finally:
        if bar is not None:
            bar.close()

    # A last prune so no faint haze of balls lifts the projections (and, as at every
    # density step, no ball too small or outside the region is kept).
    final = float(cfg["density"]["final_prune_p0"])
    keep = (
        prune_mask(
            state.p0,
            state.sigma,
            state.xyz,
            p0_min=final * float(np.percentile(state.p0, 99)),
            sigma_min=strategy.prune_sigma,
            lo=strategy.lo,
            hi=strategy.hi,
        )
        if state.n
        else np.zeros(0, bool)
    )
    state.take(np.flatnonzero(keep))
    cloud = GaussianCloud(state.xyz, state.p0.astype(np.float64) * scale, state.sigma)
    if cal.region is not None:
        lo, hi = cal.region  # moved with the cloud by the sound-speed/t0 calibration
    origin, spc, shape = grid_for_region(lo, hi, out_spacing)
    from .voxelize import voxelize

    volume = voxelize(cloud, origin, spc, shape, model=model)
    elapsed = time.perf_counter() - t_start
    log.info("done: %d balls, %d iterations in %.1f s", cloud.n, it, elapsed)
    attrs = {
        "method": "slingbag",
        "model": model,
        "region_lo": np.asarray(lo, float),
        "region_hi": np.asarray(hi, float),
        "signal_scale": scale,
        "iterations": it,
        "seconds": elapsed,
        "seed": seed,
        "config": to_toml(cfg),
        # The L1 weight per unit of the cloud's p0, for slingbag.loss_and_grad(l1_weight=).
        "l1_weight": (l1_abs or 0.0) / scale,
    }
    for key, val in cal.report().items():
        attrs[f"calibrated_{key}"] = val
        if key in ("sound_speed", "t0"):
            log.info("calibrated %s: %.6g", key, val)
    if tradeoff is not None:
        # The joint figures only when both were learned (they describe that estimate).
        joint = cal.timing == list(TIMING)
        for key, val in tradeoff.items():
            if joint or key in ("sound_speed_residual", "t0_residual"):
                attrs[f"calibration_{key}"] = val
        for key, val in expected_errors(tradeoff, acq.fs).items():
            if joint or not key.startswith("joint"):
                attrs[f"calibration_expected_error_{key}"] = val
    hist = {k: np.asarray(v) for k, v in history.items()}
    return Reconstruction(cloud=cloud, volume=volume, history=hist, config=cfg, attrs=attrs)


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


def _check_memory(need: int) -> None:
    import psutil

    avail = psutil.virtual_memory().available
    if need > 0.9 * avail:
        raise ReconstructionError(
            f"this run needs about {need / 2**30:.1f} GiB but {avail / 2**30:.1f} GiB is "
            "free: lower density.max_balls, use a coarser --spacing or a smaller --region"
        )


def _diverged(loss, grads, best_loss, steps_done) -> bool:
    """A NaN/Inf loss or gradient, or a loss that explodes past 50x the best so far."""
    if not np.isfinite(loss) or grads is None:
        return True
    if any(not np.all(np.isfinite(g)) for g in grads.values() if isinstance(g, np.ndarray)):
        return True
    return steps_done > 5 and loss > 50 * max(best_loss, 1e-12)


def _resolve_region(region, cfg, acq, res):
    if region is None and cfg["region"]["bounds"]:
        region = cfg["region"]["bounds"]
    if region is None:
        from .region import infer_region

        return infer_region(acq, res, float(cfg["region"]["margin"]))
    lo, hi = parse_region(region)
    _check_region_in_window(acq, lo, hi)
    return lo, hi


def _check_region_in_window(acq, lo, hi) -> None:
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


def _initial_count(cfg, lo, hi, res) -> int:
    n = int(cfg["init"]["balls"])
    if n <= 0:
        n_vox = float(np.prod(np.maximum((np.asarray(hi) - lo) / res, 1)))
        n = int(n_vox / 40)
    return max(16, min(n, int(cfg["density"]["max_balls"])))


def _learning_rates(cfg, stage, fine_it, res, p0_unit, lr_scale) -> dict:
    if stage == "coarse":
        c = cfg["coarse"]
        return {
            "p0": c["lr_p0"] * p0_unit * lr_scale,
            "sigma": c["lr_sigma"] * res * lr_scale,
            "xyz": 0.0,
        }
    f = cfg["fine"]
    k = _decay(cfg, fine_it) * lr_scale
    return {
        "p0": f["lr_p0"] * p0_unit * k,
        "sigma": f["lr_sigma"] * res * k,
        "xyz": f["lr_xyz"] * res * k,
    }


def _follow_region(strategy, cal) -> None:
    if cal.region is not None:
        strategy.lo[:] = cal.region[0]
        strategy.hi[:] = cal.region[1]


def _adapt_to_response(cfg: dict, acq: Acquisition) -> dict:
    """The configuration, with ``region.res`` made finer when the sensor response in the
    model hides balls of the sizes the preset works with.

    Ball sizes run from ``density.prune_sigma`` res up; the response makes balls above
    :meth:`~slingbag.response.SensorResponse.largest_visible_sigma` all but invisible.
    When that is below twice the smallest kept size, res shrinks until it is not (a 4 MHz
    band at 1,500 m/s: 0.12 mm).  The input is not modified.
    """
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
    out = json.loads(json.dumps(cfg))
    out["region"]["res"] = fine
    return out


def _largest_sigma(cfg, response, sound_speed, res, say=False) -> float | None:
    """Ceiling on ball sizes: none for broadband data, else the largest ball the sensor
    response in the model lets the data see, but never below twice the prune size (the
    balls would be pruned as they shrink; :func:`_adapt_to_response` has made res fine
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


AUTO_BATCH = 256
#: Iterations after a density step in which a divergence undoes that step.
UNDO_WINDOW = 3


def _batch_size(setting: int, n_sensors: int) -> int:
    """Sensors per iteration: the setting, or (0) all of them up to AUTO_BATCH and a
    random AUTO_BATCH beyond, which keeps large arrays' iterations affordable."""
    if setting > 0:
        return min(setting, n_sensors)
    return min(n_sensors, AUTO_BATCH)


def _decay(cfg, fine_it) -> float:
    f = cfg["fine"]
    return f["decay"] ** (max(fine_it, 0) // max(int(f["decay_every"]), 1))


def _progress(total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="slingbag", unit="it", dynamic_ncols=True)


def _log_line(bar, msg):
    # Through the bar when there is one, so the line does not tear it; else to the log.
    if bar is not None:
        bar.write(msg)
    else:
        log.info(msg)


def _snapshot(state, adam, it, lr_scale, cal):
    return {
        "cal": cal.snapshot(),
        "xyz": state.xyz.copy(),
        "p0": state.p0.copy(),
        "sigma": state.sigma.copy(),
        "moments": {k: (m.copy(), v.copy()) for k, (m, v) in state.moments.items()},
        "t": adam.t,
        "it": it,
        "lr_scale": lr_scale,
    }


def _restore(state, adam, snap):
    state.xyz = snap["xyz"].copy()
    state.p0 = snap["p0"].copy()
    state.sigma = snap["sigma"].copy()
    state.moments = {k: (m.copy(), v.copy()) for k, (m, v) in snap["moments"].items()}
    adam.t = snap["t"]
    return snap["it"], snap["lr_scale"]


def _roll_back(state, adam, cal, strategy, snap):
    """Return the cloud, optimiser, calibration and (carried) region to ``snap``."""
    out = _restore(state, adam, snap)
    cal.restore(snap["cal"])
    _follow_region(strategy, cal)
    return out
