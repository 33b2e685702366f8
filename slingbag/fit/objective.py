"""The objective :func:`slingbag.reconstruct` minimises, in one place.

The loop (:mod:`slingbag.fit.loop`) and the public :func:`slingbag.loss_and_grad`
both evaluate it through :class:`Objective` and :func:`add_l1`: the cloud's signals
through the sensor model (response, gains) and a zero-phase low-pass, compared with the
low-passed measured signals, relative to their energy; plus an L1 penalty on p0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.acquisition import Acquisition
from ..model.radiator import Faces, backward_signals, faces_of, forward_signals
from ..model.response import SensorResponse, apply_response, correlate_response


def lowpass(cfg: dict, res: float, acq: Acquisition, width=None) -> SensorResponse | None:
    """The zero-phase Gaussian both model and data pass through before they are compared:
    ``width`` (default ``loss.lowpass``) times the smallest ball's own pulse length (None
    when 0)."""
    width = float(cfg["loss"]["lowpass"] if width is None else width)
    if width <= 0:
        return None
    tau = width * float(cfg["density"]["prune_sigma"]) * res / acq.sound_speed  # seconds
    half = max(int(np.ceil(4 * tau * acq.fs)), 1)
    t = np.arange(-half, half + 1) / acq.fs
    taps = np.exp(-0.5 * (t / tau) ** 2)
    return SensorResponse(acq.fs, kernel=taps / taps.sum(), kernel_offset=half)


# The coarse stage must see at least this share of what the fine stage sees of the data.
COARSE_ENERGY_FLOOR = 0.05


def stage_lowpass(cfg: dict, stage: str, acq=None, meas=None, res=None) -> float:
    """The low-pass width a stage compares through: ``loss.lowpass_coarse`` (when set) in
    the coarse stage, ``loss.lowpass`` in the fine one.

    Given the acquisition, its measured signals ``meas`` and ``res``, the coarse width is
    narrowed (never below the fine one) until the coarse view keeps
    :data:`COARSE_ENERGY_FLOOR` of the fine view's energy: band-passed records (a
    transducer's band above the coarse low-pass) would otherwise show the coarse stage
    nothing, and its prior would prune every ball.  Records with their low frequencies
    keep 15-70 % at the default width, so it binds only on band-passed data.
    """
    if stage not in ("coarse", "fine"):
        raise ValueError(f"stage must be 'coarse' or 'fine', got {stage!r}")
    fine = float(cfg["loss"]["lowpass"])
    coarse = float(cfg["loss"]["lowpass_coarse"]) or fine
    if stage == "fine" or meas is None or coarse <= fine or fine <= 0:
        return fine if stage == "fine" else coarse
    x = np.asarray(meas, np.float64)
    seen = float(np.sum(apply_response(x, lowpass(cfg, res, acq, fine)) ** 2))
    while coarse > fine:
        kept = float(np.sum(apply_response(x, lowpass(cfg, res, acq, coarse)) ** 2))
        if kept >= COARSE_ENERGY_FLOOR * seen:
            break
        coarse = max(fine, 0.8 * coarse)
    return coarse


@dataclass
class Objective:
    """The data term: ``mean((L(model(raw)) - L(meas))^2) / mean(L(meas)^2)`` over the
    sensors used, where ``raw`` are the radiator's signals, ``model`` the sensor model
    (response and gains, see :class:`~slingbag.fit.params.Calibration`) and ``L`` the
    low-pass.

    Build it with :meth:`build`; ``meas`` is then the measured signals through ``L``.
    """

    positions: np.ndarray
    n_samples: int
    fs: float
    model: str
    meas: np.ndarray
    energy: float
    smooth: SensorResponse | None
    faces: Faces | None = None

    @classmethod
    def build(
        cls,
        acq: Acquisition,
        meas: np.ndarray,
        cfg: dict,
        res: float,
        model: str,
        lowpass_width=None,
    ):
        """From the measured signals ``meas`` (float32, the loop's units) of ``acq``,
        through the low-pass of ``lowpass_width`` (default ``loss.lowpass``)."""
        smooth = lowpass(cfg, res, acq, lowpass_width)
        meas = apply_response(meas, smooth)  # unchanged when there is no low-pass
        energy = float(np.mean(meas.astype(np.float64) ** 2))
        faces = faces_of(acq)
        return cls(acq.positions, acq.n_samples, acq.fs, model, meas, energy, smooth, faces)

    def data(self, xyz, p0, sigma, sensors, sensor_model, c, t0, scalars=False):
        """Data term and its gradients at the balls, over the sensors ``sensors``.

        ``sensor_model`` maps radiator signals to what the sensors record and back
        (``model(raw, sensors)``, ``adjoint(raw, grad, sensors)``).  Returns
        ``(loss, grads)``; ``grads`` (``xyz``, ``p0``, ``sigma`` and with ``scalars``
        ``sound_speed``, ``t0``) is None when the loss is not finite.
        """
        faces = None if self.faces is None else self.faces.take(sensors)
        raw = forward_signals(
            xyz, p0, sigma, self.positions[sensors], self.n_samples, self.fs, c, t0, self.model,
            faces,
        )  # fmt: skip
        resid = apply_response(sensor_model.model(raw, sensors), self.smooth) - self.meas[sensors]
        loss = float(np.mean(resid.astype(np.float64) ** 2)) / self.energy
        if not np.isfinite(loss):
            return loss, None
        grad_sim = correlate_response((2.0 / (resid.size * self.energy)) * resid, self.smooth)
        grad_raw = sensor_model.adjoint(raw, grad_sim, sensors)
        grads = backward_signals(
            xyz,
            p0,
            sigma,
            self.positions[sensors],
            grad_raw,
            self.fs,
            c,
            t0,
            self.model,
            scalars,
            faces,
        )
        return loss, grads


def add_l1(loss: float, grads: dict, p0: np.ndarray, weight: float) -> float:
    """The loss with ``weight * sum(p0)`` added; its gradient added to ``grads["p0"]``."""
    grads["p0"] = grads["p0"] + weight
    return loss + weight * float(p0.sum())
