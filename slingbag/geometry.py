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
