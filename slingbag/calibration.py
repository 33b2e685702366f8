"""Acquisition parameters learned with the cloud: sound speed, time offset, per-sensor
gains and a parametric sensor response (issue: calibration by gradient).

The radiator's backward pass gives d(loss)/d(sound speed) and d/d(t0); gains and the
response sit after the radiator (``signals = gain * (response * radiator)``), so their
gradients come from the same residual.
"""

from __future__ import annotations

import copy

import numpy as np

from .optim import Adam
from .response import (
    SensorResponse,
    apply_response,
    correlate_response,
    response_parameter_gradients,
)


def build_response(cfg: dict, acq) -> SensorResponse | None:
    r = cfg["response"]
    if r["kind"] == "file":
        if acq.impulse_response is None:
            from .errors import InputError

            raise InputError(
                acq.source,
                "sensors/impulse_response",
                'a measured response for response.kind = "file"',
                "none",
            )
        return SensorResponse(acq.fs, kernel=acq.impulse_response)
    if r["kind"] == "bandpass":
        return SensorResponse(acq.fs, centre=float(r["centre"]), bandwidth=float(r["bandwidth"]))
    return None


class Calibration:
    """The learnable acquisition parameters and their Adam state."""

    def __init__(self, acq, cfg: dict):
        self.learn = set(cfg["calibrate"]["params"])
        self.rates = cfg["calibrate"]
        self.fs = acq.fs
        self.sound_speed = np.array([acq.sound_speed], np.float64)
        self.t0 = np.array([acq.t0], np.float64)
        self.gain = np.ones(acq.n_sensors, np.float64)
        self.response = build_response(cfg, acq)
        p = self.response is not None and self.response.parametric
        self.centre = np.array([self.response.centre if p else 0.0])
        self.bandwidth = np.array([self.response.bandwidth if p else 0.0])
        self.moments = {}
        self.adam = Adam()
        self._grads = {}

    @property
    def needs_scalars(self) -> bool:
        return bool(self.learn & {"sound_speed", "t0"})

    @property
    def c(self) -> float:
        return float(self.sound_speed[0])

    @property
    def time0(self) -> float:
        return float(self.t0[0])

    def model(self, raw: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Radiator signals -> what the sensors record."""
        out = apply_response(raw, self.response)
        if "gain" in self.learn:
            out = out * self.gain[sensors, None].astype(np.float32)
        return out

    def adjoint(self, raw: np.ndarray, grad: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Gradient with respect to the radiator signals; keeps the gain and response
        gradients for :meth:`step`."""
        self._grads = {}
        if "gain" in self.learn:
            g = np.zeros_like(self.gain)
            g[sensors] = (grad.astype(np.float64) * apply_response(raw, self.response)).sum(1)
            self._grads["gain"] = g
            grad = grad * self.gain[sensors, None].astype(np.float32)
        if "response" in self.learn:
            rg = response_parameter_gradients(raw, grad, self.response)
            self._grads["centre"] = np.array([rg["centre"]])
            self._grads["bandwidth"] = np.array([rg["bandwidth"]])
        return correlate_response(grad, self.response)

    def step(self, radiator_grads: dict, factor: float) -> None:
        """One Adam step on the learned parameters (``factor``: decay x divergence scale)."""
        grads = dict(self._grads)
        lrs = {}
        if "sound_speed" in self.learn:
            grads["sound_speed"] = np.array([radiator_grads["sound_speed"]])
            lrs["sound_speed"] = self.rates["lr_sound_speed"] * factor
        if "t0" in self.learn:
            grads["t0"] = np.array([radiator_grads["t0"]])
            lrs["t0"] = self.rates["lr_t0"] / self.fs * factor
        if "gain" in self.learn:
            lrs["gain"] = self.rates["lr_gain"] * factor
        if "response" in self.learn:
            r = self.rates["lr_response"] * factor
            lrs["centre"] = r * float(self.centre[0])
            lrs["bandwidth"] = r * float(self.bandwidth[0])
        if not lrs:
            return
        self.adam.step(self, grads, lrs)
        if "gain" in self.learn:
            # Gains are relative: the cloud's amplitude carries the overall scale.
            np.clip(self.gain, 0.05, None, out=self.gain)
            self.gain /= self.gain.mean()
        if "response" in self.learn:
            self.centre[0] = np.clip(self.centre[0], 0.01 * self.fs, 0.45 * self.fs)
            self.bandwidth[0] = np.clip(self.bandwidth[0], 0.05, 2.0)
            self.response = SensorResponse(
                self.fs, centre=float(self.centre[0]), bandwidth=float(self.bandwidth[0])
            )

    def snapshot(self):
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "rates"})

    def restore(self, snap) -> None:
        self.__dict__.update(copy.deepcopy(snap))

    def report(self) -> dict:
        """Values for the result's attributes and history."""
        out = {}
        if "sound_speed" in self.learn:
            out["sound_speed"] = self.c
        if "t0" in self.learn:
            out["t0"] = self.time0
        if "gain" in self.learn:
            out["gain"] = self.gain.copy()
        if "response" in self.learn:
            out["response_centre"] = float(self.centre[0])
            out["response_bandwidth"] = float(self.bandwidth[0])
        return out
