"""The scene: a cloud of isotropic Gaussian balls (see docs/method.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The ball models, by the id the kernels know them by: ``gaussian``, the exact wave of a
#: Gaussian initial field (cut at a few sigmas), and ``shells``, the paper's ten
#: erf-smoothed uniform spheres.  The one list every module and option checks against.
MODELS = {"gaussian": 0, "shells": 1}


def profile_integral_factor(cut: float = 3.0) -> float:
    """Integral over space of one ball's profile divided by ``p0 * sigma^3``.

    The ``gaussian`` model's profile is the Gaussian cut at ``cut`` sigmas and lowered by
    its value there (so it reaches zero continuously): ``(2 pi)^1.5 P(chi_3 < cut)`` minus
    the lowered cylinder ``exp(-cut^2/2) * 4/3 pi cut^3``.
    """
    from math import erf, exp, pi, sqrt

    chi3 = erf(cut / sqrt(2)) - sqrt(2 / pi) * cut * exp(-(cut**2) / 2)
    return (2 * pi) ** 1.5 * chi3 - exp(-(cut**2) / 2) * 4 / 3 * pi * cut**3


@dataclass
class GaussianCloud:
    """N isotropic Gaussian sources.

    Ball ``i`` has initial pressure ``p0[i] * exp(-|r - xyz[i]|^2 / (2 sigma[i]^2))``.
    The parameters are kept as float64 attributes of the same names; ``len(cloud)`` is N.

    Parameters
    ----------
    xyz : array_like, shape (N, 3)
        Centres in metres.
    p0 : array_like, shape (N,)
        Peak initial pressure (any pressure unit).
    sigma : array_like, shape (N,)
        Standard deviation of each Gaussian in metres (the paper's "radius").

    Raises
    ------
    ValueError
        When ``p0`` or ``sigma`` does not hold one value per centre.
    """

    xyz: np.ndarray
    p0: np.ndarray
    sigma: np.ndarray

    def __post_init__(self):
        self.xyz = np.asarray(self.xyz, dtype=np.float64).reshape(-1, 3)
        self.p0 = np.asarray(self.p0, dtype=np.float64).reshape(-1)
        self.sigma = np.asarray(self.sigma, dtype=np.float64).reshape(-1)
        n = len(self.xyz)
        if len(self.p0) != n or len(self.sigma) != n:
            raise ValueError(
                f"GaussianCloud: xyz has {n} balls but p0 has {len(self.p0)} and sigma "
                f"{len(self.sigma)}"
            )

    def __len__(self) -> int:
        return len(self.p0)

    @property
    def n(self) -> int:
        """The number of balls."""
        return len(self.p0)

    def copy(self) -> GaussianCloud:
        """Return a copy that shares no array with this cloud.

        Returns
        -------
        GaussianCloud
            The same balls in new arrays.
        """
        return GaussianCloud(self.xyz.copy(), self.p0.copy(), self.sigma.copy())

    def subset(self, mask) -> GaussianCloud:
        """Return some of the balls.

        Parameters
        ----------
        mask : array_like of bool or int
            A boolean mask over the balls, or the indices of those to keep.

        Returns
        -------
        GaussianCloud
            The chosen balls.
        """
        return GaussianCloud(self.xyz[mask], self.p0[mask], self.sigma[mask])

    def bounds(self, n_sigma: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
        """Return the box holding every ball out to ``n_sigma`` standard deviations.

        Parameters
        ----------
        n_sigma : float
            How far out from each centre, in standard deviations.

        Returns
        -------
        lo : ndarray, shape (3,)
            The box's lower corner in metres (zero for an empty cloud).
        hi : ndarray, shape (3,)
            Its upper corner in metres (zero for an empty cloud).
        """
        if self.n == 0:
            return np.zeros(3), np.zeros(3)
        r = n_sigma * self.sigma[:, None]
        return (self.xyz - r).min(axis=0), (self.xyz + r).max(axis=0)

    @staticmethod
    def concatenate(clouds) -> GaussianCloud:
        """Join clouds into one.

        Parameters
        ----------
        clouds : iterable of GaussianCloud
            The clouds, in order; at least one.

        Returns
        -------
        GaussianCloud
            Their balls one after another.
        """
        clouds = list(clouds)
        return GaussianCloud(
            np.concatenate([c.xyz for c in clouds]),
            np.concatenate([c.p0 for c in clouds]),
            np.concatenate([c.sigma for c in clouds]),
        )
