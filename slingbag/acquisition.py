"""One frame of measured (or simulated) sensor signals and the array that took them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

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
