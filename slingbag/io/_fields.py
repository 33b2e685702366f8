"""Field and value checks shared by the readers of foreign formats (issue 7).

Every problem with a file is raised as one :class:`~slingbag.errors.InputError` naming
the file and the field.
"""

from __future__ import annotations

import contextlib
import logging
import re

import h5py
import numpy as np

from ..core.acquisition import Acquisition
from ..errors import InputError
from .native import NORMAL_TOLERANCE, _plain, _require_finite

log = logging.getLogger("slingbag")

# Where the foreign layouts keep the time of the first sample (slingbag's addition).
T0_KEY = "slingbag_t0"


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
