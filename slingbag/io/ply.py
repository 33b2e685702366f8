"""Gaussian-ball clouds as PLY files (layout in docs/formats.md).

A cloud is a PLY ``vertex`` element with the properties ``x y z p0 sigma`` (slingbag
layout) or ``x y z intensity radius`` (the SlingBAG paper's layout).  Both ASCII and binary
(little or big endian) files load, with the properties in any order, as float or double,
and extra properties ignored.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

from ..core.cloud import GaussianCloud
from ..errors import InputError
from .atomic import atomic_path

# PLY scalar type names (both the classic and the sized spellings) -> numpy type codes.
_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
# Property names of each layout: (amplitude, size).
LAYOUTS = {"slingbag": ("p0", "sigma"), "paper": ("intensity", "radius")}
# A header longer than this is not a header (it guards against reading a huge non-PLY file).
_MAX_HEADER_BYTES = 1 << 16


@dataclass
class _Element:
    """One ``element`` block of a PLY header."""

    name: str
    count: int
    properties: list  # [(name, numpy type code)] for scalars, (name, None) for lists


@dataclass
class _Header:
    fmt: str
    elements: list
    data_offset: int


def _parse_header(raw: bytes, source: str) -> _Header:
    """Parse the header at the start of ``raw`` (the whole file)."""
    if not raw.startswith(b"ply"):
        got = raw[:16].decode("latin-1", "replace").strip() or "an empty file"
        raise InputError(source, None, "a PLY file (first line 'ply')", got=repr(got))
    end = raw.find(b"end_header", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise InputError(source, "header", "a PLY header closed by 'end_header'")
    newline = raw.find(b"\n", end)
    data_offset = len(raw) if newline < 0 else newline + 1
    try:
        text = raw[:end].decode("ascii")
    except UnicodeDecodeError:
        raise InputError(source, "header", "an ASCII PLY header") from None
    fmt = None
    elements: list[_Element] = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        where = f"header line {number}"
        if words[0] == "format":
            if len(words) < 2 or words[1] not in _FORMATS:
                raise InputError(source, where, "format " + "|".join(_FORMATS), got=line)
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise InputError(source, where, "'element NAME COUNT'", got=line)
            elements.append(_Element(words[1], int(words[2]), []))
        elif words[0] == "property":
            if not elements:
                raise InputError(source, where, "a property after an 'element' line", got=line)
            elements[-1].properties.append(_parse_property(words, source, where, line))
        else:
            raise InputError(source, where, "a PLY header keyword", got=line)
    if fmt is None:
        raise InputError(source, "header", "a 'format' line")
    return _Header(fmt, elements, data_offset)


def _parse_property(words, source, where, line):
    """``property TYPE NAME`` -> (name, type code); list properties -> (name, None)."""
    if words[1:2] == ["list"]:
        if len(words) != 5 or words[2] not in _PLY_TYPES or words[3] not in _PLY_TYPES:
            raise InputError(source, where, "'property list COUNT_TYPE TYPE NAME'", got=line)
        return (words[4], None)
    if len(words) != 3 or words[1] not in _PLY_TYPES:
        raise InputError(source, where, "'property TYPE NAME' with a PLY type", got=line)
    return (words[2], _PLY_TYPES[words[1]])


def _vertex_element(header: _Header, source: str) -> tuple[int, _Element]:
    """Index and description of the ``vertex`` element, checked to be readable."""
    names = [element.name for element in header.elements]
    if "vertex" not in names:
        raise InputError(source, "element vertex", "an 'element vertex N' header line")
    index = names.index("vertex")
    element = header.elements[index]
    if any(t is None for _, t in element.properties):
        raise InputError(source, "element vertex", "scalar properties only (no lists)")
    if header.fmt != "ascii":
        for before in header.elements[:index]:
            if any(t is None for _, t in before.properties):
                raise InputError(
                    source,
                    f"element {before.name}",
                    "no list properties before the vertex element in a binary file",
                )
    return index, element


def _read_ascii_rows(raw: bytes, header: _Header, index: int, source: str) -> np.ndarray:
    """The vertex rows of an ASCII file as a float64 array (count, n_properties)."""
    element = header.elements[index]
    lines = raw[header.data_offset :].decode("ascii", "replace").splitlines()
    lines = [line for line in lines if line.strip()]
    skip = sum(e.count for e in header.elements[:index])
    rows = lines[skip : skip + element.count]
    later = sum(e.count for e in header.elements[index + 1 :])
    n_found = len(lines) - skip
    if len(rows) < element.count or (later == 0 and n_found != element.count):
        raise InputError(
            source,
            "element vertex",
            f"{element.count} vertex rows (the header's count)",
            got=f"{max(n_found, 0)} rows",
        )
    n_props = len(element.properties)
    words = [row.split() for row in rows]
    for number, row_words in enumerate(words):
        if len(row_words) != n_props:
            raise InputError(
                source,
                f"vertex {number}",
                f"{n_props} numbers (one per property)",
                got=f"{len(row_words)} values",
            )
    try:
        values = np.array([w for row_words in words for w in row_words], dtype=np.float64)
    except ValueError:
        raise InputError(source, "vertex data", "numbers in every vertex row") from None
    return values.reshape(element.count, n_props)


def _read_binary_rows(raw: bytes, header: _Header, index: int, source: str) -> np.ndarray:
    """The vertex rows of a binary file as a structured array."""
    endian = _FORMATS[header.fmt]

    def row_dtype(element):
        return np.dtype([(f"f{i}", endian + t) for i, (_, t) in enumerate(element.properties)])

    offset = header.data_offset
    for before in header.elements[:index]:
        offset += before.count * row_dtype(before).itemsize
    element = header.elements[index]
    dtype = row_dtype(element)
    need = element.count * dtype.itemsize
    available = len(raw) - offset
    is_last = index == len(header.elements) - 1
    if available < need or (is_last and available != need):
        raise InputError(
            source,
            "element vertex",
            f"{element.count} vertices = {need} bytes of data",
            got=f"{max(available, 0)} bytes",
            hint="truncated file or wrong vertex count",
        )
    return np.frombuffer(raw, dtype=dtype, count=element.count, offset=offset)


def _column(rows, element: _Element, name: str, binary: bool) -> np.ndarray:
    names = [p for p, _ in element.properties]
    index = names.index(name)
    if binary:
        return np.asarray(rows[f"f{index}"], dtype=np.float64)
    # ASCII text holds more digits than the declared type: round to it, as a binary file
    # would, so that both encodings of one cloud read back the same.
    declared = np.dtype(element.properties[index][1])
    with np.errstate(over="ignore", invalid="ignore"):
        column = rows[:, index]
        if declared.kind == "f":
            column = column.astype(declared)
    return np.asarray(column, dtype=np.float64)


def _pick_name(names, choices, source, what):
    for choice in choices:
        if choice in names:
            return choice
    raise InputError(
        source,
        f"property {what}",
        "a vertex property named " + " or ".join(repr(c) for c in choices),
        got="properties " + " ".join(names),
    )


def read_ply(path) -> GaussianCloud:
    """Read a cloud of Gaussian balls from a PLY file.

    Parameters
    ----------
    path : str or os.PathLike
        A PLY file (ASCII, binary little or big endian) whose ``vertex`` element has
        ``x y z`` and either ``p0 sigma`` or ``intensity radius`` (any order, any numeric
        type; other properties are ignored).

    Returns
    -------
    GaussianCloud
        One ball per vertex: centre ``x y z``, ``p0`` (or ``intensity``) and ``sigma`` (or
        ``radius``).

    Raises
    ------
    InputError
        If the file is missing, not a PLY file, lacks a property, has a vertex count that
        disagrees with its data, holds NaN/Inf, or has a size (sigma) that is not positive.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise InputError(source, None, "an existing PLY file", hint="file not found") from None
    except OSError as exc:
        raise InputError(source, None, "a readable PLY file", got=exc.strerror) from None
    header = _parse_header(raw, source)
    index, element = _vertex_element(header, source)
    names = [name for name, _ in element.properties]
    chosen = [_pick_name(names, (axis,), source, axis) for axis in "xyz"]
    chosen.append(_pick_name(names, ("p0", "intensity"), source, "p0"))
    chosen.append(_pick_name(names, ("sigma", "radius"), source, "sigma"))
    if element.count == 0:
        raise InputError(source, "element vertex", "at least one ball", got="0 vertices")
    binary = header.fmt != "ascii"
    if binary:
        rows = _read_binary_rows(raw, header, index, source)
    else:
        rows = _read_ascii_rows(raw, header, index, source)
    columns = {name: _column(rows, element, name, binary) for name in chosen}
    for name, values in columns.items():
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(
                source,
                f"property {name}",
                "finite values",
                got=f"NaN/Inf in {int(bad.sum())} of {len(values)} vertices "
                f"(first at vertex {int(np.argmax(bad))})",
            )
    sizes = columns[chosen[4]]
    if (sizes <= 0).any():
        first = int(np.argmax(sizes <= 0))
        raise InputError(
            source,
            f"property {chosen[4]}",
            "positive ball sizes (metres)",
            got=f"{sizes[first]:g} at vertex {first}",
        )
    xyz = np.stack([columns[axis] for axis in chosen[:3]], axis=1)
    return GaussianCloud(xyz, columns[chosen[3]], sizes)


def write_ply(
    path,
    cloud: GaussianCloud,
    layout: str = "slingbag",
    binary: bool = True,
    dtype: str = "float32",
) -> None:
    """Write a cloud as a PLY file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    cloud : GaussianCloud
        The balls.
    layout : {"slingbag", "paper"}
        Property names: ``x y z p0 sigma`` or the paper's ``x y z intensity radius``.
    binary : bool
        Binary little endian (default) or ASCII.
    dtype : {"float32", "float64"}
        The stored number type (``float`` or ``double`` in the header).
    """
    if layout not in LAYOUTS:
        raise InputError("--layout", None, "one of " + ", ".join(LAYOUTS), got=layout)
    if dtype not in ("float32", "float64"):
        raise InputError("--dtype", None, "float32 or float64", got=dtype)
    names = ("x", "y", "z") + LAYOUTS[layout]
    ply_type = "float" if dtype == "float32" else "double"
    columns = [cloud.xyz[:, 0], cloud.xyz[:, 1], cloud.xyz[:, 2], cloud.p0, cloud.sigma]
    header = [
        "ply",
        "format " + ("binary_little_endian" if binary else "ascii") + " 1.0",
        "comment written by slingbag: Gaussian balls, metres",
        f"element vertex {len(cloud)}",
        *(f"property {ply_type} {name}" for name in names),
        "end_header",
    ]
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            code = "<f4" if dtype == "float32" else "<f8"
            rows = np.empty(len(cloud), dtype=[(name, code) for name in names])
            for name, column in zip(names, columns, strict=True):
                rows[name] = column
            fh.write(rows.tobytes())
        else:
            text = io.StringIO()
            # 9 (float32) or 17 (float64) significant digits read back to the same number.
            fmt = "%.9g" if dtype == "float32" else "%.17g"
            values = np.stack(columns, axis=1).astype(dtype)
            np.savetxt(text, values, fmt=fmt, delimiter=" ")
            fh.write(text.getvalue().encode("ascii"))
