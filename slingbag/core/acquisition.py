"""One frame of measured (or simulated) sensor signals and the array that took them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputError
from .cloud import GaussianCloud
from .element import MAX_ELEMENT_SIZE, Element
from .volume import Volume


@dataclass
class SensorArray:
    """The sensors of an array: positions, and optionally normals and areas.

    The arrays are kept as float64 attributes of the same names, reshaped to
    ``(n_sensors, 3)`` and ``(n_sensors,)``; ``len(array)`` is the number of sensors.

    Parameters
    ----------
    positions : array_like, shape (n_sensors, 3)
        Sensor positions in metres.
    normals : array_like, shape (n_sensors, 3), optional
        Unit normals, pointing into the medium being imaged.
    areas : array_like, shape (n_sensors,), optional
        Sensor areas in m^2, for the solid-angle weights of back-projection.
    name : str
        The array's name (a preset's, or a positions file's), as simulated files record it.
    element : Element, optional
        The sensors' faces; None (or a ``point`` element) for point sensors.  A disc or
        rectangle needs ``normals``.
    """

    positions: np.ndarray
    normals: np.ndarray | None = None
    areas: np.ndarray | None = None
    name: str = "custom"
    element: Element | None = None

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

    The parameters are kept as attributes of the same names (``signals`` as float32,
    ``positions`` as float64 of shape ``(n_sensors, 3)``, the three scalars as floats).

    Parameters
    ----------
    signals : array_like, shape (n_sensors, n_samples)
        The recorded pressure, in any unit.
    positions : array_like, shape (n_sensors, 3)
        Sensor positions in metres.
    fs : float
        Sampling rate in Hz.
    sound_speed : float
        Speed of sound in m/s.
    t0 : float
        Time of sample 0 after the laser pulse, in seconds.
    normals, areas : ndarray, optional
        Per-sensor unit normals ``(n_sensors, 3)``, pointing into the medium, and areas
        ``(n_sensors,)`` in m^2.
    truth_volume, truth_cloud : Volume, GaussianCloud, optional
        The ground truth of simulated data.
    source : str, optional
        The file this was read from, for messages.
    attrs : dict
        Other metadata, read from and written to the file's root attributes (how the
        data were simulated, the layout they were read from).
    impulse_response : ndarray, shape (n_taps,), optional
        The measured sensor response, sampled at ``fs`` with tap 0 at time 0.
    element : Element, optional
        The sensors' faces (SPEC section 7); None for point sensors.  A disc or rectangle
        needs ``normals``.
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
    element: Element | None = None

    def __post_init__(self):
        self.signals = np.asarray(self.signals, dtype=np.float32)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.fs = float(self.fs)
        self.sound_speed = float(self.sound_speed)
        self.t0 = float(self.t0)

    @property
    def n_sensors(self) -> int:
        """The number of sensors (rows of ``signals``)."""
        return self.signals.shape[0]

    @property
    def n_samples(self) -> int:
        """The number of samples per sensor (columns of ``signals``)."""
        return self.signals.shape[1]

    @property
    def times(self) -> np.ndarray:
        """The time of each sample after the laser pulse, ``t0 + n / fs``, in seconds."""
        return self.t0 + np.arange(self.n_samples) / self.fs

    @property
    def array(self) -> SensorArray:
        """The sensors as a :class:`SensorArray` (positions, normals and areas)."""
        return SensorArray(self.positions, self.normals, self.areas, element=self.element)

    @property
    def faces(self) -> Element | None:
        """The element the radiator must average over: None for point sensors."""
        return None if self.element is None or self.element.is_point else self.element

    def replace(self, **changes) -> Acquisition:
        """Return a copy with some fields changed.

        Parameters
        ----------
        **changes
            New values of fields, by name (``fs=...``, ``signals=...``).

        Returns
        -------
        Acquisition
            A new acquisition; the fields not named are shared with this one.
        """
        return replace(self, **changes)

    def take_sensors(self, index) -> Acquisition:
        """Return the acquisition seen by some of the sensors only.

        Parameters
        ----------
        index : array_like of int or bool
            Indices of the sensors to keep, or a boolean mask over the sensors.

        Returns
        -------
        Acquisition
            Their signals, positions, normals and areas; the other fields as in this one.
        """

        def take(a):
            return None if a is None else np.asarray(a)[index]

        return self.replace(
            signals=self.signals[index],
            positions=self.positions[index],
            normals=take(self.normals),
            areas=take(self.areas),
            element=None if self.element is None else self.element.take(index),
        )


#: How far past the reach of its time window an array may spread (see check_acquisition).
REACH_FACTOR = 20.0
#: How far a rectangle's width axis may be from unit length and from the face's plane.
AXIS_TOLERANCE = 1e-3


def check_element(element, normals, n_sensors: int, source=None) -> None:
    """Refuse an element that does not fit its array (SPEC section 7).

    A point element (or None) always fits.  A disc or rectangle needs the array's
    normals, one size per sensor (``(n,)`` diameters or ``(n, 2)`` width and height) in
    ``(0, MAX_ELEMENT_SIZE]`` metres and, for a rectangle, optional unit width axes that lie
    in each face (``|axis . normal| <= AXIS_TOLERANCE``).

    Parameters
    ----------
    element : Element or None
    normals : ndarray (n_sensors, 3) or None
        The array's normals.
    n_sensors : int
    source : str, optional
        The file, for the message.

    Raises
    ------
    InputError
        Naming ``source`` and the field of the acquisition file at fault
        (``sensors/normals``, ``sensors/element_size``, ``sensors/element_axis``).
    """
    if element is None or element.is_point:
        return
    if normals is None:
        raise InputError(
            source,
            "sensors/normals",
            f"sensor normals to orient the {element.shape} faces",
            got="none",
            hint="add sensors/normals, or read the sensors as points (--element point)",
        )
    _check_element_size(element, n_sensors, source)
    if element.shape == "rect" and element.axis is not None:
        _check_element_axis(element.axis, normals, n_sensors, source)


def _check_element_size(element, n: int, source) -> None:
    field = "sensors/element_size"
    want = (n,) if element.shape == "disc" else (n, 2)
    what = "disc diameters" if element.shape == "disc" else "rectangle width and height"
    size = element.size
    if size is None or size.shape != want:
        got = "none" if size is None else f"shape {size.shape}"
        raise InputError(source, field, f"shape {want} ({what}, metres)", got=got)
    bad = ~np.isfinite(size) | (size <= 0) | (size > MAX_ELEMENT_SIZE)
    if bad.any():
        value = float(size.reshape(-1)[int(np.argmax(bad.reshape(-1)))])
        raise InputError(
            source,
            field,
            f"finite sizes in (0, {MAX_ELEMENT_SIZE:g}] m",
            got=f"{value:g} ({int(bad.sum())} of {size.size} values out of range)",
            hint="sizes are in metres: 3 mm is 3e-3" if value > MAX_ELEMENT_SIZE else None,
        )


def _check_element_axis(axis, normals, n: int, source) -> None:
    field = "sensors/element_axis"
    if axis.shape != (n, 3):
        raise InputError(source, field, f"shape ({n}, 3) (width axes)", got=f"shape {axis.shape}")
    if not np.isfinite(axis).all():
        raise InputError(source, field, "finite values", got="NaN or Inf")
    lengths = np.linalg.norm(axis, axis=1)
    worst = int(np.argmax(np.abs(lengths - 1)))
    if abs(lengths[worst] - 1) > AXIS_TOLERANCE:
        raise InputError(
            source, field, "unit vectors", got=f"length {lengths[worst]:g} at sensor {worst}"
        )
    unit = np.asarray(normals, np.float64).reshape(-1, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
        tilt = np.abs(np.sum(axis / lengths[:, None] * unit, axis=1))
    bad = ~(tilt <= AXIS_TOLERANCE)  # NaN (a zero normal) counts as bad
    if bad.any():
        worst = int(np.argmax(bad))
        raise InputError(
            source,
            field,
            "axes in the face (perpendicular to sensors/normals)",
            got=f"|axis . normal| = {tilt[worst]:.3g} at sensor {worst}",
        )


def check_acquisition(acq: Acquisition) -> Acquisition:
    """Refuse an acquisition no reconstruction can use; return it unchanged otherwise.

    The one check every command that reads an acquisition runs (``reconstruct``,
    ``reconstruct-series``, ``ubp``, ``convert``, through
    :func:`slingbag.io.formats.load_acquisition`), and :func:`slingbag.reconstruct`:
    finite signals that are not all zero, one position per sensor, and an array no wider
    than its time window can cover.  A point every sensor records lies within the
    window's reach ``c (t0 + (n_samples - 1) / fs)`` of each, so no two sensors are more
    than twice that apart; an array ``REACH_FACTOR`` reaches wide is one in millimetres
    read as metres (a 36 mm array, 36 m), which the 10 m bound at reading misses.  The
    sensors' faces must fit the array (:func:`check_element`).

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
    check_element(acq.element, acq.normals, acq.n_sensors, src)
    return acq
