"""The radiator from NumPy: simulate sensor signals and the gradient of the data misfit.

This module moves arrays between NumPy and the Taichi kernels in
:mod:`slingbag.kernels.radiator`; it knows nothing of files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import ensure_init
from ..core.acquisition import Acquisition, SensorArray
from ..core.cloud import MODELS, GaussianCloud
from ..errors import InputError

ALGORITHMS = ("windowed", "split")
PAPER_SMOOTHING = 1e6  # the paper's erf smoothing constant k, 1/m


@dataclass(frozen=True)
class RadiatorModel:
    """Which radiator, and its constants.

    Parameters
    ----------
    name : {"gaussian", "shells"}
    cut : float
        The ``gaussian`` profile is cut (and lowered to reach zero) at ``cut`` sigmas.
    smoothing : float or None
        The ``shells`` erf constant k in 1/m; None means one sample's travel, ``fs / c``.
        ``"paper"`` selects the paper's 1e6.
    algorithm : {"windowed", "split"}
        How ``gaussian`` is evaluated: ``windowed`` (the default) sums each ball's profile
        cut at ``cut`` sigmas over its window; ``split`` is the uncut closed form by
        Gaussian splitting and per-class FFT convolution (:mod:`slingbag.model.gauss_split`),
        ``cut`` unused, about three times faster.  Not yet the default: the reconstruction
        bench's SSIM moved by more than 0.01 with it (docs/results.md).  ``shells`` is always
        windowed.
    face_strip, face_max_strips : float, int
        Sensors with faces (:mod:`slingbag.kernels.faces`): the face is cut into strips
        ``face_strip`` ball widths wide across the arrival spread, at most
        ``face_max_strips`` of them.  Smaller strips follow the face average more closely
        and cost more (docs/method.md).
    """

    name: str = "gaussian"
    cut: float = 3.0
    smoothing: float | str | None = None
    algorithm: str = "windowed"
    face_strip: float = 1.0
    face_max_strips: int = 8

    def __post_init__(self):
        if self.name not in MODELS:
            raise InputError("--model", None, "one of " + ", ".join(MODELS), self.name)
        if self.algorithm not in ALGORITHMS:
            raise InputError("algorithm", None, "one of " + ", ".join(ALGORITHMS), self.algorithm)

    @property
    def split(self) -> bool:
        return self.name == "gaussian" and self.algorithm == "split"

    def k(self, fs: float, c: float) -> float:
        if self.smoothing is None:
            return fs / c
        if self.smoothing == "paper":
            return PAPER_SMOOTHING
        return float(self.smoothing)


def as_model(model) -> RadiatorModel:
    if isinstance(model, RadiatorModel):
        return model
    return RadiatorModel(str(model))


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _per_row() -> bool:
    # Rows per thread suit the CPU (no atomics); a GPU wants a thread per pair.
    return ensure_init() == "cpu"


@dataclass(frozen=True)
class Faces:
    """The sensors' faces as the radiator kernels take them.

    Parameters
    ----------
    shape : int
        :data:`slingbag.core.element.SHAPE_IDS` of ``disc`` or ``rect``.
    table : ndarray, float32, shape (n_sensors, 11)
        :meth:`slingbag.core.element.Element.table`.
    """

    shape: int
    table: np.ndarray

    @classmethod
    def of(cls, element, normals):
        """The faces of ``element`` oriented by ``normals``; None for point sensors."""
        from ..core.element import SHAPE_IDS

        if element is None or element.is_point:
            return None
        return cls(SHAPE_IDS[element.shape], element.table(normals))

    def take(self, index) -> Faces:
        """The faces of some sensors only."""
        return Faces(self.shape, np.ascontiguousarray(self.table[index]))


def faces_of(acq) -> Faces | None:
    """The faces of an :class:`Acquisition` or :class:`SensorArray`; None for points."""
    return Faces.of(acq.element, acq.normals)


def _run_layout(kernels, args, n_s, n_t, consts) -> np.ndarray:
    """Run ``kernels.forward_rows`` (CPU: a thread per sensor row and chunk of balls, the
    chunks summed after) or ``kernels.forward_pairs`` (GPU: a thread per pair) on
    ``args`` (balls, sensors and any per-sensor table) and the trailing ``consts``."""
    if _per_row():
        chunks = _row_chunks(n_s, len(args[1]))
        out = np.zeros((chunks, n_s, n_t), dtype=np.float32)
        kernels.forward_rows(*args, out.reshape(-1), n_t, chunks, *consts)
        return out[0] if chunks == 1 else out.sum(axis=0)
    out = np.zeros((n_s, n_t), dtype=np.float32)
    kernels.forward_pairs(*args, out.reshape(-1), n_t, *consts)
    return out


def forward_signals(
    xyz, p0, sigma, sensors, n_samples, fs, sound_speed, t0=0.0, model="gaussian", faces=None
) -> np.ndarray:
    """Signals ``(n_sensors, n_samples)`` of the balls at the sensors, float32.

    Low level: plain arrays in, plain array out.  ``faces`` (:class:`Faces`) averages
    each sensor's signal over its face (``gaussian`` model, windowed).  See
    :func:`simulate` for the friendly form.
    """
    from ..kernels import radiator

    m = as_model(model)
    ensure_init()
    sensors = _f32(sensors).reshape(-1, 3)
    n_s, n_t = len(sensors), int(n_samples)
    if len(p0) == 0 or n_s == 0:
        return np.zeros((n_s, n_t), dtype=np.float32)
    if m.split and faces is None:
        from . import gauss_split

        return gauss_split.forward(
            xyz,
            p0,
            sigma,
            sensors,
            n_t,
            fs,
            sound_speed,
            t0,
            per_row=_per_row(),
            arch=ensure_init(),
        )
    args = (_f32(xyz).reshape(-1, 3), _f32(p0), _f32(sigma), sensors)
    if faces is not None:
        from ..kernels import faces as face_kernels

        _check_faces(m, faces, n_s)
        table = _f32(faces.table).reshape(n_s, 11)
        consts = (float(fs), float(sound_speed), float(t0), float(m.cut), float(m.face_strip),
                  int(m.face_max_strips), faces.shape)  # fmt: skip
        return _run_layout(face_kernels, (*args, table), n_s, n_t, consts)
    consts = (
        float(fs),
        float(sound_speed),
        float(t0),
        float(m.cut),
        float(m.k(fs, sound_speed)),
        MODELS[m.name],
    )
    return _run_layout(radiator, args, n_s, n_t, consts)


def _check_faces(m: RadiatorModel, faces: Faces, n_sensors: int) -> None:
    if m.name != "gaussian":
        raise InputError("--model", None, "gaussian with sensor faces (shells has none)", m.name)
    if len(faces.table) != n_sensors:
        raise ValueError(f"{len(faces.table)} faces for {n_sensors} sensors")


def _row_chunks(n_sensors: int, n_balls: int) -> int:
    """Chunks of balls per sensor row so the CPU loop has enough tasks to share
    (>= 2,048), but no chunk is tiny and the copies of the signals stay few (<= 16)."""
    want = -(-2048 // max(n_sensors, 1))
    return int(max(1, min(want, 16, n_balls // 64 or 1)))


def backward_signals(
    xyz,
    p0,
    sigma,
    sensors,
    grad_signals,
    fs,
    sound_speed,
    t0=0.0,
    model="gaussian",
    scalars=False,
    faces=None,
    positions=True,
) -> dict:
    """Gradients of ``sum(grad_signals * forward_signals(...))``.

    Returns a dict with ``xyz (N, 3)``, ``p0 (N,)``, ``sigma (N,)`` (float32) and, when
    ``scalars``, ``sound_speed`` and ``t0`` (floats).  With ``faces``, ``positions=False``
    leaves ``xyz`` at zero and skips differentiating the faces' geometry (an adjoint for
    the amplitudes alone).
    """
    from ..kernels import radiator

    m = as_model(model)
    ensure_init()
    n = len(p0)
    g_xyz = np.zeros((n, 3), np.float32)
    g_p0 = np.zeros(n, np.float32)
    g_sigma = np.zeros(n, np.float32)
    g_scalar = np.zeros(2, np.float32)
    sensors = _f32(sensors).reshape(-1, 3)
    if n and len(sensors) and faces is not None:
        from ..kernels import faces as kernels

        _check_faces(m, faces, len(sensors))
        kernels.backward(
            _f32(xyz).reshape(-1, 3), _f32(p0), _f32(sigma), sensors,
            _f32(faces.table).reshape(-1, 11), _f32(grad_signals).reshape(-1),
            int(np.shape(grad_signals)[1]), g_xyz, g_p0, g_sigma, g_scalar, float(fs),
            float(sound_speed), float(t0), float(m.cut), float(m.face_strip),
            int(m.face_max_strips), faces.shape, bool(scalars), bool(positions),
        )  # fmt: skip
    elif n and len(sensors) and m.split:
        from . import gauss_split

        return gauss_split.backward(
            xyz, p0, sigma, sensors, grad_signals, fs, sound_speed, t0, scalars=scalars,
            arch=ensure_init(),
        )  # fmt: skip
    elif n and len(sensors):
        radiator.backward(
            _f32(xyz).reshape(-1, 3),
            _f32(p0),
            _f32(sigma),
            sensors,
            _f32(grad_signals).reshape(-1),
            int(np.shape(grad_signals)[1]),
            g_xyz,
            g_p0,
            g_sigma,
            g_scalar,
            float(fs),
            float(sound_speed),
            float(t0),
            float(m.cut),
            float(m.k(fs, sound_speed)),
            MODELS[m.name],
            bool(scalars),
        )
    grads = {"xyz": g_xyz, "p0": g_p0, "sigma": g_sigma}
    if scalars:
        grads["sound_speed"] = float(g_scalar[0])
        grads["t0"] = float(g_scalar[1])
    return grads


def band_limit(signals: np.ndarray, fs: float, band) -> np.ndarray:
    """Zero-phase 4th-order Butterworth band-pass ``band = (f_lo, f_hi)`` in Hz (either may
    be None for a low- or high-pass)."""
    from scipy.signal import butter, sosfiltfilt

    lo, hi = band
    nyq = fs / 2
    if lo and hi:
        sos = butter(4, [lo / nyq, hi / nyq], btype="bandpass", output="sos")
    elif hi:
        sos = butter(4, hi / nyq, btype="lowpass", output="sos")
    elif lo:
        sos = butter(4, lo / nyq, btype="highpass", output="sos")
    else:
        return signals
    return sosfiltfilt(sos, signals, axis=-1).astype(np.float32)


def _sensor_array(acquisition_or_array) -> SensorArray:
    """The sensor array of an Acquisition, a SensorArray, a preset name or positions."""
    if isinstance(acquisition_or_array, Acquisition):
        return acquisition_or_array.array
    if isinstance(acquisition_or_array, SensorArray):
        return acquisition_or_array
    if isinstance(acquisition_or_array, str):
        from ..core.arrays import load_array

        return load_array(acquisition_or_array)
    return SensorArray(np.asarray(acquisition_or_array, dtype=np.float64))


def _as_recorded(signals, fs, band, response, noise, seed):
    """The ideal signals as the sensors record them: band-limited, convolved with the
    sensor response, then with white noise added (each only when asked for)."""
    if band is not None:
        signals = band_limit(signals, fs, band)
    if response is not None:
        from .response import SensorResponse, apply_response

        if not isinstance(response, SensorResponse):
            response = SensorResponse(fs, centre=float(response[0]), bandwidth=float(response[1]))
        signals = apply_response(signals, response)
    if noise:
        rng = np.random.default_rng(seed)
        peak = float(np.abs(signals).max()) or 1.0
        signals = signals + (noise * peak) * rng.standard_normal(signals.shape).astype(np.float32)
    return signals


def simulate(
    cloud: GaussianCloud,
    acquisition_or_array,
    model="gaussian",
    *,
    fs: float = 40e6,
    n_samples: int = 4096,
    sound_speed: float = 1500.0,
    t0: float = 0.0,
    noise: float = 0.0,
    band=None,
    response=None,
    seed=None,
) -> Acquisition:
    """Simulate the signals a sensor array records from a cloud of Gaussian balls.

    Parameters
    ----------
    cloud : GaussianCloud
        The source (SI units).
    acquisition_or_array : Acquisition, SensorArray, str or ndarray
        Where and how to record.  An :class:`Acquisition` supplies the positions, ``fs``,
        the number of samples, the sound speed and ``t0`` (the keyword values are then
        ignored); a :class:`SensorArray`, a preset name (see
        :func:`slingbag.load_array`) or an ``(n, 3)`` array of positions uses the keywords.
    model : {"gaussian", "shells"} or RadiatorModel
        The radiator, as described on the method page of the documentation
        (docs/method.md).  A name simulates the exact form: ``gaussian`` is the uncut
        closed form (the ``split`` algorithm); a :class:`RadiatorModel` is used as it is.
    fs, n_samples, sound_speed, t0 : float, int, float, float
        Sampling rate (Hz), samples per sensor, speed of sound (m/s) and time of sample 0
        after the laser pulse (s); ignored when ``acquisition_or_array`` is an Acquisition.
    noise : float
        Standard deviation of added white Gaussian noise as a fraction of the peak
        absolute signal.
    band : (f_lo, f_hi) or None
        Band-limit the signals (zero-phase Butterworth) before adding noise.
    response : SensorResponse or (centre_hz, fractional_bandwidth), optional
        Convolve with a sensor impulse response (see :mod:`slingbag.model.response`) before
        adding noise.
    seed : int or None
        Seed of the noise.

    Returns
    -------
    Acquisition
        With ``truth_cloud`` set to ``cloud``.
    """
    array = _sensor_array(acquisition_or_array)
    if isinstance(acquisition_or_array, Acquisition):
        acq = acquisition_or_array
        fs, n_samples, sound_speed, t0 = acq.fs, acq.n_samples, acq.sound_speed, acq.t0
    # A model named, not built, is simulated in its exact form: ``gaussian`` uncut.
    m = model if isinstance(model, RadiatorModel) else RadiatorModel(str(model), algorithm="split")
    signals = forward_signals(
        cloud.xyz, cloud.p0, cloud.sigma, array.positions, n_samples, fs, sound_speed, t0, m,
        faces_of(array),
    )  # fmt: skip
    signals = _as_recorded(signals, fs, band, response, noise, seed)
    attrs = {"simulated_model": m.name, "noise": float(noise)}
    if band is not None:
        attrs["band_limit"] = np.asarray([b or 0.0 for b in band], dtype=np.float64)
    return Acquisition(
        signals=signals,
        positions=array.positions,
        fs=fs,
        sound_speed=sound_speed,
        t0=t0,
        normals=array.normals,
        areas=array.areas,
        truth_cloud=cloud,
        attrs=attrs,
        element=array.element,
    )
