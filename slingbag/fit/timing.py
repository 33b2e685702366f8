"""What an array sees of the sound speed and t0, and how a cloud moves to keep its arrival
times when they change (the carry of :class:`~slingbag.fit.params.TimingParams`)."""

from __future__ import annotations

import numpy as np


def carry_jacobians(points, sens, c):
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
