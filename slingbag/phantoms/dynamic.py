"""A dynamic test object: the vessel tree pulsating, with a contrast agent washing in.

Dynamic photoacoustic imaging records the same tissue over many frames; the vessels'
radii follow the cardiac cycle and an injected absorber raises their amplitude over
time.  :func:`dynamic_vessels` gives such a sequence of phantoms for series
reconstruction (:func:`slingbag.series.reconstruct_series`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.volume import Volume, grid_for_region
from ..errors import InputError
from . import (
    CLOUD_THRESHOLD,
    Phantom,
    _Branch,
    _draw_tube,
    _region_bounds,
    grow_tree,
    volume_to_cloud,
)


@dataclass
class DynamicPhantom:
    """A sequence of phantoms of one vessel tree.

    The parameters are kept as attributes of the same names; ``len(phantom)`` is the
    number of frames and ``phantom[k]`` frame ``k``.

    Parameters
    ----------
    frames : list of Phantom
        One volume and cloud per frame, all on the same grid.
    radius_scale : ndarray, shape (n_frames, n_branches)
        Factor applied to each vessel's radius in each frame (the pulsation).
    contrast : ndarray, shape (n_frames, n_branches)
        Factor applied to each vessel's amplitude in each frame (the wash-in).
    """

    frames: list
    radius_scale: np.ndarray
    contrast: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, k) -> Phantom:
        return self.frames[k]


def dynamic_vessels(
    n_frames: int = 12,
    seed: int = 0,
    *,
    region=None,
    spacing: float = 0.1e-3,
    pulse: float = 0.15,
    period: float = 6.0,
    baseline: float = 0.6,
    wash_in: tuple[float, float] = (0.2, 0.6),
    wash_width: float = 1.0,
    **tree,
) -> DynamicPhantom:
    """The vessels phantom over ``n_frames`` frames, pulsating and washing in.

    The tree is grown once (as :func:`slingbag.vessels_phantom` does, from ``seed``); each
    frame redraws it with

    * radii times ``1 + pulse * sin(2 pi (k / period - lag))``: a pressure wave that
      reaches each vessel with a small lag (``lag`` grows along the tree, 0 to 0.15 of a
      cycle), so neighbouring vessels do not swell in lockstep;
    * amplitudes times ``baseline + (1 - baseline) * s(k)``: a logistic wash-in ``s`` of
      width ``wash_width`` frames that reaches each vessel at a time drawn in
      ``wash_in`` (fractions of the series), trunks first.

    Parameters
    ----------
    n_frames : int
        Number of frames (>= 1).
    seed : int
        Seed of the tree and of the per-vessel lags and arrival times.
    region : sequence of 6 floats, optional
        ``x0, x1, y0, y1, z0, z1`` in metres (default as in :func:`vessels_phantom`).
    spacing : float
        Voxel size in metres.
    pulse : float
        Relative amplitude of the radius pulsation (0 freezes the radii).
    period : float
        Cardiac period in frames.
    baseline : float
        Relative amplitude of the vessels before the contrast arrives (1: no wash-in).
    wash_in : (float, float)
        Range of the arrival times as fractions of the series.
    wash_width : float
        Width of the wash-in front in frames.
    **tree
        ``n_trunks``, ``trunk_radius``, ``min_radius``, ``max_depth``, ``branch_every`` of
        :func:`vessels_phantom`.

    Returns
    -------
    DynamicPhantom
        The frames' phantoms and each vessel's radius and amplitude factors per frame.
    """
    if int(n_frames) < 1:
        raise InputError("n_frames", None, "at least one frame", got=n_frames)
    if not 0 <= pulse < 1:
        raise InputError("pulse", None, "a relative amplitude in [0, 1)", got=pulse)
    if not 0 < baseline <= 1:
        raise InputError("baseline", None, "a relative amplitude in (0, 1]", got=baseline)
    n_frames = int(n_frames)
    lo, hi = _region_bounds(region)
    origin, spacing3, shape = grid_for_region(lo, hi, spacing)
    branches = grow_tree(lo, hi, seed, **tree)
    # A separate stream for the dynamics, so the tree itself matches vessels_phantom's.
    rng = np.random.default_rng([seed, 1])
    radius_scale, contrast = _frame_factors(
        len(branches), n_frames, rng, pulse, period, baseline, wash_in, wash_width
    )
    frames = [
        _frame_phantom(branches, radius_scale[f], contrast[f], (origin, spacing3, shape))
        for f in range(n_frames)
    ]
    return DynamicPhantom(frames, radius_scale, contrast)


def _frame_factors(n_b, n_frames, rng, pulse, period, baseline, wash_in, wash_width):
    """Each vessel's radius factor (the pulsation) and amplitude factor (the wash-in) in
    each frame, both ``(n_frames, n_b)``; see :func:`dynamic_vessels`."""
    # Branches come out of the grower roughly trunk-first, so ranking by index makes the
    # pulse and the contrast reach the trunks before the twigs.
    order = np.arange(n_b) / max(n_b - 1, 1)
    lag = 0.15 * order + rng.uniform(0, 0.03, n_b)
    arrival = (wash_in[0] + (wash_in[1] - wash_in[0]) * order) * max(n_frames - 1, 1)
    arrival += rng.normal(0, 0.3, n_b)
    k = np.arange(n_frames)[:, None]
    radius_scale = 1.0 + pulse * np.sin(2 * np.pi * (k / float(period) - lag[None, :]))
    front = 1.0 / (1.0 + np.exp(-(k - arrival[None, :]) / max(wash_width, 1e-6)))
    contrast = baseline + (1.0 - baseline) * front
    return radius_scale, contrast


def _frame_phantom(branches, radius_scale, contrast, grid) -> Phantom:
    """One frame: the tree drawn with each branch's radius and amplitude scaled, and its
    cloud; ``grid`` is ``(origin, spacing, shape)``."""
    from ..model.voxelize import voxelize

    origin, spacing3, shape = grid
    data = np.zeros(shape, dtype=np.float32)
    for b, branch in enumerate(branches):
        scaled = _Branch(
            branch.points,
            branch.radius * radius_scale[b],
            branch.amplitude * contrast[b],
        )
        _draw_tube(data, origin, spacing3, scaled)
    drawn = Volume(data, origin, spacing3)
    cloud = volume_to_cloud(drawn, threshold=CLOUD_THRESHOLD * float(data.max()))
    # As in vessels_phantom: the truth is what the cloud really holds.
    return Phantom(voxelize(cloud, origin, spacing3, shape), cloud)
