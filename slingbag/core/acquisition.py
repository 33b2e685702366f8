"""One frame of measured (or simulated) sensor signals and the array that took them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputError
from .cloud import GaussianCloud
from .volume import Volume


@dataclass
class SensorArray:
    """Sensor positions (metres) with optional normals (unit, pointing into the medium
    being imaged) and areas (m^2)."""

    positions: np.ndarray
    normals: np.ndarray | None = None
    areas: np.ndarray | None = None
    name: str = "custom"

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        if self.normals is not None:
            self.normals = np.asarray(self.normals, dtype=np.float64).reshape(-1, 3)
        if self.areas is not None:
            self.areas = np.asarray(self.areas, dtype=np.float64).reshape(-1)

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class Acquisition:
    """One frame: ``signals[s, n]`` is sensor ``s`` at time ``t0 + n / fs``.

    Attributes
    ----------
    signals : ndarray, float32, shape (n_sensors, n_samples)
    positions : ndarray, float64, shape (n_sensors, 3), metres
    fs : float, sampling rate in Hz
    sound_speed : float, m/s
    t0 : float, time of sample 0 after the laser pulse, seconds
    normals, areas : optional per-sensor unit normals and areas
    truth_volume, truth_cloud : optional ground truth of simulated data
    source : the file this was read from (for messages), if any
    """

    signals: np.ndarray
    positions: np.ndarray
    fs: float
    sound_speed: float
    t0: float = 0.0
    normals: np.ndarray | None = None
    areas: np.ndarray | None = None
    truth_volume: Volume | None = None
    truth_cloud: GaussianCloud | None = None
    source: str | None = None
    attrs: dict = field(default_factory=dict)
    impulse_response: np.ndarray | None = None  # measured sensor response, 1-D at fs

    def __post_init__(self):
        self.signals = np.asarray(self.signals, dtype=np.float32)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.fs = float(self.fs)
        self.sound_speed = float(self.sound_speed)
        self.t0 = float(self.t0)

    @property
    def n_sensors(self) -> int:
        return self.signals.shape[0]

    @property
    def n_samples(self) -> int:
        return self.signals.shape[1]

    @property
    def times(self) -> np.ndarray:
        return self.t0 + np.arange(self.n_samples) / self.fs

    @property
    def array(self) -> SensorArray:
        return SensorArray(self.positions, self.normals, self.areas)

    def replace(self, **changes) -> Acquisition:
        return replace(self, **changes)

    def take_sensors(self, index) -> Acquisition:
        """The acquisition seen by the sensors ``index`` (indices or a boolean mask)
        only: their signals, positions, normals and areas."""

        def take(a):
            return None if a is None else np.asarray(a)[index]

        return self.replace(
            signals=self.signals[index],
            positions=self.positions[index],
            normals=take(self.normals),
            areas=take(self.areas),
        )


#: How far past the reach of its time window an array may spread (see check_acquisition).
REACH_FACTOR = 20.0


def check_acquisition(acq: Acquisition) -> Acquisition:
    """Refuse an acquisition no reconstruction can use; return it unchanged otherwise.

    The one check every command that reads an acquisition runs (``reconstruct``,
    ``reconstruct-series``, ``ubp``, ``convert``, through
    :func:`slingbag.io.formats.load_acquisition`), and :func:`slingbag.reconstruct`:
    finite signals that are not all zero, one position per sensor, and an array no wider
    than its time window can cover.  A point every sensor records lies within the
    window's reach ``c (t0 + (n_samples - 1) / fs)`` of each, so no two sensors are more
    than twice that apart; an array ``REACH_FACTOR`` reaches wide is one in millimetres
    read as metres (a 36 mm array, 36 m), which the 10 m bound at reading misses.

    Raises
    ------
    InputError
        Naming the file, the field and what was expected.
    """
    src = acq.source
    if not np.all(np.isfinite(acq.signals)):
        raise InputError(src, "signals", "finite values", "NaN or Inf")
    if not np.any(acq.signals):
        raise InputError(src, "signals", "a non-zero signal", "all zeros")
    pos = acq.positions
    if len(pos) > 1:
        from scipy.spatial import cKDTree

        pairs = cKDTree(pos).query_pairs(1e-9, output_type="ndarray")
        if len(pairs):
            i, j = sorted(int(k) for k in pairs[0])
            at = ", ".join(f"{v:.6g}" for v in pos[i])
            raise InputError(
                src,
                "sensors/positions",
                "a distinct position for every sensor",
                f"sensors {i} and {j} both at ({at}) m"
                + (f", {len(pairs)} such pairs" if len(pairs) > 1 else ""),
            )
    reach = acq.sound_speed * (acq.t0 + (acq.n_samples - 1) / acq.fs)
    extent = float(np.ptp(pos, axis=0).max()) if len(pos) else 0.0
    if reach > 0 and extent > REACH_FACTOR * reach:
        mm = extent / 1000 <= REACH_FACTOR * reach
        raise InputError(
            src,
            "sensors/positions",
            f"an array the time window can cover (it reaches {reach * 1e3:.3g} mm at "
            f"{acq.sound_speed:g} m/s)",
            f"sensors {extent:.3g} m apart",
            hint="positions look like millimetres; divide by 1000"
            if mm
            else "check the positions' units, fs, t0 and the sound speed",
        )
    return acq
