"""Acquisitions in the formats other photoacoustic tools write (issue 7).

Four layouts are read and written, each picked by its content, not its file name:

``slingbag``
    slingbag's own acquisition HDF5 (SPEC section 7, :mod:`slingbag.io.native`).
``ipasc``
    The IPASC consensus HDF5 format, as written by the ``pacfish`` package:
    ``binary_time_series_data`` shaped ``(detectors, samples, wavelengths, frames)``,
    acquisition metadata in the group ``meta_data`` (``ad_sampling_rate`` in Hz,
    ``speed_of_sound`` in m/s, ...) and the device in ``meta_data_device`` with one group
    per detector under ``detectors`` (``detector_position`` in metres,
    ``detector_orientation`` read as the sensor normal).  Everything is SI.
``patato``
    PATATO's HDF5: ``raw_data`` shaped ``(frames, wavelengths, detectors, samples)``,
    ``GEOMETRY`` ``(detectors, 3)`` in metres, root attributes ``fs`` (Hz) and
    ``speedofsound`` (m/s), ``wavelengths`` in nm.
``slingbag-text``
    The SlingBAG paper's text layout: ``<prefix>_sensor_location.txt`` (N x 3 metres) and
    ``<prefix>_sensor_data.txt`` (N x T), tab separated, at 40 MHz and 1500 m/s unless
    told otherwise.

None of the foreign layouts has a field for the time of the first sample (``t0``) and the
text layout has none for fs, sound speed or normals, so the writers add them where the
layout leaves room without disturbing other readers: ``meta_data/slingbag_t0`` (IPASC),
the root attribute ``slingbag_t0`` and datasets ``slingbag_normals``/``slingbag_areas``
(PATATO), and the side files ``<prefix>_meta.json``, ``<prefix>_sensor_normal.txt``
and ``<prefix>_sensor_area.txt`` (text).  The readers use them when present, so every
format round-trips signals, positions, fs, sound speed, t0 and normals.

Every problem with a file is raised as one :class:`~slingbag.errors.InputError` naming
the file and the field.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from pathlib import Path

import h5py
import numpy as np

from ..core.acquisition import Acquisition, check_acquisition
from ..errors import InputError
from .atomic import atomic_path
from .native import (
    ACQUISITION_FORMAT,
    NORMAL_TOLERANCE,
    RESULT_FORMAT,
    _check_fs,
    _check_positions,
    _check_sound_speed,
    _dataset,
    _float_attr,
    _open_for_reading,
    _plain,
    _require_finite,
    read_acquisition,
    write_acquisition,
)

log = logging.getLogger("slingbag")

FORMATS = ("slingbag", "ipasc", "patato", "slingbag-text")

# The SlingBAG paper's scripts hard-code these for its text files.
TEXT_DEFAULT_FS = 40e6
TEXT_DEFAULT_SOUND_SPEED = 1500.0

LOCATION_SUFFIX = "_sensor_location.txt"
DATA_SUFFIX = "_sensor_data.txt"
NORMAL_SUFFIX = "_sensor_normal.txt"
AREA_SUFFIX = "_sensor_area.txt"
META_SUFFIX = "_meta.json"
TEXT_FORMAT = "slingbag-text"

IPASC_DATA = "binary_time_series_data"
IPASC_META = "meta_data"
IPASC_DEVICE = "meta_data_device"
T0_KEY = "slingbag_t0"

_ANY_FORMAT = (
    "an acquisition file: slingbag HDF5, IPASC HDF5, PATATO HDF5, or the SlingBAG text "
    "layout (<prefix>_sensor_location.txt + <prefix>_sensor_data.txt)"
)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _field_named(source: str, field: str):
    """Re-raise an InputError from a shared h5io check under this format's field name.

    h5io's range checks (fs, sound speed) name slingbag's own attributes; a user reading an
    IPASC file needs to hear about ``meta_data/ad_sampling_rate`` instead.
    """
    try:
        yield
    except InputError as exc:
        raise InputError(source, field, exc.expected, got=exc.got, hint=exc.hint) from None


def _natural_key(name: str):
    """Sort ``element_2`` before ``element_10``: IPASC writers do not all zero-pad ids."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _is_none_marker(value) -> bool:
    """pacfish stores a Python ``None`` as the string ``"None"``."""
    return isinstance(value, str) and value == "None"


def _scalar(group, name: str, source: str, field: str, *, required: bool, what: str):
    """A finite number stored as a scalar (or one-element) dataset; None when absent."""
    item = group.get(name) if group is not None else None
    if item is None or (
        isinstance(item, h5py.Dataset)
        and item.dtype.kind in "SOU"
        and _is_none_marker(_plain(item[()]))
    ):
        if required:
            raise InputError(source, field, what)
        return None
    if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu":
        raise InputError(source, field, what, got=_describe(item))
    values = np.asarray(item[()], dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InputError(source, field, what, got="an empty dataset")
    if not np.isfinite(values).all():
        raise InputError(source, field, "finite values", got=values[:4])
    return values


def _describe(item) -> str:
    if isinstance(item, h5py.Dataset):
        return f"a {item.dtype} dataset of shape {item.shape}"
    return f"a {type(item).__name__}"


def _wavelengths(group, name: str, count: int):
    """The optical wavelengths, one per wavelength axis entry, or None.

    They only label the output (``attrs``), so a missing or odd dataset is not an error.
    """
    item = group.get(name)
    if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu":
        return None
    values = np.asarray(item[()], dtype=np.float64).reshape(-1)
    return values if values.size == count else None


def _uniform_value(values: np.ndarray, source: str, field: str, option: str, unit: str):
    """One value from a dataset that may hold a map; slingbag models a uniform medium."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo > 1e-6 * max(abs(hi), 1.0):
        raise InputError(
            source,
            field,
            f"one global value ({unit}; slingbag models a homogeneous medium)",
            got=f"{values.size} values from {lo:g} to {hi:g}",
            hint=f"give {option}",
        )
    return lo


def _check_frame(source, index, count, option, what):
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise InputError(source, option, f"a whole {what} number", got=repr(index))
    if not 0 <= index < count:
        raise InputError(source, option, f"a {what} in [0, {count - 1}]", got=int(index))
    return int(index)


def _only_zero(source, index, option, why):
    if index != 0:
        raise InputError(source, option, f"0 ({why})", got=index)


def _check_override(value, option, check):
    """Validate an explicit --fs/--sound-speed with the same ranges as a file's value."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(option, None, "a number", got=repr(value)) from None
    if not np.isfinite(value):
        raise InputError(option, None, "a finite number", got=value)
    with _field_named(option, None):
        check(value, option)
    return value


def _normalised_normals(vectors: np.ndarray, source: str, field: str):
    """Unit normals from orientation vectors, or None when some vector is zero.

    IPASC leaves the length of ``detector_orientation`` open, so any non-zero vector is
    accepted and scaled to unit length; a zero vector carries no direction at all.
    """
    _require_finite(vectors, source, field)
    lengths = np.linalg.norm(vectors, axis=1)
    if (lengths <= 1e-12).any():
        log.warning("%s: %s has zero-length vectors; normals are left out", source, field)
        return None
    return vectors / lengths[:, None]


def _check_normals(normals, n, source, field):
    if normals.shape != (n, 3):
        raise InputError(source, field, f"shape ({n}, 3)", got=f"shape {normals.shape}")
    _require_finite(normals, source, field)
    lengths = np.linalg.norm(normals, axis=1)
    worst = int(np.argmax(np.abs(lengths - 1)))
    if abs(lengths[worst] - 1) > NORMAL_TOLERANCE:
        raise InputError(
            source,
            field,
            "unit vectors",
            got=f"length {lengths[worst]:g} at sensor {worst}",
            hint="normalise each row",
        )


def _check_areas(areas, n, source, field):
    if areas.shape != (n,):
        raise InputError(source, field, f"shape ({n},)", got=f"shape {areas.shape}")
    _require_finite(areas, source, field)
    if (areas <= 0).any():
        raise InputError(source, field, "positive areas (m^2)", got=f"{areas.min():g}")


def _apply_overrides(acq: Acquisition, fs, sound_speed) -> Acquisition:
    changes = {}
    if fs is not None:
        changes["fs"] = fs
    if sound_speed is not None:
        changes["sound_speed"] = sound_speed
    return acq.replace(**changes) if changes else acq


def _wavelength_nm(acq: Acquisition):
    value = (acq.attrs or {}).get("wavelength_nm")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return None


# --------------------------------------------------------------------------- detection


def _hdf5_kind(f: h5py.File, source: str) -> str:
    fmt = _plain(f.attrs.get("format", ""))
    if fmt == ACQUISITION_FORMAT:
        return "slingbag"
    if fmt == RESULT_FORMAT:
        raise InputError(
            source,
            None,
            _ANY_FORMAT,
            got="a slingbag result file",
            hint="results hold reconstructions, not signals",
        )
    if IPASC_DATA in f:
        return "ipasc"
    if "raw_data" in f:
        return "patato"
    if "signals" in f:
        return "slingbag"  # written by hand or by an older slingbag, without 'format'
    keys = ", ".join(sorted(f.keys())[:8]) or "nothing"
    raise InputError(
        source,
        None,
        _ANY_FORMAT,
        got=f"an HDF5 file holding {keys}",
        hint="slingbag looks for 'signals' (slingbag), 'binary_time_series_data' (IPASC) "
        "or 'raw_data' (PATATO)",
    )


def _looks_like_number_rows(path: Path) -> bool:
    """Whether a file starts with a row of numbers (the text layout's content)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except OSError:
        return False
    if b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = [w for w in re.split(r"[,;\s]+", line) if w]
        try:
            [float(w) for w in words[:64]]
        except ValueError:
            return False
        return True
    return False


def _text_pair(path) -> tuple[Path, Path, Path]:
    """``(prefix, location file, data file)`` of the text layout that ``path`` names.

    ``path`` may be either file of the pair, their common prefix, or a folder holding one
    pair.
    """
    source = os.fspath(path)
    p = Path(source)
    if p.is_dir():
        found = sorted(p.glob("*" + LOCATION_SUFFIX))
        if len(found) != 1:
            raise InputError(
                source,
                None,
                f"a folder with exactly one *{LOCATION_SUFFIX} (and its *{DATA_SUFFIX})",
                got=f"{len(found)} location files",
                hint="give the prefix or one of the two files" if found else None,
            )
        prefix = Path(str(found[0])[: -len(LOCATION_SUFFIX)])
    elif p.name.endswith(LOCATION_SUFFIX):
        prefix = Path(source[: -len(LOCATION_SUFFIX)])
    elif p.name.endswith(DATA_SUFFIX):
        prefix = Path(source[: -len(DATA_SUFFIX)])
    elif not p.exists():
        stem = source[:-1] if source.endswith("_") else source
        if not Path(stem + LOCATION_SUFFIX).exists() and not Path(stem + DATA_SUFFIX).exists():
            raise InputError(
                source,
                None,
                f"an existing file, or the prefix of a *{LOCATION_SUFFIX} / *{DATA_SUFFIX} pair",
                hint="file not found",
            )
        prefix = Path(stem)
    else:
        raise InputError(
            source,
            None,
            f"the SlingBAG text layout: files named <prefix>{LOCATION_SUFFIX} and "
            f"<prefix>{DATA_SUFFIX}",
            got=f"a text file named {p.name!r}",
            hint="rename the pair to that pattern so each file can be found from the other",
        )
    location = Path(str(prefix) + LOCATION_SUFFIX)
    data = Path(str(prefix) + DATA_SUFFIX)
    for needed in (location, data):
        if not needed.is_file():
            raise InputError(
                str(needed),
                None,
                f"the other file of the text pair {prefix}{LOCATION_SUFFIX} / {DATA_SUFFIX}",
                hint="file not found",
            )
    return prefix, location, data


def detect_format(path) -> str:
    """Which acquisition layout ``path`` holds, judged by its content.

    Parameters
    ----------
    path : str or os.PathLike
        An HDF5 file, either file of a text pair, their common prefix, or a folder holding
        one text pair.

    Returns
    -------
    str
        ``"slingbag"``, ``"ipasc"``, ``"patato"`` or ``"slingbag-text"``.

    Raises
    ------
    InputError
        When the path is none of them (the message says what was found).
    """
    source = os.fspath(path)
    p = Path(source)
    if p.is_dir() or not p.exists():
        _text_pair(p)  # raises with a clear message when it is not a text pair either
        return "slingbag-text"
    if h5py.is_hdf5(source):
        with _open_for_reading(source, "slingbag/IPASC/PATATO") as (f, src):
            return _hdf5_kind(f, src)
    if _looks_like_number_rows(p):
        _text_pair(p)
        return "slingbag-text"
    raise InputError(source, None, _ANY_FORMAT, got="neither HDF5 nor rows of numbers", hint=None)


# --------------------------------------------------------------------------- IPASC


def _ipasc_detectors(f, source, n_detectors):
    """Positions, normals (or None) and areas (or None) of the IPASC detectors, in order."""
    device = f.get(IPASC_DEVICE)
    if not isinstance(device, h5py.Group):
        raise InputError(source, IPASC_DEVICE, "a group 'meta_data_device' (the IPASC device)")
    group = device.get("detectors")
    field = f"{IPASC_DEVICE}/detectors"
    if not isinstance(group, h5py.Group):
        raise InputError(source, field, "a group with one subgroup per detection element")
    names = sorted(group.keys(), key=_natural_key)
    if len(names) != n_detectors:
        raise InputError(
            source,
            field,
            f"{n_detectors} detection elements (one per row of {IPASC_DATA})",
            got=len(names),
        )
    positions = np.empty((n_detectors, 3))
    orientations = np.empty((n_detectors, 3))
    have_orientation = True
    radii_or_faces = []
    for i, name in enumerate(names):
        element = group[name]
        where = f"{field}/{name}"
        if not isinstance(element, h5py.Group):
            raise InputError(source, where, "a group describing one detection element")
        pos = _scalar(
            element,
            "detector_position",
            source,
            f"{where}/detector_position",
            required=True,
            what="a dataset 'detector_position' (3 floats, metres)",
        )
        if pos.size != 3:
            raise InputError(
                source, f"{where}/detector_position", "3 floats (metres)", got=f"{pos.size}"
            )
        positions[i] = pos
        orient = _scalar(
            element,
            "detector_orientation",
            source,
            f"{where}/detector_orientation",
            required=False,
            what="3 floats",
        )
        if orient is None or orient.size != 3:
            have_orientation = False
        else:
            orientations[i] = orient
        radii_or_faces.append(_ipasc_area(element))
    _check_positions(positions, source, f"{field}/*/detector_position")
    normals = None
    if have_orientation:
        normals = _normalised_normals(orientations, source, f"{field}/*/detector_orientation")
    areas = None
    if all(a is not None for a in radii_or_faces):
        areas = np.array(radii_or_faces, dtype=np.float64)
    return positions, normals, areas


def _ipasc_area(element):
    """A detector's area from its IPASC geometry, where the geometry type defines one."""
    kind = element.get("detector_geometry_type")
    size = element.get("detector_geometry")
    if not isinstance(kind, h5py.Dataset) or not isinstance(size, h5py.Dataset):
        return None
    kind = _plain(kind[()])
    if size.dtype.kind not in "fiu":
        return None
    values = np.asarray(size[()], dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all() or (values <= 0).any():
        return None
    if kind == "CIRCULAR" and values.size == 1:
        return float(np.pi * values[0] ** 2)
    if kind == "CUBOID" and values.size == 3:
        # The sensitive face of a flat element: its two largest extents.
        a, b = np.sort(values)[1:]
        return float(a * b)
    return None


def _selected_frame(source, choice, **fields) -> Acquisition:
    """One frame and wavelength of a multi-frame file as an Acquisition, saying which was
    taken when there was a choice (``choice`` = frame, n_frames, wavelength, n_wavelengths)."""
    fr, n_frames, wl, n_wl = choice
    if n_frames > 1 or n_wl > 1:
        log.info(
            "%s: using frame %d of %d and wavelength %d of %d (--frame, --wavelength)",
            source,
            fr,
            n_frames,
            wl,
            n_wl,
        )
    return Acquisition(source=source, **fields)


def read_ipasc(path, *, frame=0, wavelength=0, fs=None, sound_speed=None) -> Acquisition:
    """Read one frame at one wavelength of an IPASC HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        A file in the IPASC layout (written by pacfish or any IPASC-conformant tool).
    frame, wavelength : int
        Which frame and which wavelength of ``binary_time_series_data``
        ``(detectors, samples, wavelengths, frames)``; files with fewer axes have one.
    fs, sound_speed : float, optional
        Replace the file's ``ad_sampling_rate`` (Hz) / ``speed_of_sound`` (m/s); needed
        when the file lacks them (the speed of sound is optional in IPASC).

    Returns
    -------
    Acquisition
        ``normals`` from ``detector_orientation`` (scaled to unit length) when every
        detector has one; ``areas`` from ``CIRCULAR``/``CUBOID`` detector geometries;
        ``t0`` from ``meta_data/slingbag_t0`` when present, else 0.

    Raises
    ------
    InputError
        Missing or malformed fields, values outside physical ranges, frame or wavelength
        out of range.
    """
    fs = _check_override(fs, "--fs", _check_fs)
    sound_speed = _check_override(sound_speed, "--sound-speed", _check_sound_speed)
    with _open_for_reading(path, "IPASC") as (f, source):
        item = _dataset(f, IPASC_DATA, source, what="(detectors, samples, wavelengths, frames)")
        if not 2 <= item.ndim <= 4:
            raise InputError(
                source,
                IPASC_DATA,
                "2 to 4 axes (detectors, samples[, wavelengths[, frames]])",
                got=f"shape {item.shape}",
            )
        shape = tuple(item.shape) + (1,) * (4 - item.ndim)
        n_det, n_samples, n_wl, n_frames = shape
        if n_det == 0 or n_samples == 0:
            raise InputError(source, IPASC_DATA, "non-empty signals", got=f"shape {item.shape}")
        wl = _check_frame(source, wavelength, n_wl, "--wavelength", "wavelength")
        fr = _check_frame(source, frame, n_frames, "--frame", "frame")
        index = (slice(None), slice(None), wl, fr)[: item.ndim]
        signals = np.asarray(item[index], dtype=np.float32)
        _require_finite(signals, source, IPASC_DATA)

        meta = f.get(IPASC_META)
        if not isinstance(meta, h5py.Group):
            raise InputError(source, IPASC_META, "a group 'meta_data' (IPASC acquisition metadata)")
        if fs is None:
            values = _scalar(
                meta,
                "ad_sampling_rate",
                source,
                f"{IPASC_META}/ad_sampling_rate",
                required=True,
                what="the sampling rate 'ad_sampling_rate' (Hz)",
            )
            fs = float(values[0])
            with _field_named(source, f"{IPASC_META}/ad_sampling_rate"):
                _check_fs(fs, source)
        if sound_speed is None:
            values = _scalar(
                meta,
                "speed_of_sound",
                source,
                f"{IPASC_META}/speed_of_sound",
                required=False,
                what="a speed of sound (m/s)",
            )
            if values is None:
                raise InputError(
                    source,
                    f"{IPASC_META}/speed_of_sound",
                    "a speed of sound (m/s)",
                    hint="the file has none; give --sound-speed",
                )
            sound_speed = _uniform_value(
                values, source, f"{IPASC_META}/speed_of_sound", "--sound-speed", "m/s"
            )
            with _field_named(source, f"{IPASC_META}/speed_of_sound"):
                _check_sound_speed(sound_speed, source)
        t0_values = _scalar(
            meta, T0_KEY, source, f"{IPASC_META}/{T0_KEY}", required=False, what="t0 (s)"
        )
        t0 = float(t0_values[0]) if t0_values is not None else 0.0

        positions, normals, areas = _ipasc_detectors(f, source, n_det)

        attrs = {"source_format": "ipasc", "frame": fr, "wavelength_index": wl}
        wavelengths = _wavelengths(meta, "acquisition_wavelengths", n_wl)
        if wavelengths is not None and np.isfinite(wavelengths[wl]):
            value = float(wavelengths[wl])
            # IPASC specifies metres; values above 1 mm can only be nanometres.
            attrs["wavelength_nm"] = value * 1e9 if value < 1e-3 else value
        if "uuid" in meta and isinstance(meta["uuid"], h5py.Dataset):
            attrs["ipasc_uuid"] = str(_plain(meta["uuid"][()]))
    return _selected_frame(
        source,
        (fr, n_frames, wl, n_wl),
        signals=signals,
        positions=positions,
        fs=fs,
        sound_speed=sound_speed,
        t0=t0,
        normals=normals,
        areas=areas,
        attrs=attrs,
    )


def _ipasc_dictionaries(acq: Acquisition, signals: np.ndarray):
    """The IPASC acquisition and device metadata of ``acq`` as nested dicts.

    Keys are the HDF5 names that pacfish's ``MetadataAcquisitionTags`` and
    ``MetadataDeviceTags`` define; values are plain Python scalars, strings or arrays
    (pacfish's writer silently skips other types, e.g. ``np.float32`` scalars).
    """
    meta = {
        "uuid": str(uuid.uuid4()),
        "encoding": "raw",
        "compression": "none",
        "data_type": str(signals.dtype),
        "dimensionality": "time",
        "sizes": np.asarray(signals.shape, dtype=np.int64),
        "ad_sampling_rate": float(acq.fs),
        "speed_of_sound": float(acq.sound_speed),
        "measurements_per_image": 1,
        T0_KEY: float(acq.t0),
    }
    wavelength = _wavelength_nm(acq)
    if wavelength is not None:
        meta["acquisition_wavelengths"] = np.array([wavelength * 1e-9])
    detectors = {}
    areas = acq.areas
    for i in range(acq.n_sensors):
        element = {"detector_position": np.asarray(acq.positions[i], dtype=np.float64)}
        if acq.normals is not None:
            element["detector_orientation"] = np.asarray(acq.normals[i], dtype=np.float64)
        if areas is not None:
            element["detector_geometry_type"] = "CIRCULAR"
            element["detector_geometry"] = float(np.sqrt(areas[i] / np.pi))
        detectors[str(i).zfill(10)] = element
    device = {
        "general": {
            "unique_identifier": str(uuid.uuid4()),
            "field_of_view": _field_of_view(acq),
            "num_detectors": int(acq.n_sensors),
            "num_illuminators": 0,
        },
        "illuminators": {},
        "detectors": detectors,
    }
    return meta, device


def _field_of_view(acq: Acquisition) -> np.ndarray:
    """An approximate box to image ``[x0, x1, y0, y1, z0, z1]`` in metres (IPASC field).

    The truth's extent where the file has one, else the sensors' bounding box: IPASC asks
    for an approximate region, and slingbag knows nothing better without a truth.
    """
    if acq.truth_volume is not None:
        vol = acq.truth_volume
        lo = np.asarray(vol.origin, dtype=np.float64)
        hi = lo + (np.asarray(vol.data.shape) - 1) * np.asarray(vol.spacing, dtype=np.float64)
    elif acq.truth_cloud is not None and len(acq.truth_cloud.xyz):
        cloud = acq.truth_cloud
        reach = 3 * cloud.sigma[:, None]
        lo, hi = (cloud.xyz - reach).min(axis=0), (cloud.xyz + reach).max(axis=0)
    else:
        lo, hi = acq.positions.min(axis=0), acq.positions.max(axis=0)
    return np.stack([lo, hi], axis=1).reshape(-1).astype(np.float64)


def _write_nested(h5, prefix: str, tree: dict) -> None:
    """The IPASC layout of nested dicts: groups for dicts, datasets for values.

    Follows pacfish's writer (``None`` as the string ``"None"``, empty dicts leave no
    group), so files from either writer are alike.
    """
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _write_nested(h5, name + "/", value)
        elif value is None:
            h5[name] = "None"
        elif isinstance(value, np.ndarray):
            h5.create_dataset(name, data=value)
        else:
            h5[name] = value


def _pacfish():
    """The pacfish package, or None when it is not installed (it is an optional extra)."""
    try:
        import pacfish
    except ImportError:
        return None
    return pacfish


def write_ipasc(path, acq: Acquisition, *, use_pacfish: bool | None = None) -> None:
    """Write one acquisition as an IPASC HDF5 file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    acq : Acquisition
        Signals become ``binary_time_series_data`` of shape ``(S, T, 1, 1)`` float32.
    use_pacfish : bool, optional
        Write through pacfish's own writer (default: when pacfish is installed).  Without
        it, h5py writes the same layout.
    """
    signals = np.asarray(acq.signals, dtype=np.float32)
    if signals.ndim != 2 or len(acq.positions) != signals.shape[0]:
        raise ValueError(
            f"write_ipasc: signals {signals.shape} and positions {acq.positions.shape} disagree"
        )
    binary = np.ascontiguousarray(signals[:, :, None, None])
    meta, device = _ipasc_dictionaries(acq, binary)
    pacfish = _pacfish() if use_pacfish in (None, True) else None
    if use_pacfish and pacfish is None:
        raise ImportError("write_ipasc(use_pacfish=True) needs pacfish: pip install pacfish")
    with atomic_path(path) as tmp:
        if pacfish is not None:
            pacfish.write_data(str(tmp), pacfish.PAData(binary, meta, device))
        else:
            with h5py.File(tmp, "w") as h5:
                h5.create_dataset(IPASC_DATA, data=binary)
                _write_nested(h5, f"/{IPASC_META}/", meta)
                _write_nested(h5, f"/{IPASC_DEVICE}/", device)


# --------------------------------------------------------------------------- PATATO


def read_patato(path, *, frame=0, wavelength=0, fs=None, sound_speed=None) -> Acquisition:
    """Read one frame at one wavelength of a PATATO HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        A PATATO file: ``raw_data`` ``(frames, wavelengths, detectors, samples)``,
        ``GEOMETRY`` ``(detectors, 3)`` metres, root attributes ``fs`` and
        ``speedofsound``.
    frame, wavelength : int
        Which frame and wavelength to read.
    fs, sound_speed : float, optional
        Replace the file's values; the sound speed is needed when the file has none.

    Raises
    ------
    InputError
        Missing or malformed fields, frame or wavelength out of range.
    """
    fs = _check_override(fs, "--fs", _check_fs)
    sound_speed = _check_override(sound_speed, "--sound-speed", _check_sound_speed)
    with _open_for_reading(path, "PATATO") as (f, source):
        item = _dataset(f, "raw_data", source, what="(frames, wavelengths, detectors, samples)")
        if not 2 <= item.ndim <= 4:
            raise InputError(
                source,
                "raw_data",
                "2 to 4 axes ([frames, [wavelengths,]] detectors, samples)",
                got=f"shape {item.shape}",
            )
        shape = (1,) * (4 - item.ndim) + tuple(item.shape)
        n_frames, n_wl, n_det, n_samples = shape
        if n_det == 0 or n_samples == 0:
            raise InputError(source, "raw_data", "non-empty signals", got=f"shape {item.shape}")
        fr = _check_frame(source, frame, n_frames, "--frame", "frame")
        wl = _check_frame(source, wavelength, n_wl, "--wavelength", "wavelength")
        index = (fr, wl)[4 - item.ndim :]
        signals = np.asarray(item[index] if index else item[()], dtype=np.float32)
        _require_finite(signals, source, "raw_data")

        geometry = _dataset(f, "GEOMETRY", source, what="(detectors, 3) positions in metres")
        positions = np.asarray(geometry[()], dtype=np.float64)
        _check_positions(positions, source, "GEOMETRY")
        if len(positions) != n_det:
            raise InputError(
                source,
                "GEOMETRY",
                f"{n_det} rows (one per detector of raw_data)",
                got=f"{len(positions)} rows",
            )
        if fs is None:
            fs = _float_attr(f.attrs, "fs", source)
            _check_fs(fs, source)
        if sound_speed is None:
            if "speedofsound" not in f.attrs:
                raise InputError(
                    source,
                    "attribute speedofsound",
                    "a speed of sound (m/s)",
                    hint="the file has none; give --sound-speed",
                )
            sound_speed = _float_attr(f.attrs, "speedofsound", source)
            with _field_named(source, "attribute speedofsound"):
                _check_sound_speed(sound_speed, source)
        t0 = _float_attr(f.attrs, T0_KEY, source, required=False, default=0.0)
        normals = areas = None
        if "slingbag_normals" in f:
            normals = np.asarray(_dataset(f, "slingbag_normals", source)[()], dtype=np.float64)
            _check_normals(normals, n_det, source, "slingbag_normals")
        if "slingbag_areas" in f:
            areas = np.asarray(_dataset(f, "slingbag_areas", source)[()], dtype=np.float64)
            _check_areas(areas, n_det, source, "slingbag_areas")
        attrs = {"source_format": "patato", "frame": fr, "wavelength_index": wl}
        values = _wavelengths(f, "wavelengths", n_wl)
        if values is not None and np.isfinite(values[wl]):
            attrs["wavelength_nm"] = float(values[wl])
        if "name" in f.attrs:
            attrs["scan_name"] = str(_plain(f.attrs["name"]))
    return _selected_frame(
        source,
        (fr, n_frames, wl, n_wl),
        signals=signals,
        positions=positions,
        fs=fs,
        sound_speed=sound_speed,
        t0=t0,
        normals=normals,
        areas=areas,
        attrs=attrs,
    )


def write_patato(path, acq: Acquisition) -> None:
    """Write one acquisition as a PATATO HDF5 file (one frame, one wavelength), atomically.

    ``wavelengths`` (required by PATATO, in nm) holds the acquisition's ``wavelength_nm``
    attribute, or NaN when it is unknown: an honest blank rather than an invented value.
    """
    from .._version import __version__

    signals = np.asarray(acq.signals, dtype=np.float32)
    if signals.ndim != 2 or len(acq.positions) != signals.shape[0]:
        raise ValueError(
            f"write_patato: signals {signals.shape} and positions {acq.positions.shape} disagree"
        )
    wavelength = _wavelength_nm(acq)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["fs"] = float(acq.fs)
        f.attrs["speedofsound"] = float(acq.sound_speed)
        f.attrs[T0_KEY] = float(acq.t0)
        f.attrs["name"] = Path(os.fspath(path)).stem
        f.attrs["comment"] = f"written by slingbag {__version__}"
        f.create_dataset("raw_data", data=signals[None, None])
        f.create_dataset("GEOMETRY", data=np.asarray(acq.positions, dtype=np.float64))
        f.create_dataset(
            "wavelengths", data=np.array([np.nan if wavelength is None else wavelength])
        )
        if acq.normals is not None:
            f.create_dataset("slingbag_normals", data=np.asarray(acq.normals, np.float64))
        if acq.areas is not None:
            f.create_dataset("slingbag_areas", data=np.asarray(acq.areas, np.float64))


# --------------------------------------------------------------------------- text layout


def _load_rows(path: Path, what: str) -> np.ndarray:
    """A 2-D float64 array from a delimited text file (tabs, commas or spaces)."""
    source = str(path)
    delimiter = None
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                content = line.split("#", 1)[0].strip()
                if content:
                    delimiter = "\t" if "\t" in content else ("," if "," in content else None)
                    break
        rows = np.loadtxt(path, delimiter=delimiter, dtype=np.float64, ndmin=2, comments="#")
    except UnicodeDecodeError:
        raise InputError(source, None, what, got="binary data") from None
    except (ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(source, None, what, got=reason) from None
    if rows.size == 0:
        raise InputError(source, None, what, got="no rows")
    _require_finite(rows, source, "values")
    return rows


def _text_meta(prefix: Path) -> dict:
    path = Path(str(prefix) + META_SUFFIX)
    if not path.is_file():
        return {}
    source = str(path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(source, None, "a JSON object", got=str(exc).splitlines()[0]) from None
    if not isinstance(meta, dict):
        raise InputError(source, None, "a JSON object", got=type(meta).__name__)
    for key in ("fs", "sound_speed", "t0"):
        if key in meta:
            value = meta[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(source, key, "a number", got=repr(value))
            if not np.isfinite(value):
                raise InputError(source, key, "a finite number", got=value)
    return meta


def read_text_layout(path, *, fs=None, sound_speed=None) -> Acquisition:
    """Read the SlingBAG paper's text layout.

    Parameters
    ----------
    path : str or os.PathLike
        ``<prefix>_sensor_location.txt``, ``<prefix>_sensor_data.txt``, ``<prefix>`` or a
        folder holding one such pair.  Locations are N x 3 metres, data N x T (a T x N
        file is transposed, with a log line), separated by tabs (commas and spaces work
        too).
    fs, sound_speed : float, optional
        Sampling rate (Hz) and sound speed (m/s).  Default: the values in
        ``<prefix>_meta.json`` when slingbag wrote the pair, else the paper's
        40 MHz and 1500 m/s.

    Returns
    -------
    Acquisition
        With normals and areas from ``<prefix>_sensor_normal.txt`` /
        ``<prefix>_sensor_area.txt`` when present.
    """
    fs = _check_override(fs, "--fs", _check_fs)
    sound_speed = _check_override(sound_speed, "--sound-speed", _check_sound_speed)
    prefix, location, data = _text_pair(path)
    meta = _text_meta(prefix)
    meta_source = str(prefix) + META_SUFFIX
    if fs is None:
        fs = float(meta.get("fs", TEXT_DEFAULT_FS))
        with _field_named(meta_source, "fs"):
            _check_fs(fs, meta_source)
    if sound_speed is None:
        sound_speed = float(meta.get("sound_speed", TEXT_DEFAULT_SOUND_SPEED))
        with _field_named(meta_source, "sound_speed"):
            _check_sound_speed(sound_speed, meta_source)
    t0 = float(meta.get("t0", 0.0))

    positions = _load_rows(location, "rows of 3 numbers (x y z in metres), tab separated")
    if positions.shape[1] != 3:
        raise InputError(
            str(location),
            None,
            "rows of 3 numbers (x y z in metres)",
            got=f"{positions.shape[1]} columns",
            hint=f"is this a {DATA_SUFFIX} file?" if positions.shape[1] > 3 else None,
        )
    _check_positions(positions, str(location), "positions")
    n = len(positions)
    signals = _load_rows(data, f"{n} rows of samples (one per sensor), tab separated")
    if signals.shape[0] != n:
        if signals.shape[1] == n:
            log.info("%s: %d x %d read as samples x sensors; transposed", data, *signals.shape)
            signals = signals.T
        else:
            raise InputError(
                str(data),
                None,
                f"{n} rows (one per sensor in {location.name})",
                got=f"shape {signals.shape}",
            )
    normals = areas = None
    normal_path = Path(str(prefix) + NORMAL_SUFFIX)
    if normal_path.is_file():
        normals = _load_rows(normal_path, "rows of 3 numbers (unit normals)")
        _check_normals(normals, n, str(normal_path), "normals")
    area_path = Path(str(prefix) + AREA_SUFFIX)
    if area_path.is_file():
        areas = _load_rows(area_path, "one area (m^2) per row").reshape(-1)
        _check_areas(areas, n, str(area_path), "areas")
    attrs = {"source_format": TEXT_FORMAT}
    if isinstance(meta.get("wavelength_nm"), (int, float)):
        attrs["wavelength_nm"] = float(meta["wavelength_nm"])
    return Acquisition(
        signals=signals.astype(np.float32),
        positions=positions,
        fs=fs,
        sound_speed=sound_speed,
        t0=t0,
        normals=normals,
        areas=areas,
        source=str(data),
        attrs=attrs,
    )


def text_prefix(path) -> Path:
    """The prefix the text layout writes for ``path``.

    An existing folder gets ``<folder>/acquisition``; a name ending in one of the layout's
    suffixes (or ``.txt``) loses it; anything else is the prefix itself.
    """
    text = os.fspath(path)
    p = Path(text)
    if p.is_dir() or text.endswith(os.sep):
        return p / "acquisition"
    for suffix in (LOCATION_SUFFIX, DATA_SUFFIX, ".txt"):
        if text.endswith(suffix):
            return Path(text[: -len(suffix)])
    return p


def write_text_layout(path, acq: Acquisition) -> list[Path]:
    """Write the SlingBAG paper's text layout (each file atomically).

    Parameters
    ----------
    path : str or os.PathLike
        A prefix, either file name of the pair, or an existing folder (see
        :func:`text_prefix`).
    acq : Acquisition
        Positions are written with 17 significant digits and signals with 9, which
        round-trip float64 and float32 exactly.

    Returns
    -------
    list of Path
        The files written: the pair, ``<prefix>_meta.json`` (fs, sound speed, t0)
        and, when the acquisition has them, the normal and area files.
    """
    signals = np.asarray(acq.signals, dtype=np.float32)
    if signals.ndim != 2 or len(acq.positions) != signals.shape[0]:
        raise ValueError(
            f"write_text_layout: signals {signals.shape} and positions {acq.positions.shape} "
            "disagree"
        )
    prefix = text_prefix(path)
    written = []

    def save(suffix, values, fmt):
        target = Path(str(prefix) + suffix)
        with atomic_path(target) as tmp:
            np.savetxt(tmp, values, fmt=fmt, delimiter="\t")
        written.append(target)

    save(LOCATION_SUFFIX, np.asarray(acq.positions, dtype=np.float64), "%.17g")
    save(DATA_SUFFIX, signals, "%.9g")
    if acq.normals is not None:
        save(NORMAL_SUFFIX, np.asarray(acq.normals, dtype=np.float64), "%.17g")
    if acq.areas is not None:
        save(AREA_SUFFIX, np.asarray(acq.areas, dtype=np.float64).reshape(-1, 1), "%.17g")
    meta = {
        "format": TEXT_FORMAT,
        "version": 1,
        "fs": float(acq.fs),
        "sound_speed": float(acq.sound_speed),
        "t0": float(acq.t0),
        "n_sensors": int(signals.shape[0]),
        "n_samples": int(signals.shape[1]),
    }
    wavelength = _wavelength_nm(acq)
    if wavelength is not None:
        meta["wavelength_nm"] = wavelength
    target = Path(str(prefix) + META_SUFFIX)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    written.append(target)
    return written


# --------------------------------------------------------------------------- any format


def read_any(path, *, frame=0, wavelength=0, fs=None, sound_speed=None) -> Acquisition:
    """Read one acquisition from any supported layout, chosen by :func:`detect_format`.

    Parameters
    ----------
    path : str or os.PathLike
        An HDF5 file (slingbag, IPASC, PATATO) or the text layout (either file of the
        pair, their common prefix, or their folder).
    frame, wavelength : int
        Which frame and wavelength of a multi-frame / multi-wavelength file.
    fs, sound_speed : float, optional
        Replace the file's sampling rate (Hz) and sound speed (m/s).  For the text layout
        they replace the defaults (40 MHz, 1500 m/s).

    Raises
    ------
    InputError
        Unknown format, missing fields, frame or wavelength out of range.
    """
    fmt = detect_format(path)
    if fmt == "ipasc":
        return read_ipasc(path, frame=frame, wavelength=wavelength, fs=fs, sound_speed=sound_speed)
    if fmt == "patato":
        return read_patato(path, frame=frame, wavelength=wavelength, fs=fs, sound_speed=sound_speed)
    source = os.fspath(path)
    if fmt == "slingbag-text":
        _only_zero(source, frame, "--frame", "the text layout holds one frame")
        _only_zero(source, wavelength, "--wavelength", "the text layout holds one wavelength")
        return read_text_layout(path, fs=fs, sound_speed=sound_speed)
    fs = _check_override(fs, "--fs", _check_fs)
    sound_speed = _check_override(sound_speed, "--sound-speed", _check_sound_speed)
    _only_zero(source, wavelength, "--wavelength", "slingbag files hold one wavelength")
    acq = read_acquisition(path, frame=frame)
    return _apply_overrides(acq, fs, sound_speed)


def load_acquisition(path, frame=0, wavelength=0, *, fs=None, sound_speed=None) -> Acquisition:
    """The reader for commands: :func:`read_any`, logging the format it found.

    Commands that take an acquisition (``reconstruct``, ``ubp``...) call this instead of
    :func:`slingbag.io.native.read_acquisition`, so every supported layout works everywhere,
    and every command refuses the same unusable acquisitions
    (:func:`~slingbag.core.acquisition.check_acquisition`).
    """
    acq = read_any(path, frame=frame, wavelength=wavelength, fs=fs, sound_speed=sound_speed)
    check_acquisition(acq)
    fmt = (acq.attrs or {}).get("source_format", "slingbag")
    if fmt != "slingbag":
        log.info(
            "read %s (%s): %d sensors x %d samples at %.4g MHz, c = %g m/s",
            os.fspath(path),
            fmt,
            acq.n_sensors,
            acq.n_samples,
            acq.fs / 1e6,
            acq.sound_speed,
        )
    return acq


def output_format(path, to: str | None = None) -> str:
    """The layout to write ``path`` in: ``to`` when given, else from the name.

    ``*.ipasc.h5``/``*.ipasc.hdf5`` → ipasc, ``*.patato.h5``/``*.patato.hdf5`` → patato,
    other ``*.h5``/``*.hdf5`` → slingbag, a folder, a bare prefix or a ``*.txt`` name →
    the text layout.
    """
    choices = {"slingbag": "slingbag", "ipasc": "ipasc", "patato": "patato", "text": TEXT_FORMAT}
    if to is not None:
        if to not in choices and to != TEXT_FORMAT:
            raise InputError("--to", None, "one of slingbag, ipasc, patato, text", got=to)
        return choices.get(to, TEXT_FORMAT)
    text = os.fspath(path)
    name = Path(text).name.lower()
    if Path(text).is_dir() or text.endswith(os.sep):
        return TEXT_FORMAT
    for ext in (".h5", ".hdf5"):
        if name.endswith(".ipasc" + ext):
            return "ipasc"
        if name.endswith(".patato" + ext):
            return "patato"
        if name.endswith(ext):
            return "slingbag"
    if name.endswith(".txt") or "." not in name:
        return TEXT_FORMAT
    raise InputError(
        "--to",
        None,
        "an output format: give --to slingbag|ipasc|patato|text",
        got=f"an output named {Path(text).name!r}",
        hint=".h5/.hdf5 is slingbag, .ipasc.h5 IPASC, .patato.h5 PATATO, a prefix text",
    )


def write_any(path, acq: Acquisition, fmt: str) -> list[Path]:
    """Write ``acq`` in layout ``fmt`` (one of :data:`FORMATS`); returns the files written."""
    if fmt == "slingbag":
        write_acquisition(path, acq)
    elif fmt == "ipasc":
        write_ipasc(path, acq)
    elif fmt == "patato":
        write_patato(path, acq)
    elif fmt == TEXT_FORMAT:
        return write_text_layout(path, acq)
    else:
        raise ValueError(f"write_any: unknown format {fmt!r}; expected one of {FORMATS}")
    return [Path(path)]
