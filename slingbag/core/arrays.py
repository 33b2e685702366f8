"""Sensor arrays: built-in presets and files of sensor positions.

Presets (all about 120-140 mm across, like the SlingBAG paper's arrays):

- ``planar-49``, ``planar-196``, ``planar-576``, ``planar-4900``: square grids of 7x7 at
  20 mm, 14x14 at 10 mm, 24x24 at 6 mm and 70x70 at 2 mm pitch;
- ``planar:NxM:PITCH``: any grid, PITCH in metres (``planar:24x24:1.5e-3``);
- ``hemisphere-1024``: 1024 quasi-uniform (Fibonacci) points on the lower half (z <= 0) of
  a 60 mm sphere centred on the origin.

Planar arrays lie in the plane z = 0, centred on x = y = 0, with normals +z: they look up at
tissue above them.  Sphere normals point to the centre.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .acquisition import SensorArray
from .geometry import MAX_COORDINATE, fit_plane

# name -> (nx, ny, pitch in metres)
_PLANAR_PRESETS = {
    "planar-49": (7, 7, 20e-3),
    "planar-196": (14, 14, 10e-3),
    "planar-576": (24, 24, 6e-3),
    "planar-4900": (70, 70, 2e-3),
}
HEMISPHERE_RADIUS = 60e-3
_SPHERE_PRESETS = {"hemisphere-1024": 1024}
_PLANAR_SPEC = re.compile(r"^planar:(\d+)x(\d+):(\S+)$")
# Relative misfit below which points count as lying on a plane / a sphere.
_SHAPE_TOLERANCE = 1e-4


def list_presets() -> list[str]:
    """Names accepted by :func:`load_array` (besides ``planar:NxM:PITCH`` and files)."""
    return [*_PLANAR_PRESETS, *_SPHERE_PRESETS]


def planar_grid(nx: int, ny: int, pitch: float, name: str | None = None) -> SensorArray:
    """A rectangular grid in the plane z = 0, centred on the origin, normals +z.

    Parameters
    ----------
    nx, ny : int
        Sensors along x and y.
    pitch : float
        Centre-to-centre distance in metres; each sensor's area is ``pitch**2``.
    """
    x = (np.arange(nx) - (nx - 1) / 2) * pitch
    y = (np.arange(ny) - (ny - 1) / 2) * pitch
    gx, gy = np.meshgrid(x, y, indexing="ij")
    positions = np.stack([gx.ravel(), gy.ravel(), np.zeros(nx * ny)], axis=1)
    normals = np.tile([0.0, 0.0, 1.0], (nx * ny, 1))
    areas = np.full(nx * ny, pitch**2)
    return SensorArray(positions, normals, areas, name=name or f"planar:{nx}x{ny}:{pitch:g}")


def fibonacci_hemisphere(n: int, radius: float, name: str | None = None) -> SensorArray:
    """``n`` quasi-uniform points on the lower hemisphere (z <= 0) of a sphere at the origin.

    Equal steps in z give equal areas on a sphere (Archimedes); the golden-angle turn
    between successive points spreads them evenly in azimuth.  Normals point to the centre
    and every sensor gets an equal share ``2 pi r^2 / n`` of the hemisphere's area.
    """
    k = np.arange(n)
    z = -(k + 0.5) / n
    ring = np.sqrt(1.0 - z**2)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    unit = np.stack([ring * np.cos(phi), ring * np.sin(phi), z], axis=1)
    areas = np.full(n, 2 * np.pi * radius**2 / n)
    return SensorArray(radius * unit, -unit, areas, name=name or f"hemisphere-{n}")


def _parse_planar_spec(spec: str) -> SensorArray:
    match = _PLANAR_SPEC.match(spec)
    expected = "planar:NxM:PITCH with N, M >= 1 and PITCH in metres (e.g. planar:24x24:1.5e-3)"
    if not match:
        raise InputError("--array", None, expected, got=spec)
    nx, ny = int(match[1]), int(match[2])
    try:
        pitch = float(match[3])
    except ValueError:
        raise InputError("--array", None, expected, got=spec) from None
    if nx < 1 or ny < 1 or not np.isfinite(pitch) or pitch <= 0:
        raise InputError("--array", None, expected, got=spec)
    if pitch > 0.1:
        raise InputError(
            "--array",
            "PITCH",
            "a pitch in metres (<= 0.1 m)",
            got=match[3],
            hint="this looks like millimetres; 1.5 mm is 1.5e-3",
        )
    return planar_grid(nx, ny, pitch, name=spec)


def _read_text_positions(path: Path, source: str) -> np.ndarray:
    """Rows of 3 numbers separated by whitespace, tabs, commas or semicolons.

    Blank lines and ``#`` comments are skipped; a first line that is not numbers is taken
    as a header.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError(
            source, None, "a text file of x y z rows (or .npy)", got="binary data"
        ) from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = [w for w in re.split(r"[,;\s]+", line) if w]
        try:
            values = [float(w) for w in words]
        except ValueError:
            if not rows and number == _first_content_line(text):
                continue  # a header line such as "x,y,z"
            raise InputError(
                source, f"line {number}", "3 numbers (x y z in metres)", got=line
            ) from None
        if len(values) != 3:
            raise InputError(
                source, f"line {number}", "3 numbers (x y z in metres)", got=f"{len(values)} values"
            )
        rows.append(values)
    if not rows:
        raise InputError(source, None, "at least one row of x y z positions", got="no rows")
    return np.array(rows, dtype=np.float64)


def _first_content_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split("#", 1)[0].strip():
            return number
    return 0


def _read_npy_positions(path: Path, source: str) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(
            source,
            None,
            "a .npy array of shape (N, 3)",
            got=str(exc).splitlines()[0] if str(exc) else "unreadable",
        ) from None
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiu":
        raise InputError(
            source,
            None,
            "a numeric .npy array of shape (N, 3)",
            got=f"dtype {getattr(data, 'dtype', type(data).__name__)}",
        )
    if data.ndim != 2 or data.shape[1] != 3 or data.shape[0] == 0:
        raise InputError(source, None, "an array of shape (N, 3)", got=f"shape {data.shape}")
    return data.astype(np.float64)


def _check_positions(positions: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(positions)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        raise InputError(source, f"row {row + 1}", "finite x y z values", got="NaN/Inf")
    largest = float(np.abs(positions).max())
    if largest > MAX_COORDINATE:
        raise InputError(
            source,
            "positions",
            f"metres (|value| <= {MAX_COORDINATE:g})",
            got=f"{largest:g}",
            hint="positions look like millimetres; divide by 1000",
        )


def infer_normals(positions: np.ndarray) -> np.ndarray | None:
    """Normals for sensors on a plane or a sphere, or None for any other layout.

    On a sphere the normals point to its fitted centre.  On a plane they are the plane's
    normal, signed to face the origin's side when the plane misses the origin (the tissue
    is usually near the origin) and otherwise so that the largest component is positive
    (+z for an array in z = 0, like the presets).
    """
    if len(positions) < 3:
        return None
    plane = fit_plane(positions)
    size = float(np.abs(positions - plane.centroid).max())
    if size == 0:
        return None
    spread = plane.spread
    if spread[2] < _SHAPE_TOLERANCE * spread[0]:
        if spread[1] < _SHAPE_TOLERANCE * spread[0]:
            return None  # the points lie on a line
        normal = plane.normal
        offset = float(plane.centroid @ normal)
        if abs(offset) > _SHAPE_TOLERANCE * size:
            normal = -np.sign(offset) * normal  # point from the plane towards the origin
        elif normal[np.argmax(np.abs(normal))] < 0:
            normal = -normal
        return np.tile(normal, (len(positions), 1))
    if len(positions) < 4:
        return None
    centre, radius, _ = fit_sphere(positions)
    if centre is None:
        return None
    misfit = np.abs(np.linalg.norm(positions - centre, axis=1) - radius).max()
    if misfit > 1e-3 * radius:
        return None
    inward = centre - positions
    return inward / np.linalg.norm(inward, axis=1, keepdims=True)


def fit_sphere(positions: np.ndarray):
    """Least-squares sphere through the points: ``(centre, radius, rms radial residual)``,
    or ``(None, 0.0, inf)`` when the points fit no sphere.

    Algebraic fit: ``|p|^2 = 2 c.p + (r^2 - |c|^2)`` is linear in ``c`` and that constant,
    so no iterations, and exact for points on a sphere.
    """
    shift = positions.mean(axis=0)
    p = positions - shift  # centring keeps the normal equations well conditioned
    a = np.column_stack([2 * p, np.ones(len(p))])
    b = (p**2).sum(axis=1)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = solution[:3]
    r2 = solution[3] + centre @ centre
    if not np.isfinite(r2) or r2 <= 0:
        return None, 0.0, np.inf
    radius = float(np.sqrt(r2))
    resid = np.linalg.norm(p - centre, axis=1) - radius
    return centre + shift, radius, float(np.sqrt(np.mean(resid**2)))


def read_positions_file(path) -> SensorArray:
    """Sensor positions (metres) from a text/CSV file or a ``.npy`` array of shape (N, 3).

    Normals are inferred for points on a plane or a sphere (see :func:`infer_normals`);
    areas are left unknown.
    """
    source = os.fspath(path)
    file = Path(source)
    if not file.is_file():
        raise InputError(
            source,
            None,
            "an existing file of sensor positions (N x 3, metres)",
            hint="file not found" if not file.exists() else "not a file",
        )
    if file.suffix.lower() == ".npy":
        positions = _read_npy_positions(file, source)
    else:
        positions = _read_text_positions(file, source)
    _check_positions(positions, source)
    return SensorArray(positions, infer_normals(positions), None, name=file.name)


def load_array(spec) -> SensorArray:
    """A sensor array from a preset name, a ``planar:NxM:PITCH`` spec or a positions file.

    Parameters
    ----------
    spec : str, os.PathLike, SensorArray or array (N, 3)
        A preset, all about 120-140 mm across like the SlingBAG paper's arrays:
        ``planar-49``, ``planar-196``, ``planar-576``, ``planar-4900`` (square grids of
        7x7 at 20 mm, 14x14 at 10 mm, 24x24 at 6 mm and 70x70 at 2 mm pitch) or
        ``hemisphere-1024`` (1024 quasi-uniform points on the lower half, z <= 0, of a
        60 mm sphere centred on the origin, normals to the centre).
        ``planar:NxM:PITCH`` is any grid, PITCH in metres (``planar:24x24:1.5e-3``);
        planar arrays lie in the plane z = 0, centred on x = y = 0, normals +z.  Anything
        else is read as a file of positions (text/CSV or ``.npy``, N x 3 metres).  For a
        file or an array of positions, normals are inferred when the sensors lie on a
        plane or a sphere.  A SensorArray is returned as it is.

    Returns
    -------
    SensorArray
        Positions in metres, normals where known, and areas for the presets and
        ``planar:NxM:PITCH`` grids.

    Raises
    ------
    InputError
        Unknown preset, missing file, or a file that is not N x 3 finite metres.
    """
    if isinstance(spec, SensorArray):
        return spec
    if isinstance(spec, np.ndarray):
        positions = np.asarray(spec, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
            raise InputError(
                "array", None, "positions of shape (N, 3)", got=f"shape {positions.shape}"
            )
        _check_positions(positions, "array")
        return SensorArray(positions, infer_normals(positions))
    text = os.fspath(spec)
    if text in _PLANAR_PRESETS:
        nx, ny, pitch = _PLANAR_PRESETS[text]
        return planar_grid(nx, ny, pitch, name=text)
    if text in _SPHERE_PRESETS:
        return fibonacci_hemisphere(_SPHERE_PRESETS[text], HEMISPHERE_RADIUS, name=text)
    if text.startswith("planar:"):
        return _parse_planar_spec(text)
    if os.path.exists(text) or _looks_like_path(text):
        return read_positions_file(text)
    raise InputError(
        "--array",
        None,
        "a preset (" + ", ".join(list_presets()) + ", planar:NxM:PITCH) or a file",
        got=text,
    )


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or bool(Path(text).suffix)
