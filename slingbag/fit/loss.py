"""The public :func:`slingbag.loss_and_grad`: the objective of :mod:`slingbag.fit.objective`
on a whole acquisition, as the reconstruction loop sets it up."""

from __future__ import annotations

import numpy as np

from ..core.acquisition import Acquisition
from ..core.cloud import GaussianCloud
from ..core.conditioning import clean_acquisition, condition
from ..core.config import load_config
from ..errors import InputError
from .objective import Objective, add_l1, stage_lowpass
from .params import Calibration
from .plan import adapt_to_response, signal_scale


def loss_and_grad(
    cloud: GaussianCloud,
    acquisition: Acquisition,
    model=None,
    *,
    scalars: bool = False,
    config: dict | None = None,
    gains=None,
    l1_weight: float = 0.0,
    stage: str = "fine",
):
    """The objective :func:`slingbag.reconstruct` minimises, and its gradient.

    The same function the reconstruction loop evaluates: the cloud's signals through the
    sensor response of ``config`` (if any), the per-sensor ``gains`` and the loss's
    zero-phase low-pass, against the measured signals through the same low-pass, as a mean
    square relative to their energy; plus ``l1_weight * sum(p0)``.  All sensors are used
    (the loop may draw a batch).  The signals are first cleaned as the loop cleans them
    (per-channel offsets removed, channels that recorded only noise left out).

    Parameters
    ----------
    cloud : GaussianCloud
        The balls, ``p0`` in the units of the signals.
    acquisition : Acquisition
        The measured signals and the array that took them.
    model : {"gaussian", "shells"}, optional
        The radiator; default the configuration's ``output.model``.
    scalars : bool
        Also return the gradients with respect to the sound speed and t0.
    config : dict, optional
        From :func:`slingbag.load_config` (default preset if None); ``region.res`` is
        adapted to the response as :func:`slingbag.reconstruct` does.
    gains : array of shape (n_sensors,), optional
        Per-sensor gains (as learned with ``calibrate.params = ["gain"]``).
    l1_weight : float
        Weight of the L1 penalty per unit of p0; a reconstruction's is its
        ``attrs["l1_weight"]``.
    stage : {"fine", "coarse"}
        Which stage's objective; the coarse stage's low-pass is ``loss.lowpass_coarse``.

    Returns
    -------
    loss : float
        The mean-square misfit relative to the signals' energy, plus the L1 term.
    grads : dict
        Its gradients: ``xyz (N, 3)``, ``p0 (N,)``, ``sigma (N,)`` as float64 arrays, and
        with ``scalars`` also ``sound_speed`` and ``t0``.

    Raises
    ------
    FloatingPointError
        When the objective is not finite at ``cloud`` (no gradient to give).
    """
    found = condition(acquisition.signals)
    acq = clean_acquisition(acquisition, found)  # as the loop sees the data
    if gains is not None:
        gains = kept_gains(gains, acquisition.n_sensors, found.keep)
    cfg = adapt_to_response(load_config() if config is None else config, acq)
    res = float(cfg["region"]["res"])
    # The loop's units: signals scaled to unit peak, p0 with them.
    scale = signal_scale(acq.signals, acq.source)
    meas = (acq.signals / scale).astype(np.float32)
    width = stage_lowpass(cfg, stage, acq, meas, res)
    obj = Objective.build(acq, meas, cfg, res, model or cfg["output"]["model"], width)
    sensor_model = Calibration(acq, cfg)
    if gains is not None:
        sensor_model.use_gains(gains)
    p0 = np.asarray(cloud.p0, np.float64) / scale
    sensors = np.arange(acq.n_sensors)
    loss, g = obj.data(
        cloud.xyz, p0, cloud.sigma, sensors, sensor_model, acq.sound_speed, acq.t0, scalars
    )
    if g is None:
        raise FloatingPointError("the objective is not finite at this cloud")
    if l1_weight:
        loss = add_l1(loss, g, p0.astype(np.float32), float(l1_weight) * scale)
    out = {k: (np.asarray(v, np.float64) if isinstance(v, np.ndarray) else v) for k, v in g.items()}
    out["p0"] = out["p0"] / scale
    return loss, out


def kept_gains(gains, n_sensors: int, keep: np.ndarray) -> np.ndarray:
    """Per-sensor ``gains`` for the channels the conditioning kept: one per sensor of the
    file (the dropped ones are then left out) or already one per kept channel."""
    gains = np.asarray(gains, np.float64).ravel()
    if len(gains) == n_sensors:
        return gains[keep]
    if len(gains) != len(keep):
        raise InputError(
            "loss_and_grad",
            "gains",
            f"one gain per sensor ({n_sensors}) or per kept channel ({len(keep)})",
            got=f"{len(gains)} values",
        )
    return gains
