"""Acquisition parameters learned with the cloud, as groups with their own step sizes
and Adam moments: the timing (sound speed and t0, with the carry of the cloud and the
region), per-sensor gains and a parametric sensor response.

The radiator's backward pass gives d(loss)/d(sound speed) and d/d(t0); gains and the
response sit after the radiator (``signals = gain * (response * radiator)``), so their
gradients come from the same residual.  :class:`Calibration` holds the three groups and
is the sensor model the objective evaluates through.
"""

from __future__ import annotations

import copy

import numpy as np

from ..model.response import (
    SensorResponse,
    apply_response,
    correlate_response,
    response_parameter_gradients,
)
from .optim import Adam
from .timing import REF_SOUND_SPEED_SAMPLES, REF_T0_RATIO, carry_jacobians


def response_kind(cfg: dict, acq) -> str:
    """``response.kind`` with ``"auto"`` made ``"file"`` when the acquisition holds an
    impulse response and ``"none"`` when it does not."""
    kind = cfg["response"]["kind"]
    if kind == "auto":
        return "none" if acq.impulse_response is None else "file"
    return kind


def build_response(cfg: dict, acq) -> SensorResponse | None:
    r = cfg["response"]
    kind = response_kind(cfg, acq)
    if kind == "file":
        if acq.impulse_response is None:
            from ..errors import InputError

            raise InputError(
                acq.source,
                "sensors/impulse_response",
                'a measured response for response.kind = "file"',
                "none",
            )
        return SensorResponse(acq.fs, kernel=acq.impulse_response)
    if kind == "bandpass":
        return SensorResponse(acq.fs, centre=float(r["centre"]), bandwidth=float(r["bandwidth"]))
    return None


TIMING = ("sound_speed", "t0")


def timing_params(cfg: dict) -> list:
    """The timing parameters (sound speed, t0) the configuration calibrates, in order."""
    return [k for k in TIMING if k in cfg["calibrate"]["params"]]


class _Group:
    """A learnable group: its arrays (attributes), its own Adam and moments; a snapshot
    is a deep copy of its attributes."""

    def __init__(self):
        self.moments = {}
        self.adam = Adam()

    def _adam_step(self, grads: dict, lrs: dict) -> bool:
        if not lrs:
            return False
        self.adam.step(self, grads, lrs)
        return True

    def snapshot(self) -> dict:
        return copy.deepcopy(self.__dict__)

    def restore(self, snap: dict) -> None:
        self.__dict__.update(copy.deepcopy(snap))


class TimingParams(_Group):
    """The sound speed and t0.  When they step, the cloud is carried along: every ball
    moves so its arrival times stay (see :meth:`carry`).  Why: a wrong sound speed or t0
    is mostly absorbed by moving the cloud (with a planar array, depth trades against
    both almost exactly), so without the carry the cloud must chase every step and the
    timing gradients stay small and noisy; with it the cloud stays consistent with the
    current values, so their gradients measure the profile of the misfit."""

    def __init__(self, acq, cfg: dict):
        super().__init__()
        self.learn = timing_params(cfg)
        rates = cfg["calibrate"]
        self.lr = {"sound_speed": float(rates["lr_sound_speed"]), "t0": float(rates["lr_t0"])}
        self.fs = acq.fs
        self.sound_speed = np.array([acq.sound_speed], np.float64)
        self.t0 = np.array([acq.t0], np.float64)
        # Step sizes relative to the preset's (see scale_rates).
        self.rate_scale = {"sound_speed": 1.0, "t0": 1.0}
        self._carry_cache = None

    def scale_rates(self, tradeoff: dict) -> dict:
        """Scale the sound-speed and t0 step sizes to the array (from
        :func:`~slingbag.fit.timing.timing_tradeoff`) and return the factors.

        Adam steps each by about its rate whatever the gradient, and what a step does to
        the fit is the arrival time it leaves after the cloud is carried: the preset's
        rates are sized for an array where 1 m/s leaves ``REF_SOUND_SPEED_SAMPLES`` and a
        one-sample t0 error ``REF_T0_RATIO`` samples (the 12 x 12, 3 mm array of
        experiments/calibration.py with the region it infers there).  An array that sees
        the region under wider angles (a wider aperture, or a smaller region closer to
        it) sees both more sharply, so the same steps overshoot: on 24 x 24 the sound
        speed and t0 rose together until the loss jumped five-fold and the cloud was
        pruned to a fifth.  Steps are made smaller there, never larger.
        """
        seen_c = tradeoff["sound_speed_residual"] * self.fs
        seen_t0 = tradeoff["t0_residual"]
        self.rate_scale = {
            "sound_speed": min(1.0, REF_SOUND_SPEED_SAMPLES / max(seen_c, 1e-300)),
            "t0": min(1.0, REF_T0_RATIO / max(seen_t0, 1e-300)),
        }
        return dict(self.rate_scale)

    def carry(self, state, sensors: np.ndarray) -> dict:
        """How each ball moves per unit sound speed and t0 so that its arrival times stay
        (:func:`~slingbag.fit.timing.carry_jacobians`), for :meth:`step` to move the
        cloud with them.

        The step itself follows the plain gradients: with the cloud kept consistent with
        the current values, they measure what no motion of the balls explains (the
        wavefront curvature across the aperture).  Adding the balls' own position
        gradients along the carry (the gradient of the carried step) was tried: while the
        cloud is still converging its position gradients leak into the timing gradients
        and bias them, drifting the sound speed and t0 along the valley in which they
        trade off, even from the true values.
        """
        # The balls move little between iterations, so the fit is reused for a few of them
        # (and redone whenever density control changed the balls).
        cached = self._carry_cache
        if cached is not None and cached["n"] == len(state.xyz) and cached["age"] < 10:
            cached["age"] += 1
            return cached
        # A fixed random subset of the sensors gives the same fit for a fraction of the
        # cost (three unknowns per ball), without the bias a regular stride can have on a
        # grid.
        if len(sensors) > 64:
            pick = np.sort(np.random.default_rng(0).choice(len(sensors), 64, replace=False))
            sensors = np.asarray(sensors)[pick]
        sens = np.asarray(sensors, np.float64)
        c = float(self.sound_speed[0])
        carry = {"jac": carry_jacobians(state.xyz, sens, c), "sensors": sens}
        self._carry_cache = {**carry, "n": len(state.xyz), "age": 0}
        return self._carry_cache

    def step(self, radiator_grads: dict, factor: float, state=None, carry=None, box=None):
        """One Adam step; with ``carry`` the cloud in ``state`` and the region ``box`` (a
        :class:`~slingbag.fit.state.Box`) move with the new values."""
        grads, lrs = {}, {}
        for name in self.learn:
            grads[name] = np.array([radiator_grads[name]])
            per = self.fs if name == "t0" else 1.0  # t0's rate is in samples
            lrs[name] = self.lr[name] / per * factor * self.rate_scale[name]
        c_old, t_old = float(self.sound_speed[0]), float(self.t0[0])
        if self._adam_step(grads, lrs) and carry is not None and state is not None:
            dc, dt0 = float(self.sound_speed[0]) - c_old, float(self.t0[0]) - t_old
            self._carry_cloud(state, carry, dc, dt0, c_old, box)

    def _carry_cloud(self, state, carry, dc: float, dt0: float, c_old: float, box=None):
        if not (dc or dt0):
            return
        jac = carry["jac"]
        state.xyz += (jac[:, 0] * dc + jac[:, 1] * dt0).astype(np.float32)
        if box is not None:
            # The region box moves with the cloud (its corners carried likewise), or balls
            # carried past its faces would be pruned as strays.
            cj = carry_jacobians(box.corners, carry["sensors"], c_old)
            box.corners = box.corners + cj[:, 0] * dc + cj[:, 1] * dt0


class GainParams(_Group):
    """Per-sensor gains, relative (the cloud's amplitude carries the overall scale)."""

    def __init__(self, n_sensors: int, lr: float, learned: bool):
        super().__init__()
        self.gain = np.ones(n_sensors, np.float64)
        self.lr = float(lr)
        self.learned = learned
        self._grads = {}

    def apply(self, recorded: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        if not self.learned:
            return recorded
        return recorded * self.gain[sensors, None].astype(np.float32)

    def adjoint(self, recorded: np.ndarray, grad: np.ndarray, sensors: np.ndarray):
        """The gradient through the gains; keeps theirs for :meth:`step`."""
        self._grads = {}
        if not self.learned:
            return grad
        g = np.zeros_like(self.gain)
        g[sensors] = (grad.astype(np.float64) * recorded).sum(1)
        self._grads["gain"] = g
        return grad * self.gain[sensors, None].astype(np.float32)

    def step(self, factor: float) -> None:
        lrs = {"gain": self.lr * factor} if self.learned else {}
        if self._adam_step(self._grads, lrs):
            np.clip(self.gain, 0.05, None, out=self.gain)
            self.gain /= self.gain.mean()


class ResponseParams(_Group):
    """The sensor response in the model (None: none); a parametric band-pass may be
    learned (its centre and bandwidth)."""

    def __init__(self, response: SensorResponse | None, fs: float, lr: float, learned: bool):
        super().__init__()
        self.response = response
        self.fs = fs
        self.lr = float(lr)
        self.learned = learned
        p = response is not None and response.parametric
        self.centre = np.array([response.centre if p else 0.0])
        self.bandwidth = np.array([response.bandwidth if p else 0.0])
        self._grads = {}

    def keep_gradients(self, raw: np.ndarray, grad: np.ndarray) -> None:
        """Gradients of the centre and bandwidth, for :meth:`step`."""
        self._grads = {}
        if self.learned:
            rg = response_parameter_gradients(raw, grad, self.response)
            self._grads["centre"] = np.array([rg["centre"]])
            self._grads["bandwidth"] = np.array([rg["bandwidth"]])

    def step(self, factor: float) -> None:
        if not self.learned:
            return
        r = self.lr * factor
        lrs = {"centre": r * float(self.centre[0]), "bandwidth": r * float(self.bandwidth[0])}
        self._adam_step(self._grads, lrs)
        self.centre[0] = np.clip(self.centre[0], 0.01 * self.fs, 0.45 * self.fs)
        self.bandwidth[0] = np.clip(self.bandwidth[0], 0.05, 2.0)
        self.response = SensorResponse(
            self.fs, centre=float(self.centre[0]), bandwidth=float(self.bandwidth[0])
        )


class Calibration:
    """The learnable acquisition parameters (:class:`TimingParams`, :class:`GainParams`,
    :class:`ResponseParams`) and the sensor model they make: radiator signals ->
    response -> gains -> what the sensors record, with its adjoint."""

    def __init__(self, acq, cfg: dict):
        self.learn = set(cfg["calibrate"]["params"])
        rates = cfg["calibrate"]
        self.timing_params = TimingParams(acq, cfg)
        self.gains = GainParams(acq.n_sensors, rates["lr_gain"], "gain" in self.learn)
        self.band = ResponseParams(
            build_response(cfg, acq), acq.fs, rates["lr_response"], "response" in self.learn
        )

    @property
    def timing(self) -> list:
        """The timing parameters learned, in order."""
        return self.timing_params.learn

    @property
    def needs_scalars(self) -> bool:
        return bool(self.timing)

    @property
    def c(self) -> float:
        return float(self.timing_params.sound_speed[0])

    @property
    def time0(self) -> float:
        return float(self.timing_params.t0[0])

    @property
    def response(self) -> SensorResponse | None:
        return self.band.response

    @property
    def gain(self) -> np.ndarray:
        return self.gains.gain

    def use_gains(self, gains) -> None:
        """Apply these fixed gains in the sensor model (one per sensor)."""
        self.gains.gain = np.asarray(gains, np.float64).copy()
        self.gains.learned = True

    def scale_rates(self, tradeoff: dict) -> dict:
        return self.timing_params.scale_rates(tradeoff)

    def carry(self, state, sensors) -> dict:
        return self.timing_params.carry(state, sensors)

    def model(self, raw: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Radiator signals -> what the sensors record."""
        return self.gains.apply(apply_response(raw, self.response), sensors)

    def adjoint(self, raw: np.ndarray, grad: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Gradient with respect to the radiator signals; keeps the gain and response
        gradients for :meth:`step`."""
        recorded = apply_response(raw, self.response) if self.gains.learned else None
        grad = self.gains.adjoint(recorded, grad, sensors)
        self.band.keep_gradients(raw, grad)
        return correlate_response(grad, self.response)

    def step(self, radiator_grads: dict, factor: float, state=None, carry=None, box=None):
        """One step of every learned group (``factor``: decay x divergence scale); with
        ``carry`` (from :meth:`carry`) the cloud in ``state`` and the region ``box`` move
        with the sound speed and t0."""
        self.timing_params.step(radiator_grads, factor, state, carry, box)
        self.gains.step(factor)
        self.band.step(factor)

    def snapshot(self) -> dict:
        # The carry cache goes along: a resumed run must step exactly as an unbroken one.
        return {
            "timing": self.timing_params.snapshot(),
            "gains": self.gains.snapshot(),
            "band": self.band.snapshot(),
        }

    def restore(self, snap: dict) -> None:
        self.timing_params.restore(snap["timing"])
        self.gains.restore(snap["gains"])
        self.band.restore(snap["band"])

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
            out["response_centre"] = float(self.band.centre[0])
            out["response_bandwidth"] = float(self.band.bandwidth[0])
        return out
