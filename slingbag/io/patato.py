"""PATATO's HDF5 format (issue 7).

``raw_data`` shaped ``(frames, wavelengths, detectors, samples)``, ``GEOMETRY``
``(detectors, 3)`` in metres, root attributes ``fs`` (Hz) and ``speedofsound`` (m/s),
``wavelengths`` in nm.

PATATO has no field for the time of the first sample (``t0``) or for normals and areas:
the writer adds the root attribute ``slingbag_t0`` and the datasets
``slingbag_normals``/``slingbag_areas``, which the reader uses when present.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..core.acquisition import Acquisition
from ..errors import InputError
from ._fields import (
    T0_KEY,
    _check_areas,
    _check_frame,
    _check_normals,
    _check_override,
    _field_named,
    _selected_frame,
    _wavelength_nm,
    _wavelengths,
)
from .atomic import atomic_path
from .native import (
    _check_fs,
    _check_positions,
    _check_sound_speed,
    _dataset,
    _float_attr,
    _open_for_reading,
    _plain,
    _require_finite,
)


def _patato_signals(f, source, frame, wavelength):
    """The chosen frame and wavelength of ``raw_data``, as float32.

    Returns the signals ``(detectors, samples)``, the frame and wavelength indices and
    the data's shape ``(frames, wavelengths, detectors, samples)`` (missing axes as 1).
    """
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
    return signals, fr, wl, shape


def _patato_positions(f, source, n_det) -> np.ndarray:
    """``GEOMETRY``: one position (metres) per detector of ``raw_data``."""
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
    return positions


def _patato_sound_speed(f, source) -> float:
    """The root attribute ``speedofsound`` (m/s); without it ask for ``--sound-speed``."""
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
    return sound_speed


def _slingbag_extras(f, source, n_det):
    """slingbag's own ``slingbag_normals`` and ``slingbag_areas``, each None when absent."""
    normals = areas = None
    if "slingbag_normals" in f:
        normals = np.asarray(_dataset(f, "slingbag_normals", source)[()], dtype=np.float64)
        _check_normals(normals, n_det, source, "slingbag_normals")
    if "slingbag_areas" in f:
        areas = np.asarray(_dataset(f, "slingbag_areas", source)[()], dtype=np.float64)
        _check_areas(areas, n_det, source, "slingbag_areas")
    return normals, areas


def _patato_attrs(f, fr, wl, n_wl) -> dict:
    """The acquisition's attributes: where it came from, its wavelength (nm), scan name."""
    attrs = {"source_format": "patato", "frame": fr, "wavelength_index": wl}
    values = _wavelengths(f, "wavelengths", n_wl)
    if values is not None and np.isfinite(values[wl]):
        attrs["wavelength_nm"] = float(values[wl])
    if "name" in f.attrs:
        attrs["scan_name"] = str(_plain(f.attrs["name"]))
    return attrs


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
        signals, fr, wl, (n_frames, n_wl, n_det, _) = _patato_signals(f, source, frame, wavelength)
        positions = _patato_positions(f, source, n_det)
        if fs is None:
            fs = _float_attr(f.attrs, "fs", source)
            _check_fs(fs, source)
        if sound_speed is None:
            sound_speed = _patato_sound_speed(f, source)
        t0 = _float_attr(f.attrs, T0_KEY, source, required=False, default=0.0)
        normals, areas = _slingbag_extras(f, source, n_det)
        attrs = _patato_attrs(f, fr, wl, n_wl)
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
