"""Acquisitions in the formats other photoacoustic tools write (issue 7).

Four layouts are read and written, each picked by its content, not its file name
(:mod:`.detect`); each has its own module with its reader and writer (:mod:`.native`,
:mod:`.ipasc`, :mod:`.patato`, :mod:`.text`), and this one dispatches to them:

``slingbag``
    slingbag's own acquisition HDF5 (docs/formats.md, :mod:`slingbag.io.native`).
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

import logging
import os
from pathlib import Path

from ..core.acquisition import Acquisition, check_acquisition
from ..core.element import element_for
from ..errors import InputError
from ._fields import _apply_overrides, _check_override, _only_zero
from .detect import detect_format
from .ipasc import read_ipasc, write_ipasc
from .native import _check_fs, _check_sound_speed, read_acquisition, write_acquisition
from .patato import read_patato, write_patato
from .text import TEXT_FORMAT, read_text_layout, write_text_layout

log = logging.getLogger("slingbag")

FORMATS = ("slingbag", "ipasc", "patato", "slingbag-text")


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

    Returns
    -------
    Acquisition
        With ``source`` set to the file read; a layout other than slingbag's own is named
        in ``attrs["source_format"]``.

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


def load_acquisition(
    path, frame=0, wavelength=0, *, fs=None, sound_speed=None, element=None
) -> Acquisition:
    """The reader for commands: :func:`read_any`, logging the format it found.

    Commands that take an acquisition (``reconstruct``, ``ubp``...) call this instead of
    :func:`slingbag.io.native.read_acquisition`, so every supported layout works everywhere,
    and every command refuses the same unusable acquisitions
    (:func:`~slingbag.core.acquisition.check_acquisition`).  ``element``, an ``--element``
    spec (``point``, ``disc:D``, ``rect:WxH``), replaces the file's element
    (:func:`with_element`).
    """
    acq = read_any(path, frame=frame, wavelength=wavelength, fs=fs, sound_speed=sound_speed)
    if element is not None:
        acq = with_element(acq, element)
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


def with_element(acq: Acquisition, spec: str, option: str = "--element") -> Acquisition:
    """``acq`` with its sensors' faces replaced by those of ``spec``.

    Parameters
    ----------
    acq : Acquisition
    spec : str
        ``point``, ``disc:DIAMETER`` or ``rect:WIDTHxHEIGHT`` in metres, the same face for
        every sensor (:func:`~slingbag.core.element.parse_element`).
    option : str
        The option to name in an error.

    Returns
    -------
    Acquisition
        A copy whose ``element`` is the new one (None for ``point``).

    Raises
    ------
    InputError
        A spec that does not parse, or a disc or rectangle for a file without normals
        (naming the file and ``sensors/normals``).
    """
    return acq.replace(
        element=element_for(spec, acq.normals, acq.n_sensors, source=acq.source, option=option)
    )


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
    """Write ``acq`` in layout ``fmt`` (one of :data:`FORMATS`); returns the files written.

    PATATO's layout and the text layout have no field for the sensors' faces: writing an
    acquisition with disc or rectangular elements to them leaves the element out, and says
    so.
    """
    if acq.faces is not None and fmt in ("patato", TEXT_FORMAT):
        log.warning(
            "%s: the %s layout has no field for the sensors' faces (%s); they are left out "
            "(slingbag and IPASC files keep them)",
            os.fspath(path),
            fmt,
            acq.faces.describe(),
        )
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
