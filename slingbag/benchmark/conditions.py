"""What happens to the pressure between the object and the file: band limits, a real
transducer's causal response, noise and faulty channels.

Written with SciPy alone, apart from :mod:`slingbag.model.response` and
:func:`slingbag.model.radiator.band_limit`, so the reconstruction's own models of these effects
are tested against something they were not derived from.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

# A 2nd-order Butterworth band-pass falls to -6 dB at 3^(1/4) times its -3 dB half-width.
_BUTTER2_6DB = 3.0**0.25
# Impulse responses are cut where their envelope has decayed below this fraction of its peak.
_RESPONSE_TAIL = 1e-4


def lowpass(signals: np.ndarray, fs: float, cutoff: float) -> np.ndarray:
    """Zero-phase 4th-order Butterworth low-pass (an acquisition's anti-alias filter)."""
    sos = sps.butter(4, cutoff, btype="low", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, signals, axis=-1)


def transducer_response(fs: float, centre: float, bandwidth: float) -> np.ndarray:
    """Causal impulse response of a resonant transducer: a 2nd-order Butterworth band-pass
    around ``centre`` Hz whose -6 dB band is ``bandwidth`` times ``centre`` wide.

    Sample 0 is time 0 (the layout of ``sensors/impulse_response``); the response is cut
    once it has rung down, and scaled to unit gain at ``centre``.
    """
    half = 0.5 * bandwidth * centre / _BUTTER2_6DB
    lo, hi = centre - half, centre + half
    sos = sps.butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")
    n = int(np.ceil(40.0 * fs / centre))  # 40 periods is ample for a band this wide
    impulse = np.zeros(n)
    impulse[0] = 1.0
    h = sps.sosfilt(sos, impulse)
    env = np.abs(sps.hilbert(h))
    keep = np.nonzero(env > _RESPONSE_TAIL * env.max())[0][-1] + 1
    h = h[:keep]
    gain = abs(np.sum(h * np.exp(-2j * np.pi * centre * np.arange(keep) / fs)))
    return h / gain


def apply_response(signals: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal convolution of every channel with ``kernel`` (same length out)."""
    out = sps.fftconvolve(signals, kernel[None, :], axes=-1)
    return out[:, : signals.shape[1]]


def add_noise(signals: np.ndarray, level: float, rng) -> np.ndarray:
    """White Gaussian noise of standard deviation ``level`` times the peak |signal|."""
    if not level:
        return signals
    peak = float(np.abs(signals).max())
    return signals + level * peak * rng.standard_normal(signals.shape)


def channel_faults(
    signals: np.ndarray,
    rng,
    *,
    gain_spread: float = 0.1,
    dead: int = 3,
    dc: float = 0.02,
) -> tuple[np.ndarray, dict]:
    """Per-channel gains (log-normal, ``gain_spread`` relative), ``dead`` channels that
    record only the others' noise level, and DC offsets of ``dc`` times the peak."""
    n = signals.shape[0]
    peak = float(np.abs(signals).max())
    gains = np.exp(gain_spread * rng.standard_normal(n))
    out = signals * gains[:, None]
    dead_idx = rng.choice(n, size=min(dead, n), replace=False)
    noise = np.std(signals[:, : max(1, signals.shape[1] // 20)])
    out[dead_idx] = noise * rng.standard_normal((len(dead_idx), signals.shape[1]))
    out = out + dc * peak * rng.standard_normal(n)[:, None]
    return out, {"gains": gains, "dead": np.sort(dead_idx)}
