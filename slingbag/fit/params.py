"""Acquisition parameters learned with the cloud: sound speed, time offset, per-sensor
gains and a parametric sensor response (issue: calibration by gradient).

The radiator's backward pass gives d(loss)/d(sound speed) and d/d(t0); gains and the
response sit after the radiator (``signals = gain * (response * radiator)``), so their
gradients come from the same residual.
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


def build_response(cfg: dict, acq) -> SensorResponse | None:
    r = cfg["response"]
    if r["kind"] == "file":
        if acq.impulse_response is None:
            from ..errors import InputError

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


TIMING = ("sound_speed", "t0")


def timing_params(cfg: dict) -> list:
    """The timing parameters (sound speed, t0) the configuration calibrates, in order."""
    return [k for k in TIMING if k in cfg["calibrate"]["params"]]


def _carry_jacobians(points, sens, c):
    """Displacement of each point per unit sound speed and per unit t0 that keeps its
    arrival times at the sensors ``sens`` (least squares): ``(N, 2, 3)``.

    A wave arrives at sample ``(R/c - t0) fs`` (t0 is the time of the first sample), so it
    stays put when ``R`` changes by ``R dc/c + c dt0``; the displacement is the fit of
    those range changes over the sensors.
    """
    n = len(points)
    jac = np.zeros((n, 2, 3))
    for lo in range(0, n, 4096):
        hi = min(lo + 4096, n)
        d = np.asarray(points[lo:hi], np.float64)[:, None, :] - sens[None]
        r = np.maximum(np.linalg.norm(d, axis=2), 1e-9)
        u = d / r[..., None]  # dR/dxyz
        a = np.einsum("nsi,nsj->nij", u, u)
        # A small ridge keeps the motion minimal along directions the array cannot see.
        a += 1e-3 * np.trace(a, axis1=1, axis2=2)[:, None, None] * np.eye(3)
        want = np.stack([r / c, np.full_like(r, c)], axis=2)  # dR per unit dc, dt0
        jac[lo:hi] = np.swapaxes(np.linalg.solve(a, np.einsum("nsi,nsk->nik", u, want)), 1, 2)
    return jac


def timing_tradeoff(sensors, lo, hi, c: float, fs: float) -> dict:
    """How well the array can see the sound speed and t0 in the region ``lo``-``hi``.

    A sound-speed or t0 error is mostly taken up by moving the sources (with a planar
    array, the depth), and a sound-speed error further by a shift of t0 (with a sphere
    around a central source almost exactly); what is left is the only evidence for the
    true values.  For a grid of points across the region this solves, to first order,
    for the per-point moves (and the t0 shift) that best keep every arrival time, and
    reports the rms arrival time left:

    ``sound_speed_residual``
        s per 1 m/s error, t0 known;
    ``t0_residual``
        s per 1 s error of t0 (a ratio), sound speed known;
    ``t0_per_ms``
        the t0 shift (s) that best takes up +1 m/s with the moves: the line along which
        a joint estimate of both can slide;
    ``residual``, ``residual_samples``
        s (and samples) per 1 m/s error left along that line.

    Only geometry enters, not the data: it says what any estimator is up against.
    """
    sens = np.asarray(sensors, np.float64).reshape(-1, 3)
    if len(sens) > 256:
        pick = np.random.default_rng(0).choice(len(sens), 256, replace=False)
        sens = sens[np.sort(pick)]
    axes = [np.linspace(a, b, 3) for a, b in zip(np.asarray(lo), np.asarray(hi), strict=True)]
    points = np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T
    # An arrival R/c - t0 changes by u.dx/c - R dc/c^2 - dt0.  Per point the best move dx
    # is a projection onto its three direction columns, so what is left of a change is
    # its part outside their span.
    ones, rhs = [], []
    for p in points:
        d = p - sens
        r = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        q, _ = np.linalg.qr(d / r[:, None] / c)
        b = r / c**2  # per 1 m/s
        ones.append(np.ones_like(r) - q @ (q.T @ np.ones_like(r)))
        rhs.append(b - q @ (q.T @ b))
    one, b = np.concatenate(ones), np.concatenate(rhs)
    # Along the line: b_perp + dt0 * one_perp, least squares in dt0.
    dt0 = -float(one @ b) / max(float(one @ one), 1e-300)
    rms = float(np.sqrt(np.mean((b + dt0 * one) ** 2)))
    return {
        "sound_speed_residual": float(np.sqrt(np.mean(b**2))),
        "t0_residual": float(np.sqrt(np.mean(one**2))),
        "t0_per_ms": dt0,
        "residual": rms,
        "residual_samples": rms * fs,
    }


# The rms arrival time (in samples) an error must still leave, once the cloud has moved
# to take it up, for the calibration to correct it.  Where it comes from: on the 12 x 12,
# 3 mm planar array of experiments/calibration.py (vessels, 1 % noise) the calibrated
# values of the current code came out 0.3-1.4 m/s off (sound speed alone, 3 runs),
# 12-28 ns (t0 alone, 5 runs) and 2-4 m/s / 42-58 ns along the line in which the two trade
# off (both, 5 runs): ~0.1 samples left, by timing_tradeoff, in every case.  The cloud's
# own misfit hides finer evidence.  A rough guide, from one scene and one noise level,
# for broadband data (through a band-pass response the pulses are longer and hide more).
SEEN_SAMPLES = 0.1

# The arrival time (in samples) a 1 m/s sound-speed error, and a one-sample t0 error, leave
# after the carry on the array the preset's calibration rates were sized on (the 12 x 12,
# 3 mm planar array of experiments/calibration.py and the 28 x 27 x 13 mm region it infers
# there, by timing_tradeoff: 0.096 and 0.121, rounded up so that run keeps the rates).
# Both depend on the region too: the same array sees a small region close to it sharper.
REF_SOUND_SPEED_SAMPLES = 0.1
REF_T0_RATIO = 0.125


def expected_errors(tradeoff: dict, fs: float) -> dict:
    """Rough errors to expect from the calibration on an array (see ``SEEN_SAMPLES``),
    from :func:`timing_tradeoff`: ``sound_speed`` (m/s, t0 known), ``t0`` (s, sound speed
    known), and ``joint_sound_speed``, ``joint_t0`` (along the line in which they trade
    off, when both are calibrated)."""
    seen = SEEN_SAMPLES / fs
    slide = seen / max(tradeoff["residual"], 1e-300)
    return {
        "sound_speed": seen / max(tradeoff["sound_speed_residual"], 1e-300),
        "t0": seen / max(tradeoff["t0_residual"], 1e-300),
        "joint_sound_speed": slide,
        "joint_t0": slide * abs(tradeoff["t0_per_ms"]),
    }


class Calibration:
    """The learnable acquisition parameters and their optimiser state.

    When the sound speed or t0 steps, the cloud is carried along: every ball moves so its
    arrival times stay (see :meth:`carry`).  Why: a wrong sound speed or t0 is mostly
    absorbed by moving the cloud (with a planar array, depth trades against both almost
    exactly), so without the carry the cloud must chase every step and the timing
    gradients stay small and noisy; with it the cloud stays consistent with the current
    values, so their gradients measure the profile of the misfit.
    """

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
        self.timing = timing_params(cfg)
        # Step sizes of the sound speed and t0 relative to the preset's (see scale_rates).
        self.rate_scale = {"sound_speed": 1.0, "t0": 1.0}
        self._grads = {}
        self._carry_cache = None

    def scale_rates(self, tradeoff: dict) -> dict:
        """Scale the sound-speed and t0 step sizes to the array (from
        :func:`timing_tradeoff`) and return the factors.

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
        fs = self.fs
        seen_c = tradeoff["sound_speed_residual"] * fs
        seen_t0 = tradeoff["t0_residual"]
        self.rate_scale = {
            "sound_speed": min(1.0, REF_SOUND_SPEED_SAMPLES / max(seen_c, 1e-300)),
            "t0": min(1.0, REF_T0_RATIO / max(seen_t0, 1e-300)),
        }
        return dict(self.rate_scale)

    @property
    def needs_scalars(self) -> bool:
        return bool(self.timing)

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

    def carry(self, state, sensors: np.ndarray) -> dict:
        """How each ball moves per unit sound speed and t0 so that its arrival times stay
        (:func:`_carry_jacobians`), for :meth:`step` to move the cloud with them.

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
        carry = {"jac": _carry_jacobians(state.xyz, sens, self.c), "sensors": sens}
        self._carry_cache = {**carry, "n": len(state.xyz), "age": 0}
        return self._carry_cache

    def step(self, radiator_grads: dict, factor: float, state=None, carry=None, box=None):
        """One Adam step on the learned parameters (``factor``: decay x divergence scale).
        With ``carry`` (from :meth:`carry`) the cloud in ``state`` and the region ``box``
        (a :class:`~slingbag.fit.state.Box`) move with the sound speed and t0."""
        grads = dict(self._grads)
        lrs = {}
        if "sound_speed" in self.learn:
            grads["sound_speed"] = np.array([radiator_grads["sound_speed"]])
            lrs["sound_speed"] = (
                self.rates["lr_sound_speed"] * factor * self.rate_scale["sound_speed"]
            )
        if "t0" in self.learn:
            grads["t0"] = np.array([radiator_grads["t0"]])
            lrs["t0"] = self.rates["lr_t0"] / self.fs * factor * self.rate_scale["t0"]
        if "gain" in self.learn:
            lrs["gain"] = self.rates["lr_gain"] * factor
        if "response" in self.learn:
            r = self.rates["lr_response"] * factor
            lrs["centre"] = r * float(self.centre[0])
            lrs["bandwidth"] = r * float(self.bandwidth[0])
        if not lrs:
            return
        c_old, t_old = self.c, self.time0
        self.adam.step(self, grads, lrs)
        if carry is not None and state is not None:
            self._carry_cloud(state, carry, self.c - c_old, self.time0 - t_old, c_old, box)
        if "gain" in lrs:
            # Gains are relative: the cloud's amplitude carries the overall scale.
            np.clip(self.gain, 0.05, None, out=self.gain)
            self.gain /= self.gain.mean()
        if "centre" in lrs:
            self.centre[0] = np.clip(self.centre[0], 0.01 * self.fs, 0.45 * self.fs)
            self.bandwidth[0] = np.clip(self.bandwidth[0], 0.05, 2.0)
            self.response = SensorResponse(
                self.fs, centre=float(self.centre[0]), bandwidth=float(self.bandwidth[0])
            )

    def _carry_cloud(self, state, carry, dc: float, dt0: float, c_old: float, box=None):
        if not (dc or dt0):
            return
        jac = carry["jac"]
        state.xyz += (jac[:, 0] * dc + jac[:, 1] * dt0).astype(np.float32)
        if box is not None:
            # The region box moves with the cloud (its corners carried likewise), or balls
            # carried past its faces would be pruned as strays.
            cj = _carry_jacobians(box.corners, carry["sensors"], c_old)
            box.corners = box.corners + cj[:, 0] * dc + cj[:, 1] * dt0

    def snapshot(self):
        # The carry cache goes along: a resumed run must step exactly as an unbroken one.
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
