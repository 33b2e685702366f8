"""Acquisition and result files in HDF5 (layouts in docs/formats.md).

Readers check everything a later stage relies on and report the first problem as one
:class:`~slingbag.errors.InputError` line naming the file, the dataset or attribute, and
what was expected.  Writers go through :func:`~slingbag.io.atomic.atomic_path`, so a failed or
interrupted write leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..core.acquisition import Acquisition, SensorArray, check_element
from ..core.cloud import GaussianCloud
from ..core.element import SHAPES, Element
from ..core.geometry import MAX_COORDINATE
from ..core.volume import Volume
from ..errors import InputError
from .atomic import atomic_path

ACQUISITION_FORMAT = "slingbag-acquisition"
RESULT_FORMAT = "slingbag-result"
FORMAT_VERSION = 1

# Plausible physical ranges; values outside are almost always a unit mistake.
FS_RANGE = (1e5, 1e10)  # Hz
SOUND_SPEED_RANGE = (300.0, 5000.0)  # m/s
NORMAL_TOLERANCE = 1e-3  # allowed | |n| - 1 |
# Newer HDF5 object headers carry checksums, so a damaged file fails cleanly on open
# instead of being parsed (some damaged old-style headers send HDF5 into a loop).
_LIBVER = ("v110", "latest")

# Root attributes the acquisition format defines itself (not copied into ``attrs``).
_ACQ_RESERVED = {"format", "version", "fs", "sound_speed", "t0"}
_RESULT_RESERVED = {"format", "version"}


# --------------------------------------------------------------------------- opening


@contextlib.contextmanager
def _open_for_reading(path, what: str):
    """Open ``path`` with h5py and turn every low-level failure into an InputError.

    Reading a damaged file can fail anywhere (on open, or on the first read of a dataset
    whose chunks lie past the end of a truncated file), so the whole block is guarded.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise InputError(source, None, f"an existing {what} HDF5 file", hint="file not found")
    if not os.path.isfile(source):
        raise InputError(source, None, f"a {what} HDF5 file", got="a directory")
    try:
        handle = h5py.File(source, "r")
    except OSError as exc:
        raise InputError(
            source,
            None,
            f"a {what} HDF5 file",
            got=_short_reason(exc),
        ) from None
    try:
        with handle:
            yield handle, source
    except InputError:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            source,
            None,
            f"a readable {what} HDF5 file",
            got=_short_reason(exc),
            hint="damaged or truncated file",
        ) from None


def _short_reason(exc: Exception) -> str:
    """h5py's message in a few words (its own are long and name HDF5 internals)."""
    text = str(exc).splitlines()[0].strip() if str(exc) else type(exc).__name__
    if "signature not found" in text:
        return "no HDF5 signature"
    if "truncated file" in text:
        return "a truncated file"
    return text


# --------------------------------------------------------------------------- datasets


def _dataset(group, name: str, source: str, *, required: bool = True, what: str = ""):
    """The h5py dataset ``name`` of ``group``, checked to be numeric."""
    item = group.get(name)
    if item is None:
        if required:
            raise InputError(source, name, f"a dataset '{name}'" + (f" ({what})" if what else ""))
        return None
    if not isinstance(item, h5py.Dataset):
        raise InputError(source, name, "a dataset", got=f"a {type(item).__name__}")
    if item.dtype.kind not in "fiub":
        raise InputError(source, name, "a numeric dataset", got=f"dtype {item.dtype}")
    return item


def _read_array(group, name, source, *, ndim, dtype, required=True, what="", allow_empty=False):
    """Read dataset ``name`` as ``dtype`` after checking its number of dimensions."""
    item = _dataset(group, name, source, required=required, what=what)
    if item is None:
        return None
    if item.ndim != ndim:
        raise InputError(
            source,
            name,
            f"{ndim}-D data" + (f" ({what})" if what else ""),
            got=f"shape {item.shape}",
        )
    if item.size == 0 and not allow_empty:
        raise InputError(source, name, "a non-empty dataset", got=f"shape {item.shape}")
    return np.asarray(item[()], dtype=dtype)


def _require_finite(values: np.ndarray, source: str, name: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), values.shape))
        raise InputError(
            source,
            name,
            "finite values",
            got=f"NaN/Inf in {int(bad.sum())} of {values.size} values (first at {first})",
        )


def _check_positions(positions: np.ndarray, source: str, name: str) -> None:
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(source, name, "shape (n, 3)", got=f"shape {positions.shape}")
    _require_finite(positions, source, name)
    largest = float(np.abs(positions).max())
    if largest > MAX_COORDINATE:
        raise InputError(
            source,
            name,
            f"coordinates in metres (|value| <= {MAX_COORDINATE:g} m)",
            got=f"{largest:g}",
            hint="positions look like millimetres; divide by 1000",
        )


# --------------------------------------------------------------------------- attributes


def _plain(value):
    """An HDF5 attribute value as plain Python (str, float, int, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return [_plain(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _float_attr(attrs, name, source, *, required=True, default=None):
    """A finite scalar number attribute."""
    if name not in attrs:
        if required:
            raise InputError(source, f"attribute {name}", "a root attribute '" + name + "'")
        return default
    value = _plain(attrs[name])
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(source, f"attribute {name}", "a number", got=repr(value))
    value = float(value)
    if not np.isfinite(value):
        raise InputError(source, f"attribute {name}", "a finite number", got=value)
    return value


def _check_format(attrs, source, expected):
    if "format" in attrs:
        found = _plain(attrs["format"])
        if found != expected:
            hint = None
            if found in (ACQUISITION_FORMAT, RESULT_FORMAT):
                hint = f"this is a slingbag {found.split('-')[1]} file"
            raise InputError(source, "attribute format", repr(expected), got=repr(found), hint=hint)
    if "version" in attrs:
        version = _plain(attrs["version"])
        if not isinstance(version, (int, float)) or version < 1 or version > FORMAT_VERSION:
            raise InputError(
                source,
                "attribute version",
                f"format version {FORMAT_VERSION}",
                got=repr(version),
                hint="written by a newer slingbag?",
            )


def _check_fs(fs, source):
    lo, hi = FS_RANGE
    if not lo <= fs <= hi:
        hint = None
        if fs < lo and fs > 0:
            hint = "fs is in Hz: 40 MHz is 40e6"
        raise InputError(
            source,
            "attribute fs",
            f"a sampling rate in [{lo:g}, {hi:g}] Hz",
            got=f"{fs:g}",
            hint=hint,
        )


def _check_sound_speed(c, source):
    lo, hi = SOUND_SPEED_RANGE
    if not lo <= c <= hi:
        hint = None
        if 0 < c < 100:
            hint = "this looks like mm/us or km/s; the unit is m/s: 1.5 km/s is 1500"
        elif c > hi:
            hint = "the unit is m/s; water is about 1500"
        raise InputError(
            source,
            "attribute sound_speed",
            f"a sound speed in [{lo:g}, {hi:g}] m/s",
            got=f"{c:g}",
            hint=hint,
        )


def _extra_attrs(attrs, reserved) -> dict:
    return {key: _plain(value) for key, value in attrs.items() if key not in reserved}


def _write_attr(attrs, key, value) -> None:
    """Store ``value`` as an attribute when HDF5 can hold it plainly; skip it otherwise."""
    if value is None or isinstance(value, dict):
        return
    if isinstance(value, str):
        _write_text_attr(attrs, key, [value], scalar=True)
        return
    if isinstance(value, (bool, int, float, np.generic)):
        attrs[key] = value
        return
    array = np.asarray(value)
    if array.dtype.kind in "biuf" and array.ndim <= 1:
        attrs[key] = array
    elif array.dtype.kind == "U" and array.ndim == 1:
        _write_text_attr(attrs, key, [str(v) for v in array], scalar=False)


def _write_text_attr(attrs, key, texts, scalar) -> None:
    """Text as fixed-length UTF-8.

    Variable-length strings live in HDF5's global heap, which has no checksum; a damaged
    one can hang the reader.  Fixed-length text sits in the checksummed object header.
    """
    encoded = [t.encode("utf-8") for t in texts]
    width = max(1, *(len(e) for e in encoded))
    data = np.array(encoded[0] if scalar else encoded, dtype=f"S{width}")
    attrs.create(key, data, dtype=h5py.string_dtype("utf-8", width))


# --------------------------------------------------------------------------- clouds, volumes


def _read_cloud(group, source, prefix) -> GaussianCloud:
    xyz = _read_array(group, "xyz", source, ndim=2, dtype=np.float64, what="(N, 3) centres")
    p0 = _read_array(group, "p0", source, ndim=1, dtype=np.float64, what="(N,) amplitudes")
    sigma = _read_array(group, "sigma", source, ndim=1, dtype=np.float64, what="(N,) sizes")
    if xyz.shape[1] != 3:
        raise InputError(source, f"{prefix}/xyz", "shape (N, 3)", got=f"shape {xyz.shape}")
    n = len(xyz)
    for name, values in (("p0", p0), ("sigma", sigma)):
        if len(values) != n:
            raise InputError(
                source, f"{prefix}/{name}", f"{n} values (one per ball in xyz)", got=len(values)
            )
    for name, values in (("xyz", xyz), ("p0", p0), ("sigma", sigma)):
        _require_finite(values, source, f"{prefix}/{name}")
    if (sigma <= 0).any():
        raise InputError(source, f"{prefix}/sigma", "positive ball sizes", got=f"{sigma.min():g}")
    return GaussianCloud(xyz, p0, sigma)


def _write_cloud(group, cloud: GaussianCloud) -> None:
    group.create_dataset("xyz", data=np.asarray(cloud.xyz, dtype=np.float64))
    group.create_dataset("p0", data=np.asarray(cloud.p0, dtype=np.float64))
    group.create_dataset("sigma", data=np.asarray(cloud.sigma, dtype=np.float64))


def write_cloud_history(group, cloud: GaussianCloud | None, history: dict | None) -> None:
    """``cloud/{xyz,p0,sigma}`` (float64) and ``history/<name>`` (1-D) in ``group``,
    each when given: the layout of a result file and of each frame of a series."""
    if cloud is not None:
        _write_cloud(group.create_group("cloud"), cloud)
    if history is not None:
        h = group.require_group("history")
        for name, values in history.items():
            h.create_dataset(name, data=np.asarray(values).reshape(-1))


def _read_volume_dataset(group, name, source) -> Volume:
    data = _read_array(group, name, source, ndim=3, dtype=np.float32, what="(nx, ny, nz) voxels")
    _require_finite(data, source, name)
    attrs = group[name].attrs
    geometry = {}
    for key in ("origin", "spacing"):
        if key not in attrs:
            raise InputError(source, f"{name} attribute {key}", "3 floats (metres)")
        try:
            value = np.broadcast_to(np.asarray(_plain(attrs[key]), dtype=np.float64), (3,))
        except (TypeError, ValueError):
            raise InputError(
                source, f"{name} attribute {key}", "3 floats (metres)", got=repr(_plain(attrs[key]))
            ) from None
        if not np.isfinite(value).all():
            raise InputError(source, f"{name} attribute {key}", "finite values", got=value)
        geometry[key] = value
    if (geometry["spacing"] <= 0).any():
        raise InputError(
            source,
            f"{name} attribute spacing",
            "positive voxel sizes (metres)",
            got=geometry["spacing"],
        )
    if np.abs(geometry["origin"]).max() > MAX_COORDINATE or geometry["spacing"].max() > 1.0:
        raise InputError(
            source,
            f"{name} attribute origin/spacing",
            "metres",
            got=f"origin {geometry['origin']}, spacing {geometry['spacing']}",
            hint="these look like millimetres; divide by 1000",
        )
    return Volume(data, geometry["origin"], geometry["spacing"])


def _write_volume(group, name, volume: Volume) -> None:
    dataset = group.create_dataset(
        name,
        data=np.asarray(volume.data, dtype=np.float32),
        compression="gzip",
        compression_opts=4,
        shuffle=True,
    )
    dataset.attrs["origin"] = np.asarray(volume.origin, dtype=np.float64)
    dataset.attrs["spacing"] = np.asarray(volume.spacing, dtype=np.float64)


# --------------------------------------------------------------------------- acquisitions


def _read_signals(f, source, frame):
    item = _dataset(f, "signals", source, what="(n_sensors, n_samples) pressure")
    if item.ndim == 3:
        if frame is None and item.shape[0] != 1:
            raise InputError(
                source,
                "signals",
                "one frame (n_sensors, n_samples)",
                got=f"{item.shape[0]} frames, shape {item.shape}",
                hint="choose one with --frame",
            )
        frame = 0 if frame is None else frame
        if not 0 <= frame < item.shape[0]:
            raise InputError(source, "--frame", f"a frame in [0, {item.shape[0] - 1}]", got=frame)
        if item.shape[1] == 0 or item.shape[2] == 0:
            raise InputError(source, "signals", "non-empty signals", got=f"shape {item.shape}")
        return np.asarray(item[frame], dtype=np.float32)
    if frame not in (None, 0):
        raise InputError(source, "--frame", "frame 0 (this file holds a single frame)", got=frame)
    return _read_array(
        f, "signals", source, ndim=2, dtype=np.float32, what="(n_sensors, n_samples) pressure"
    )


def _read_sensor_extras(f, source, n_sensors):
    normals = _read_array(f, "sensors/normals", source, ndim=2, dtype=np.float64, required=False)
    if normals is not None:
        if normals.shape != (n_sensors, 3):
            raise InputError(
                source, "sensors/normals", f"shape ({n_sensors}, 3)", got=f"shape {normals.shape}"
            )
        _require_finite(normals, source, "sensors/normals")
        lengths = np.linalg.norm(normals, axis=1)
        worst = int(np.argmax(np.abs(lengths - 1)))
        if abs(lengths[worst] - 1) > NORMAL_TOLERANCE:
            raise InputError(
                source,
                "sensors/normals",
                "unit vectors",
                got=f"length {lengths[worst]:g} at sensor {worst}",
                hint="normalise each row",
            )
    areas = _read_array(f, "sensors/areas", source, ndim=1, dtype=np.float64, required=False)
    if areas is not None:
        if areas.shape != (n_sensors,):
            raise InputError(
                source, "sensors/areas", f"shape ({n_sensors},)", got=f"shape {areas.shape}"
            )
        _require_finite(areas, source, "sensors/areas")
        if (areas <= 0).any():
            raise InputError(
                source, "sensors/areas", "positive areas (m^2)", got=f"{areas.min():g}"
            )
    return normals, areas


def _read_element(f, source, n_sensors, normals) -> Element | None:
    """The sensors' faces (SPEC section 7), or None for point sensors.

    The attribute ``element_shape`` of the ``sensors`` group names the shape;
    ``sensors/element_size`` holds ``(n,)`` disc diameters or ``(n, 2)`` rectangle widths
    and heights, ``sensors/element_axis`` (rectangles, optional) the width axes.
    """
    group = f.get("sensors")
    if not isinstance(group, h5py.Group) or "element_shape" not in group.attrs:
        return None
    shape = _plain(group.attrs["element_shape"])
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    if shape not in SHAPES:
        raise InputError(
            source, "sensors attribute element_shape", "one of " + ", ".join(SHAPES), repr(shape)
        )
    if shape == "point":
        return None
    what = "(n_sensors,) disc diameters" if shape == "disc" else "(n_sensors, 2) width, height"
    if normals is None:
        check_element(Element(shape), None, n_sensors, source)  # names sensors/normals
    size = _read_array(
        f,
        "sensors/element_size",
        source,
        ndim=1 if shape == "disc" else 2,
        dtype=np.float64,
        what=f"{what}, metres",
    )
    axis = None
    if shape == "rect":
        axis = _read_array(
            f,
            "sensors/element_axis",
            source,
            ndim=2,
            dtype=np.float64,
            required=False,
            what="(n_sensors, 3) unit width axes",
        )
        if axis is not None and axis.shape != (n_sensors, 3):
            raise InputError(
                source, "sensors/element_axis", f"shape ({n_sensors}, 3)", f"shape {axis.shape}"
            )
    element = Element(shape, size, axis)
    check_element(element, normals, n_sensors, source)
    return element


def _write_element(f, element: Element | None) -> None:
    """``element_shape`` on ``sensors``, with ``element_size`` and ``element_axis``."""
    if element is None:
        return
    _write_attr(f["sensors"].attrs, "element_shape", element.shape)
    if element.is_point:
        return
    f.create_dataset("sensors/element_size", data=np.asarray(element.size, np.float64))
    if element.shape == "rect" and element.axis is not None:
        f.create_dataset("sensors/element_axis", data=np.asarray(element.axis, np.float64))


def read_acquisition(path, *, frame: int | None = None) -> Acquisition:
    """Read and check one frame of sensor signals.

    Parameters
    ----------
    path : str or os.PathLike
        An acquisition HDF5 file, as described on the file-format page of the
        documentation (docs/formats.md).
    frame : int, optional
        Which frame to read when ``signals`` is 3-D ``(n_frames, n_sensors, n_samples)``.

    Returns
    -------
    Acquisition
        With ``source`` set to ``path``, any extra root attributes in ``attrs`` and the
        sensors' faces in ``element`` (None for point sensors).

    Raises
    ------
    InputError
        On the first problem found (a missing dataset or attribute, a shape that
        disagrees, NaN or Inf, positions beyond 10 m that look like millimetres, a sampling
        rate or sound speed out of physical range, an element that does not fit the
        array), naming the file, the field and what was expected.
    """
    with _open_for_reading(path, "slingbag acquisition") as (f, source):
        _check_format(f.attrs, source, ACQUISITION_FORMAT)
        signals = _read_signals(f, source, frame)
        positions = _read_array(
            f, "sensors/positions", source, ndim=2, dtype=np.float64, what="(n_sensors, 3) metres"
        )
        _check_positions(positions, source, "sensors/positions")
        if len(positions) != len(signals):
            raise InputError(
                source,
                "sensors/positions",
                f"{len(signals)} rows (one per row of signals)",
                got=f"{len(positions)} rows",
            )
        _require_finite(signals, source, "signals")
        normals, areas = _read_sensor_extras(f, source, len(signals))
        element = _read_element(f, source, len(signals), normals)
        fs = _float_attr(f.attrs, "fs", source)
        _check_fs(fs, source)
        sound_speed = _float_attr(f.attrs, "sound_speed", source)
        _check_sound_speed(sound_speed, source)
        t0 = _float_attr(f.attrs, "t0", source, required=False, default=0.0)
        response = _read_array(
            f,
            "sensors/impulse_response",
            source,
            ndim=1,
            dtype=np.float64,
            required=False,
            what="(n_taps,) response sampled at fs, sample 0 at time 0",
        )
        if response is not None:
            _require_finite(response, source, "sensors/impulse_response")
        truth_volume = truth_cloud = None
        if "truth/volume" in f:
            truth_volume = _read_volume_dataset(f, "truth/volume", source)
        if "truth/cloud" in f:
            truth_cloud = _read_cloud(f["truth/cloud"], source, "truth/cloud")
        return Acquisition(
            signals=signals,
            positions=positions,
            fs=fs,
            sound_speed=sound_speed,
            t0=t0,
            normals=normals,
            areas=areas,
            truth_volume=truth_volume,
            truth_cloud=truth_cloud,
            source=source,
            attrs=_extra_attrs(f.attrs, _ACQ_RESERVED),
            impulse_response=response,
            element=element,
        )


def write_acquisition(path, acq: Acquisition) -> None:
    """Write one frame as an acquisition HDF5 file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    acq : Acquisition
        Signals, sensors, timing and optional truth; entries of ``acq.attrs`` that HDF5 can
        hold as attributes (strings, numbers, 1-D numeric arrays) are stored at the root.
    """
    signals = np.asarray(acq.signals, dtype=np.float32)
    if signals.ndim != 2 or len(acq.positions) != signals.shape[0]:
        raise ValueError(
            f"write_acquisition: signals {signals.shape} and positions {acq.positions.shape} "
            "disagree"
        )
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=_LIBVER) as f:
        for key, value in (acq.attrs or {}).items():
            if key not in _ACQ_RESERVED:
                _write_attr(f.attrs, key, value)
        _write_attr(f.attrs, "format", ACQUISITION_FORMAT)
        f.attrs["version"] = FORMAT_VERSION
        f.attrs["fs"] = float(acq.fs)
        f.attrs["sound_speed"] = float(acq.sound_speed)
        f.attrs["t0"] = float(acq.t0)
        f.create_dataset("signals", data=signals)
        f.create_dataset("sensors/positions", data=np.asarray(acq.positions, np.float64))
        if acq.normals is not None:
            f.create_dataset("sensors/normals", data=np.asarray(acq.normals, np.float64))
        if acq.areas is not None:
            f.create_dataset("sensors/areas", data=np.asarray(acq.areas, np.float64))
        _write_element(f, acq.element)
        if acq.impulse_response is not None:
            f.create_dataset(
                "sensors/impulse_response", data=np.asarray(acq.impulse_response, np.float64)
            )
        if acq.truth_volume is not None:
            _write_volume(f, "truth/volume", acq.truth_volume)
        if acq.truth_cloud is not None:
            _write_cloud(f.create_group("truth/cloud"), acq.truth_cloud)


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """What a result file holds, as :func:`read_result` returns it.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    volume : Volume or None
        The reconstructed image.
    cloud : GaussianCloud or None
        The reconstructed balls (SlingBAG runs only).
    history : dict of str -> ndarray
        Per-iteration traces (loss, ball count, time...).
    attrs : dict
        Root attributes: ``method``, ``config`` (TOML text), ``software_version``...
    sensor_positions : ndarray (n_sensors, 3) or None
        The array that took the data, for viewers.
    source : str or None
        The file this was read from.
    """

    volume: Volume | None = None
    cloud: GaussianCloud | None = None
    history: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    sensor_positions: np.ndarray | None = None
    source: str | None = None


def write_result(
    path,
    *,
    volume: Volume | None = None,
    cloud: GaussianCloud | None = None,
    history: dict | None = None,
    attrs: dict | None = None,
    sensors=None,
) -> None:
    """Write a reconstruction result, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    volume : Volume, optional
        Stored as float32 ``volume`` with ``origin`` and ``spacing`` attributes.
    cloud : GaussianCloud, optional
        Stored as ``cloud/xyz``, ``cloud/p0``, ``cloud/sigma``.
    history : dict of str -> 1-D array, optional
        Stored as ``history/<name>``.
    attrs : dict, optional
        Extra root attributes (e.g. ``method``, ``config`` TOML text).
    sensors : SensorArray or array (n_sensors, 3), optional
        Sensor positions, stored as ``sensors/positions``.
    """
    from .._version import __version__

    if volume is None and cloud is None:
        raise ValueError("write_result: give a volume, a cloud or both")
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=_LIBVER) as f:
        for key, value in (attrs or {}).items():
            if key not in _RESULT_RESERVED:
                _write_attr(f.attrs, key, value)
        _write_attr(f.attrs, "format", RESULT_FORMAT)
        f.attrs["version"] = FORMAT_VERSION
        if "software_version" not in f.attrs:
            _write_attr(f.attrs, "software_version", __version__)
        if volume is not None:
            _write_volume(f, "volume", volume)
        write_cloud_history(f, cloud, history or None)
        if sensors is not None:
            positions = sensors.positions if isinstance(sensors, SensorArray) else sensors
            f.create_dataset("sensors/positions", data=np.asarray(positions, np.float64))


def read_result(path) -> Result:
    """Read and check a result file written by :func:`write_result`.

    Parameters
    ----------
    path : str or os.PathLike
        A result HDF5 file (of ``slingbag reconstruct``, ``ubp`` or ``mb``).

    Returns
    -------
    Result
        Its volume, cloud, history, root attributes and sensor positions, with
        ``source`` set to ``path``.

    Raises
    ------
    InputError
        If the file is not a readable result (wrong format, no volume nor cloud, bad shapes
        or values).
    """
    with _open_for_reading(path, "slingbag result") as (f, source):
        _check_format(f.attrs, source, RESULT_FORMAT)
        if "volume" not in f and "cloud" not in f:
            raise InputError(
                source,
                "volume",
                "a 'volume' dataset or a 'cloud' group",
                hint="is this a result file?",
            )
        volume = _read_volume_dataset(f, "volume", source) if "volume" in f else None
        cloud = _read_cloud(f["cloud"], source, "cloud") if "cloud" in f else None
        history = {}
        if "history" in f:
            for name in f["history"]:
                values = _read_array(
                    f["history"], name, source, ndim=1, dtype=np.float64, allow_empty=True
                )
                history[name] = values
        positions = None
        if "sensors/positions" in f:
            positions = _read_array(f, "sensors/positions", source, ndim=2, dtype=np.float64)
            _check_positions(positions, source, "sensors/positions")
        return Result(
            volume, cloud, history, _extra_attrs(f.attrs, _RESULT_RESERVED), positions, source
        )


def read_volume(path) -> Volume:
    """Read a voxel volume from an HDF5 file.

    Looks for a dataset ``volume`` (a volume phantom or a result file) and then
    ``truth/volume`` (a simulated acquisition); each needs ``origin`` and ``spacing``
    attributes in metres.
    """
    with _open_for_reading(path, "volume") as (f, source):
        for name in ("volume", "truth/volume"):
            if name in f:
                return _read_volume_dataset(f, name, source)
        raise InputError(
            source,
            "volume",
            "a dataset 'volume' or 'truth/volume' with origin and spacing attributes",
        )
