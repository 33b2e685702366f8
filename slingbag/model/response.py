"""Sensor impulse responses: what a real, band-limited transducer does to the pressure.

The response is linear and time-invariant, so the forward model convolves each sensor's
signal with it and the backward pass correlates the incoming gradient with the same
response (its adjoint).  Two kinds:

* a measured response (an array sampled at ``fs``, sample 0 at time 0: causal), e.g. the
  ``sensors/impulse_response`` dataset of an acquisition file;
* a parametric band-pass: a Gaussian-modulated cosine (a common transducer model), zero
  phase, with centre frequency ``centre`` (Hz) and fractional -6 dB bandwidth
  ``bandwidth`` (e.g. 0.55), scaled to unit gain at the centre frequency.  Its two
  parameters have gradients, so they can be learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from ..errors import InputError

_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass
class SensorResponse:
    """An impulse response at sampling rate ``fs``.

    Exactly one of ``kernel`` (measured, causal) or ``centre``/``bandwidth`` (parametric,
    zero phase) defines it.
    """

    fs: float
    kernel: np.ndarray | None = None
    centre: float | None = None
    bandwidth: float | None = None
    kernel_offset: int = 0  # index of time zero in ``kernel`` (0: causal)

    def __post_init__(self):
        if self.kernel is not None:
            k = np.asarray(self.kernel, np.float64).ravel()
            if k.size == 0 or not np.all(np.isfinite(k)) or not np.any(k):
                raise InputError(
                    None,
                    "sensors/impulse_response",
                    "a finite, non-zero 1-D response",
                    "empty or invalid",
                )
            self.kernel = k
        elif self.centre is None or self.bandwidth is None:
            raise InputError(None, "response", "a measured kernel or centre and bandwidth")
        else:
            if not 0 < self.centre < self.fs / 2:
                raise InputError(
                    None,
                    "response.centre",
                    f"a frequency in (0, fs/2 = {self.fs / 2:g}) Hz",
                    self.centre,
                )
            if not 0.05 <= self.bandwidth <= 2.0:
                raise InputError(
                    None,
                    "response.bandwidth",
                    "a fractional bandwidth in [0.05, 2]",
                    self.bandwidth,
                )

    @property
    def parametric(self) -> bool:
        return self.kernel is None

    def _times(self):
        sigma_f = self.bandwidth * self.centre / _FWHM  # spectral std of the envelope
        tau = 1.0 / (2.0 * np.pi * sigma_f)  # temporal std
        half = int(np.ceil(4.0 * tau * self.fs))
        return np.arange(-half, half + 1) / self.fs, tau

    def taps(self) -> np.ndarray:
        """The discrete response; parametric ones are centred on the middle tap."""
        if not self.parametric:
            return self.kernel
        t, tau = self._times()
        env = np.exp(-0.5 * (t / tau) ** 2)
        # Unit gain at the centre frequency: the spectrum's peak is sum(env) / 2.
        return env * np.cos(2 * np.pi * self.centre * t) / (0.5 * env.sum())

    def taps_gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """d taps / d centre and d taps / d bandwidth (same length as :meth:`taps`)."""
        t, tau = self._times()
        c, b = self.centre, self.bandwidth
        env = np.exp(-0.5 * (t / tau) ** 2)
        cos = np.cos(2 * np.pi * c * t)
        sin = np.sin(2 * np.pi * c * t)
        norm = 0.5 * env.sum()
        # tau = FWHM / (2 pi b c): d tau/dc = -tau/c, d tau/db = -tau/b
        d_env_dtau = env * t**2 / tau**3
        d_norm_dtau = 0.5 * d_env_dtau.sum()
        taps = env * cos / norm

        def d_dtau(dtau):
            return (d_env_dtau * cos / norm - taps * d_norm_dtau / norm) * dtau

        d_c = d_dtau(-tau / c) + env * (-2 * np.pi * t * sin) / norm
        d_b = d_dtau(-tau / b)
        return d_c, d_b

    def band_centre(self) -> float:
        """Centre of mass (Hz) of the response's power within its -6 dB band.

        Only the band counts, so the noise floor of a measured response (which would pull
        a plain spectral centroid towards fs/4) and a small DC offset do not move it.
        """
        taps = self.taps()
        n = max(4096, 2 * len(taps))
        gain = np.abs(np.fft.rfft(taps, n))
        f = np.fft.rfftfreq(n, 1.0 / self.fs)
        power = np.where(gain >= 0.5 * gain.max(), gain**2, 0.0)
        return float((f * power).sum() / power.sum())

    def largest_visible_sigma(self, sound_speed: float) -> float:
        """The size (m) above which a Gaussian ball is all but invisible through the
        response.

        A ball of size sigma radiates a spectrum falling as exp(-(2 pi f sigma / c)^2 / 2);
        at the centre of the response's band it is down to exp(-2) (-17 dB) at
        sigma = c / (pi f).  Larger balls (or their p0) are then barely constrained by the
        data: the optimiser can grow them freely, and splitting one makes its hidden
        amplitude suddenly visible.
        """
        return sound_speed / (np.pi * self.band_centre())

    @property
    def offset(self) -> int:
        """Index of time zero within :meth:`taps`."""
        return (len(self.taps()) - 1) // 2 if self.parametric else self.kernel_offset


def _conv(signals, taps, offset):
    full = fftconvolve(signals, taps[None, :], axes=1)
    return full[:, offset : offset + signals.shape[1]]


def apply_response(signals: np.ndarray, response: SensorResponse | None) -> np.ndarray:
    """Each row of ``signals`` convolved with the response (same length, float32)."""
    if response is None:
        return signals
    return _conv(signals.astype(np.float64), response.taps(), response.offset).astype(np.float32)


def correlate_response(grad: np.ndarray, response: SensorResponse | None) -> np.ndarray:
    """The adjoint of :func:`apply_response`: the gradient with respect to its input."""
    if response is None:
        return grad
    taps = response.taps()[::-1]
    offset = len(taps) - 1 - response.offset
    return _conv(grad.astype(np.float64), taps, offset).astype(np.float32)


def response_parameter_gradients(
    raw: np.ndarray, grad: np.ndarray, response: SensorResponse
) -> dict:
    """d(sum(grad * apply_response(raw)))/d(centre, bandwidth) of a parametric response."""
    d_c, d_b = response.taps_gradients()
    raw = raw.astype(np.float64)
    g = grad.astype(np.float64)
    return {
        "centre": float((g * _conv(raw, d_c, response.offset)).sum()),
        "bandwidth": float((g * _conv(raw, d_b, response.offset)).sum()),
    }
