"""Geometry of point sets shared by the array, region and back-projection code."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PlaneFit(NamedTuple):
    """A least-squares plane through points.

    Attributes
    ----------
    centroid : ndarray, shape (3,)
    normal : ndarray, shape (3,)
        Unit normal (sign arbitrary); +z when fewer than three points fix no plane.
    spread : ndarray, shape (3,)
        RMS extent of the points along the principal axes, largest first (singular values
        over sqrt(n)): ``spread[0]`` the in-plane size, ``spread[2]`` the RMS distance
        from the plane (0 for fewer than three points).
    """

    centroid: np.ndarray
    normal: np.ndarray
    spread: np.ndarray

    @property
    def rms(self) -> float:
        """RMS distance of the points from the plane."""
        return float(self.spread[2])

    @property
    def size(self) -> float:
        """RMS extent of the points along their longest axis."""
        return float(self.spread[0])


def fit_plane(points) -> PlaneFit:
    """The plane through ``points`` (shape (n, 3), n >= 1) by SVD of the centred points."""
    pos = np.asarray(points, np.float64).reshape(-1, 3)
    centroid = pos.mean(axis=0)
    _, sv, vt = np.linalg.svd(pos - centroid, full_matrices=False)
    n = len(pos)
    spread = np.zeros(3)
    spread[: len(sv)] = sv / np.sqrt(n)
    normal = vt[-1] if len(sv) == 3 else np.array([0.0, 0.0, 1.0])
    return PlaneFit(centroid, normal, spread)


#: Metres; a larger coordinate is a length in millimetres read as metres.
MAX_COORDINATE = 10.0
REGION_EXPECTED = "6 numbers x0,x1,y0,y1,z0,z1 in metres with x0 < x1, y0 < y1, z0 < z1"


def parse_region(value, source="--region", field=None) -> tuple[np.ndarray, np.ndarray]:
    """A box ``(lo, hi)`` in metres, the one reading of a region every option and file
    goes through.

    Parameters
    ----------
    value : str or sequence
        ``"x0,x1,y0,y1,z0,z1"``, those six numbers, or a pair ``(lo, hi)`` of three each.
    source, field : str, optional
        Where it came from, for the error.

    Raises
    ------
    InputError
        Not six finite numbers, an empty box (``x0 >= x1``...), or a coordinate beyond
        ``MAX_COORDINATE`` (millimetres).
    """
    from ..errors import InputError

    def bad(hint=None):
        return InputError(source, field, REGION_EXPECTED, got=value, hint=hint)

    try:
        if isinstance(value, str):
            values = np.array([float(v) for v in value.split(",")])
        else:
            arr = np.asarray(value, dtype=np.float64)
            values = (arr.T if arr.shape == (2, 3) else arr).reshape(-1)
    except (TypeError, ValueError):
        raise bad() from None
    if values.size != 6 or not np.isfinite(values).all():
        raise bad()
    lo, hi = values[0::2].copy(), values[1::2].copy()
    if np.any(hi <= lo):
        raise bad()
    if np.abs(values).max() > MAX_COORDINATE:
        raise bad("the values look like millimetres; divide by 1000")
    return lo, hi
