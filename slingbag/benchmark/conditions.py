"""What happens to the pressure between the object and the file: band limits, a real
transducer's causal response, noise, faulty channels and the frequency power-law
attenuation of tissue (its minimum-phase filter, applied by path in
:mod:`slingbag.benchmark.exact`).

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


#: Nepers per decibel (attenuation in dB/cm/MHz^y to Np/m/Hz^y).
NEPER_PER_DB = np.log(10.0) / 20.0


def attenuation_exponent(n_fft: int, fs: float, a0: float, power: float = 1.0, reference=None):
    """The log-spectrum, per metre of path, of a causal power-law attenuation.

    Over a path ``L`` the filter is ``H(f) = exp(L phi(f))``: ``|H| = exp(-alpha(f) L)``
    with ``alpha = a0 f^power`` (``a0`` in dB/cm/MHz^power), and the minimum phase that
    goes with that magnitude (Kramers-Kronig: the phase is the Hilbert transform of the
    log-magnitude), built by folding the real cepstrum of ``-alpha`` onto positive
    quefrencies.  Higher frequencies then travel faster (the dispersion of tissue).

    Parameters
    ----------
    n_fft : int
        FFT length (the filter is periodic in it; take twice the record or more).
    fs : float
        Sampling rate, Hz.
    a0, power : float
        ``alpha(f) = a0 (f / 1 MHz)^power`` dB/cm.
    reference : float, optional
        A frequency, Hz, whose phase delay is removed (a pure time advance of
        ``tau = -phase / (2 pi f)``): the phase velocity there is then the nominal sound
        speed, as when a sound speed is measured in the imaging band.  None: the purely
        causal filter, which starts at the nominal arrival.

    Returns
    -------
    ndarray, complex, shape (n_fft // 2 + 1,)
        ``phi`` on the ``rfft`` grid, per metre.
    """
    f = np.fft.fftfreq(n_fft, 1.0 / fs)
    alpha = a0 * NEPER_PER_DB * 100.0 * (np.abs(f) / 1e6) ** power  # Np/m
    cepstrum = np.fft.ifft(-alpha).real
    fold = np.zeros(n_fft)
    fold[0] = 1.0
    fold[1 : (n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    phi = np.fft.fft(cepstrum * fold)[: n_fft // 2 + 1]
    if reference:
        grid = np.fft.rfftfreq(n_fft, 1.0 / fs)
        tau = -np.interp(reference, grid, phi.imag) / (2.0 * np.pi * reference)  # s/m
        phi = phi + 2j * np.pi * grid * tau
    return phi


def attenuate(signals: np.ndarray, paths: np.ndarray, fs: float, a0: float, **kw) -> np.ndarray:
    """Filter every row of ``signals`` for its path through an attenuating medium.

    Parameters
    ----------
    signals : ndarray, shape (n_sensors, n_bins, n_samples)
        The signals of the sources grouped by distance, per sensor.
    paths : ndarray, shape (n_sensors, n_bins)
        Each row's (mean) path length, metres.
    fs, a0, **kw
        As :func:`attenuation_exponent` (``power``, ``reference``).

    Returns
    -------
    ndarray, the shape of ``signals``
    """
    n = signals.shape[-1]
    n_fft = 1 << int(np.ceil(np.log2(2 * n)))
    phi = attenuation_exponent(n_fft, fs, a0, **kw)
    out = np.empty_like(signals)
    for s in range(signals.shape[0]):  # one sensor at a time bounds the memory
        spec = np.fft.rfft(signals[s], n_fft, axis=-1)
        spec *= np.exp(np.asarray(paths[s])[:, None] * phi[None, :])
        out[s] = np.fft.irfft(spec, n_fft, axis=-1)[:, :n]
    return out
