"""Which acquisition layout a path holds, judged by its content (issue 7)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py

from ..errors import InputError
from .ipasc import IPASC_DATA
from .native import ACQUISITION_FORMAT, RESULT_FORMAT, _open_for_reading, _plain
from .text import _text_pair

_ANY_FORMAT = (
    "an acquisition file: slingbag HDF5, IPASC HDF5, PATATO HDF5, or the SlingBAG text "
    "layout (<prefix>_sensor_location.txt + <prefix>_sensor_data.txt)"
)


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
