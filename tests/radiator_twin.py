"""Plain NumPy (float64) twin of the radiator kernels: the reference the tests trust.

It evaluates every (sensor, sample, ball) triple densely, with no windows, no recurrences
and SciPy's erf, so it shares no shortcut with the kernels it checks.
"""

import numpy as np
from scipy.special import erf

SHELL_F = np.array([0.5, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0])
SHELL_W = np.arange(10, 0, -1) / 55.0


def gaussian_profile(r, a, cut=3.0):
    """f(r) = exp(-r^2/2a^2) - exp(-cut^2/2) inside cut*a, else 0 (r >= 0)."""
    gc = np.exp(-0.5 * cut**2)
    return np.where(r < cut * a, np.exp(-0.5 * (r / a) ** 2) - gc, 0.0)


def signals(xyz, p0, sigma, sensors, n_samples, fs, c, t0=0.0, model="gaussian", cut=3.0, k=None):
    xyz = np.asarray(xyz, float)
    t = t0 + np.arange(n_samples) / fs
    out = np.zeros((len(sensors), n_samples))
    k = fs / c if k is None else k
    for s, pos in enumerate(np.asarray(sensors, float)):
        R = np.linalg.norm(pos - xyz, axis=1)[:, None]
        a = np.asarray(sigma, float)[:, None]
        D = R - c * t[None, :]
        if model == "gaussian":
            E = R + c * t[None, :]
            h = D * gaussian_profile(np.abs(D), a, cut) + E * gaussian_profile(E, a, cut)
        else:
            h = np.zeros_like(D)
            for f, w in zip(SHELL_F, SHELL_W, strict=True):
                h += w * D * 0.5 * (erf(k * (D + f * a)) - erf(k * (D - f * a)))
        out[s] = (np.asarray(p0, float)[:, None] / (2 * R) * h).sum(axis=0)
    return out


def uniform_sphere(radius, pressure, sensors, n_samples, fs, c, t0=0.0):
    """Exact signal of a uniform sphere centred on the origin: P D/(2R) for |D| < b."""
    t = t0 + np.arange(n_samples) / fs
    R = np.linalg.norm(np.asarray(sensors, float), axis=1)[:, None]
    D = R - c * t[None, :]
    return np.where(np.abs(D) < radius, pressure * D / (2 * R), 0.0)
