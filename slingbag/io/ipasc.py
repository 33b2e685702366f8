"""The IPASC consensus HDF5 format, as written by the ``pacfish`` package (issue 7).

``binary_time_series_data`` shaped ``(detectors, samples, wavelengths, frames)``,
acquisition metadata in the group ``meta_data`` (``ad_sampling_rate`` in Hz,
``speed_of_sound`` in m/s, ...) and the device in ``meta_data_device`` with one group
per detector under ``detectors`` (``detector_position`` in metres,
``detector_orientation`` read as the sensor normal).  Everything is SI.

IPASC has no field for the time of the first sample (``t0``): the writer adds
``meta_data/slingbag_t0``, which the reader uses when present.

The sensors' faces (:class:`~slingbag.core.element.Element`) are IPASC's per-detector
``detector_geometry_type`` and ``detector_geometry``: a disc is ``CIRCULAR`` (IPASC's
circle, given by its radius), a rectangle a flat ``CUBOID`` ``[width, height, 0]``.  IPASC
does not say how a cuboid turns about ``detector_orientation``, so the width lies along
the element's default axis unless slingbag's ``slingbag_element_axis`` gives it.
"""

from __future__ import annotations

import logging
import uuid

import h5py
import numpy as np

from ..core.acquisition import Acquisition, check_element
from ..core.element import MAX_ELEMENT_SIZE, Element
from ..errors import InputError
from ._fields import (
    T0_KEY,
    _check_frame,
    _check_override,
    _field_named,
    _natural_key,
    _normalised_normals,
    _scalar,
    _selected_frame,
    _uniform_value,
    _wavelength_nm,
    _wavelengths,
)
from .atomic import atomic_path
from .native import (
    _check_fs,
    _check_positions,
    _check_sound_speed,
    _dataset,
    _open_for_reading,
    _plain,
    _require_finite,
)

log = logging.getLogger("slingbag")

IPASC_DATA = "binary_time_series_data"
IPASC_META = "meta_data"
IPASC_DEVICE = "meta_data_device"
# slingbag's additions to the device: the element's shape (in ``general``), and per
# detector a rectangle's width axis and the area when the geometry is the element's face.
SHAPE_KEY = "slingbag_element_shape"
AXIS_KEY = "slingbag_element_axis"
AREA_KEY = "slingbag_area"


def _ipasc_detectors(f, source, n_detectors):
    """Positions, normals (or None), areas (or None) and the element (or None) of the
    IPASC detectors, in order."""
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
    found = [_ipasc_detector(group[name], source, f"{field}/{name}") for name in names]
    positions = np.array([d["position"] for d in found], dtype=np.float64)
    _check_positions(positions, source, f"{field}/*/detector_position")
    normals = None
    if all(d["orientation"] is not None for d in found):
        orientations = np.array([d["orientation"] for d in found], dtype=np.float64)
        normals = _normalised_normals(orientations, source, f"{field}/*/detector_orientation")
    areas = None
    if all(d["area"] is not None for d in found):
        areas = np.array([d["area"] for d in found], dtype=np.float64)
    element = None
    if _geometry_is_face(device, f.get(IPASC_META)):
        element = _ipasc_element(found, normals, source, field)
    return positions, normals, areas, element


def _ipasc_detector(element, source, where) -> dict:
    """One detection element: its position, orientation (or None), face (or None: see
    :func:`_ipasc_face`), area (or None) and slingbag's width axis (or None)."""
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
    orient = _scalar(
        element,
        "detector_orientation",
        source,
        f"{where}/detector_orientation",
        required=False,
        what="3 floats",
    )
    face = _ipasc_face(element)
    area = _scalar(
        element, AREA_KEY, source, f"{where}/{AREA_KEY}", required=False, what="an area (m^2)"
    )
    axis = _scalar(
        element, AXIS_KEY, source, f"{where}/{AXIS_KEY}", required=False, what="3 floats"
    )
    return {
        "position": pos,
        "orientation": orient if orient is not None and orient.size == 3 else None,
        "face": face,
        "area": float(area[0]) if area is not None and area[0] > 0 else _face_area(face),
        "axis": axis if axis is not None and axis.size == 3 else None,
    }


def _ipasc_face(element):
    """A detector's face from its IPASC geometry, or None.

    ``("disc", [diameter])`` for ``CIRCULAR`` (IPASC gives the radius), ``("rect", [width,
    height])`` for ``CUBOID`` (:func:`_cuboid_face`); None without a geometry, for
    ``SPHERE`` and ``MESH`` (not a flat face), and for values of the wrong count.
    """
    kind = element.get("detector_geometry_type")
    size = element.get("detector_geometry")
    if not isinstance(kind, h5py.Dataset) or not isinstance(size, h5py.Dataset):
        return None
    kind = _plain(kind[()])
    if size.dtype.kind not in "fiu":
        return None
    values = np.asarray(size[()], dtype=np.float64).reshape(-1)
    if kind == "CIRCULAR" and values.size == 1:
        return "disc", 2 * values
    if kind == "CUBOID" and values.size == 3:
        return "rect", _cuboid_face(values)
    return None


def _cuboid_face(extents: np.ndarray) -> np.ndarray:
    """Width and height of a cuboid detector's sensitive face.

    IPASC gives the extents along x1, x2, x3 before the orientation transform; pacfish's
    examples orient x3 along ``detector_orientation`` and make it the thinnest (the
    depth).  The face is the other two, width first; a file whose thinnest extent is
    another one is read with that one as the depth.
    """
    thinner = np.isfinite(extents).all() and extents[2] > np.min(extents)
    depth = int(np.argmin(extents)) if thinner else 2
    return np.delete(extents, depth)


def _face_area(face):
    """The area of a face (m^2), or None when the face gives none."""
    if face is None or not np.isfinite(face[1]).all() or (face[1] <= 0).any():
        return None
    if face[0] == "disc":
        return float(np.pi * (face[1][0] / 2) ** 2)
    return float(np.prod(face[1]))


def _geometry_is_face(device, meta) -> bool:
    """Whether the detectors' geometry describes their faces.

    slingbag writes ``general/slingbag_element_shape``: ``point`` when the geometry only
    carries the areas of point sensors.  A file slingbag wrote before it recorded
    elements (``meta_data/slingbag_t0`` without that field) used the geometry for areas
    only, too.  Any other file's geometry is its detectors' faces.
    """
    general = device.get("general")
    marker = general.get(SHAPE_KEY) if isinstance(general, h5py.Group) else None
    if isinstance(marker, h5py.Dataset):
        return _plain(marker[()]) != "point"
    return not (isinstance(meta, h5py.Group) and T0_KEY in meta)


def _ipasc_element(found, normals, source, field):
    """One :class:`Element` from the detectors' faces, or None for point sensors.

    Detectors whose geometry slingbag cannot use as a face (none, SPHERE, MESH, mixed
    types, sizes that are not finite and in (0, 0.1] m) and faces without orientations
    are read as points, with a warning when some geometry was there.
    """
    faces = [d["face"] for d in found]
    if all(face is None for face in faces):
        return None
    kinds = {face[0] if face else None for face in faces}
    sizes = np.array([face[1] for face in faces]) if None not in kinds else None
    why = None
    if len(kinds) > 1:
        why = "not every detector has the same CIRCULAR or CUBOID geometry"
    elif not np.any(sizes):
        return None  # zero radius / zero extents: points
    elif not (np.isfinite(sizes).all() and (sizes > 0).all() and sizes.max() <= MAX_ELEMENT_SIZE):
        why = f"face sizes are not all finite and in (0, {MAX_ELEMENT_SIZE:g}] m"
    elif normals is None:
        why = "faces need every detector_orientation"
    if why:
        log.warning("%s: %s/*/detector_geometry: %s; sensors read as points", source, field, why)
        return None
    shape = kinds.pop()
    axes = [d["axis"] for d in found]
    axis = np.array(axes) if shape == "rect" and all(a is not None for a in axes) else None
    element = Element(shape, sizes.reshape(-1) if shape == "disc" else sizes, axis)
    with _field_named(source, f"{field}/*/{AXIS_KEY}"):
        check_element(element, normals, len(found), source)
    return element


def _ipasc_signals(f, source, frame, wavelength):
    """The chosen frame and wavelength of ``binary_time_series_data``, as float32.

    Returns the signals ``(detectors, samples)``, the frame and wavelength indices and
    the data's shape ``(detectors, samples, wavelengths, frames)`` (missing axes as 1).
    """
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
    return signals, fr, wl, shape


def _ipasc_sampling_rate(meta, source) -> float:
    """``meta_data/ad_sampling_rate`` in Hz, checked for a physical range."""
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
    return fs


def _ipasc_sound_speed(meta, source) -> float:
    """``meta_data/speed_of_sound`` in m/s; optional in IPASC, so without it ask for
    ``--sound-speed``.
    """
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
    return sound_speed


def _ipasc_attrs(meta, fr, wl, n_wl) -> dict:
    """The acquisition's attributes: where it came from, its wavelength (nm) and uuid."""
    attrs = {"source_format": "ipasc", "frame": fr, "wavelength_index": wl}
    wavelengths = _wavelengths(meta, "acquisition_wavelengths", n_wl)
    if wavelengths is not None and np.isfinite(wavelengths[wl]):
        value = float(wavelengths[wl])
        # IPASC specifies metres; values above 1 mm can only be nanometres.
        attrs["wavelength_nm"] = value * 1e9 if value < 1e-3 else value
    if "uuid" in meta and isinstance(meta["uuid"], h5py.Dataset):
        attrs["ipasc_uuid"] = str(_plain(meta["uuid"][()]))
    return attrs


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
        detector has one; ``areas`` from ``CIRCULAR``/``CUBOID`` detector geometries
        (or slingbag's ``slingbag_area``); ``element`` a disc (``CIRCULAR``) or a
        rectangle (``CUBOID``) when every detector has that geometry and an orientation,
        else None (points); ``t0`` from ``meta_data/slingbag_t0`` when present, else 0.

    Raises
    ------
    InputError
        Missing or malformed fields, values outside physical ranges, frame or wavelength
        out of range.
    """
    fs = _check_override(fs, "--fs", _check_fs)
    sound_speed = _check_override(sound_speed, "--sound-speed", _check_sound_speed)
    with _open_for_reading(path, "IPASC") as (f, source):
        signals, fr, wl, (n_det, _, n_wl, n_frames) = _ipasc_signals(f, source, frame, wavelength)
        meta = f.get(IPASC_META)
        if not isinstance(meta, h5py.Group):
            raise InputError(source, IPASC_META, "a group 'meta_data' (IPASC acquisition metadata)")
        if fs is None:
            fs = _ipasc_sampling_rate(meta, source)
        if sound_speed is None:
            sound_speed = _ipasc_sound_speed(meta, source)
        t0_values = _scalar(
            meta, T0_KEY, source, f"{IPASC_META}/{T0_KEY}", required=False, what="t0 (s)"
        )
        t0 = float(t0_values[0]) if t0_values is not None else 0.0
        positions, normals, areas, element = _ipasc_detectors(f, source, n_det)
        attrs = _ipasc_attrs(meta, fr, wl, n_wl)
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
        element=element,
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
    for i in range(acq.n_sensors):
        element = {"detector_position": np.asarray(acq.positions[i], dtype=np.float64)}
        if acq.normals is not None:
            element["detector_orientation"] = np.asarray(acq.normals[i], dtype=np.float64)
        element.update(_ipasc_geometry(acq, i))
        detectors[str(i).zfill(10)] = element
    device = {
        "general": {
            "unique_identifier": str(uuid.uuid4()),
            "field_of_view": _field_of_view(acq),
            "num_detectors": int(acq.n_sensors),
            "num_illuminators": 0,
            SHAPE_KEY: "point" if acq.faces is None else acq.faces.shape,
        },
        "illuminators": {},
        "detectors": detectors,
    }
    return meta, device


def _ipasc_geometry(acq: Acquisition, i: int) -> dict:
    """Detector ``i``'s IPASC geometry: its face, or the area of a point sensor.

    A disc is IPASC's ``CIRCULAR`` (its radius), a rectangle a ``CUBOID`` of extents
    ``[width, height, 0]`` (flat, x3 along the orientation) with slingbag's width axis
    beside it when the element has one; the area then goes in ``slingbag_area``.  A point
    sensor with an area is the ``CIRCULAR`` disc of that area (``slingbag_element_shape =
    "point"`` tells slingbag's reader it is no face).
    """
    face, areas = acq.faces, acq.areas
    if face is None:
        if areas is None:
            return {}
        return {
            "detector_geometry_type": "CIRCULAR",
            "detector_geometry": float(np.sqrt(areas[i] / np.pi)),
        }
    if face.shape == "disc":
        out = {"detector_geometry_type": "CIRCULAR", "detector_geometry": float(face.size[i] / 2)}
    else:
        width, height = (float(v) for v in face.size[i])
        out = {
            "detector_geometry_type": "CUBOID",
            "detector_geometry": np.array([width, height, 0.0]),
        }
        if face.axis is not None:
            out[AXIS_KEY] = np.asarray(face.axis[i], dtype=np.float64)
    if areas is not None:
        out[AREA_KEY] = float(areas[i])
    return out


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
