"""A regular voxel grid with its placement in space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Volume:
    """Voxel values on a regular grid.

    Voxel ``[i, j, k]`` sits at ``origin + (i, j, k) * spacing`` (metres).  The parameters
    are kept as attributes of the same names: ``data`` as float32, ``origin`` and
    ``spacing`` as float64 arrays of shape (3,).

    Parameters
    ----------
    data : array_like, shape (nx, ny, nz)
        The voxel values.
    origin : array_like, shape (3,)
        Position of voxel ``[0, 0, 0]`` in metres.
    spacing : float or array_like, shape (3,)
        Voxel size along x, y and z in metres (one float for cubic voxels).
    """

    data: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray

    def __post_init__(self):
        self.data = np.asarray(self.data, dtype=np.float32)
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.spacing = np.broadcast_to(np.asarray(self.spacing, dtype=np.float64), (3,)).copy()

    @property
    def shape(self) -> tuple[int, int, int]:
        """The number of voxels along x, y and z."""
        return tuple(self.data.shape)

    def axes(self) -> list[np.ndarray]:
        """Return the coordinates of the voxel centres along each axis.

        Returns
        -------
        list of 3 ndarray
            The x, y and z coordinates of the voxel centres, in metres.
        """
        return [self.origin[d] + np.arange(self.shape[d]) * self.spacing[d] for d in range(3)]

    def extent(self) -> np.ndarray:
        """Return the first and last voxel-centre coordinates along each axis.

        Returns
        -------
        ndarray, shape (3, 2)
            Row ``d`` is ``[first, last]`` along axis ``d`` (x, y, z), in metres.
        """
        last = self.origin + (np.array(self.shape) - 1) * self.spacing
        return np.stack([self.origin, last], axis=1)


def grid_for_region(lo, hi, spacing) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Origin, spacing and shape of a grid covering the box ``[lo, hi]``."""
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    spacing = np.broadcast_to(np.asarray(spacing, float), (3,)).copy()
    shape = tuple(int(n) for n in np.maximum(1, np.round((hi - lo) / spacing).astype(int) + 1))
    return lo.copy(), spacing, shape
