"""The scene: a cloud of isotropic Gaussian balls (SPEC section 1)."""

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

    Attributes
    ----------
    xyz : ndarray, shape (N, 3)
        Centres in metres.
    p0 : ndarray, shape (N,)
        Peak initial pressure (any pressure unit).
    sigma : ndarray, shape (N,)
        Standard deviation of each Gaussian in metres (the paper's "radius").
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
        return len(self.p0)

    def copy(self) -> GaussianCloud:
        return GaussianCloud(self.xyz.copy(), self.p0.copy(), self.sigma.copy())

    def subset(self, mask) -> GaussianCloud:
        return GaussianCloud(self.xyz[mask], self.p0[mask], self.sigma[mask])

    def bounds(self, n_sigma: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
        """Box ``(lo, hi)`` holding every ball out to ``n_sigma`` standard deviations."""
        if self.n == 0:
            return np.zeros(3), np.zeros(3)
        r = n_sigma * self.sigma[:, None]
        return (self.xyz - r).min(axis=0), (self.xyz + r).max(axis=0)

    @staticmethod
    def concatenate(clouds) -> GaussianCloud:
        clouds = list(clouds)
        return GaussianCloud(
            np.concatenate([c.xyz for c in clouds]),
            np.concatenate([c.p0 for c in clouds]),
            np.concatenate([c.sigma for c in clouds]),
        )
