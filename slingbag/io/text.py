"""The SlingBAG paper's text layout (issue 7).

``<prefix>_sensor_location.txt`` (N x 3 metres) and ``<prefix>_sensor_data.txt`` (N x T),
tab separated, at 40 MHz and 1500 m/s unless told otherwise.

The layout has no field for fs, sound speed, t0 or normals, so the writer adds the side
files ``<prefix>_meta.json``, ``<prefix>_sensor_normal.txt`` and
``<prefix>_sensor_area.txt``; the reader uses them when present.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..core.acquisition import Acquisition
from ..errors import InputError
from ._fields import (
    _check_areas,
    _check_normals,
    _check_override,
    _field_named,
    _wavelength_nm,
)
from .atomic import atomic_path
from .native import _check_fs, _check_positions, _check_sound_speed, _require_finite

log = logging.getLogger("slingbag")

# The SlingBAG paper's scripts hard-code these for its text files.
TEXT_DEFAULT_FS = 40e6
TEXT_DEFAULT_SOUND_SPEED = 1500.0

LOCATION_SUFFIX = "_sensor_location.txt"
DATA_SUFFIX = "_sensor_data.txt"
NORMAL_SUFFIX = "_sensor_normal.txt"
AREA_SUFFIX = "_sensor_area.txt"
META_SUFFIX = "_meta.json"
TEXT_FORMAT = "slingbag-text"


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


def _text_positions(location: Path) -> np.ndarray:
    """The sensor positions: rows of x y z in metres."""
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
    return positions


def _text_signals(data: Path, n: int, location: Path) -> np.ndarray:
    """The signals, one row per sensor; a file of ``n`` columns is transposed."""
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
    return signals


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

    positions = _text_positions(location)
    n = len(positions)
    signals = _text_signals(data, n, location)
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
