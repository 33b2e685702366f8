"""Test objects: a seeded vessel tree, and conversions between volumes and clouds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.cloud import GaussianCloud, profile_integral_factor
from ..core.geometry import parse_region
from ..core.volume import Volume, grid_for_region
from ..errors import InputError

# Default region: 20 x 20 x 6 mm, 12 mm above a planar array in z = 0.
DEFAULT_REGION = (-10e-3, 10e-3, -10e-3, 10e-3, 12e-3, 18e-3)
# Voxels below this fraction of the peak do not become balls (they add nothing visible).
CLOUD_THRESHOLD = 1e-3


@dataclass
class Phantom:
    """A test object as a voxel volume and the equivalent cloud of balls.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    volume : Volume or None
        The object on a voxel grid; None for phantoms that exist only as a cloud (a PLY
        file).
    cloud : GaussianCloud
        The same object as balls, ready for :func:`slingbag.simulate`.
    """

    volume: Volume | None
    cloud: GaussianCloud


@dataclass
class _Branch:
    """One vessel between branch points: a polyline with a constant radius."""

    points: np.ndarray  # (k, 3) centre line, metres
    radius: float
    amplitude: float


def volume_to_cloud(volume: Volume, threshold: float = 0.0) -> GaussianCloud:
    """One Gaussian ball per voxel above ``threshold``.

    Each ball sits on its voxel's centre with ``sigma`` equal to the (mean) spacing ``h`` and
    a peak chosen so that the ball's integral equals the voxel's value times its volume:
    ``p0 = v h^3 / (F sigma^3)``, F the integral factor of the cut profile
    (:func:`slingbag.core.cloud.profile_integral_factor`).  The overlapping balls then add up to
    the voxel values blurred by about one voxel.

    Why not narrower balls: a lattice of Gaussians narrower than about its spacing leaves a
    ripple in the field that the radiated N-waves (time derivatives of its projections)
    amplify by the object size over the spacing, which would put spurious high frequencies
    into simulated signals.

    Parameters
    ----------
    volume : Volume
        The voxel values and their grid.
    threshold : float
        Voxels at or below this value get no ball.

    Returns
    -------
    GaussianCloud
        One ball per voxel above ``threshold``, in the order of ``numpy.argwhere``.
    """
    data = np.asarray(volume.data)
    index = np.argwhere(data > threshold)
    values = data[tuple(index.T)].astype(np.float64)
    spacing = np.asarray(volume.spacing, dtype=np.float64)
    sigma = float(spacing.mean())
    voxel_volume = float(np.prod(spacing))
    p0 = values * voxel_volume / (profile_integral_factor() * sigma**3)
    xyz = volume.origin + index * spacing
    return GaussianCloud(xyz, p0, np.full(len(values), sigma))


def vessels_phantom(
    region=None,
    spacing: float = 0.1e-3,
    seed: int = 0,
    *,
    n_trunks: int = 3,
    trunk_radius=(0.4e-3, 0.5e-3),
    min_radius: float = 0.15e-3,
    max_depth: int = 4,
    branch_every=(2.5e-3, 5e-3),
) -> Phantom:
    """A seeded random 3D vessel tree, like the vessels of a hand, in a thin slab.

    Trunks enter from the region's sides and wander inwards along smooth, meandering paths
    that stay within the slab; they branch recursively, radii shrinking by Murray's law
    (``r_parent^3 = r_a^3 + r_b^3``) down to ``min_radius``.  Vessels are drawn as tubes
    with a smooth edge about one voxel wide, so the volume is not aliased; each vessel's
    amplitude is about 1 (0.85 to 1.15).

    Parameters
    ----------
    region : sequence of 6 floats, optional
        ``x0, x1, y0, y1, z0, z1`` in metres; default 20 x 20 x 6 mm at z = 12..18 mm.
    spacing : float
        Voxel size in metres.
    seed : int
        Seed of the random tree; the same seed gives the same phantom.
    n_trunks : int
        Number of vessels entering from the sides.
    trunk_radius : (float, float)
        Range of the trunks' radii in metres.
    min_radius : float
        Branches thinner than this are not grown.
    max_depth : int
        Levels of branching.
    branch_every : (float, float)
        Range of path length between branch points, metres.

    Returns
    -------
    Phantom
        The volume and its cloud (``volume_to_cloud`` above 0.1 % of the peak).
    """
    lo, hi = _region_bounds(region)
    if not (np.isfinite(spacing) and spacing > 0):
        raise InputError("--spacing", None, "a positive voxel size in metres", got=spacing)
    if np.any((hi - lo) / spacing > 2000):
        raise InputError(
            "--spacing",
            None,
            "at most 2000 voxels along an axis",
            got=f"{spacing:g} m",
            hint="use a larger spacing or a smaller region",
        )
    origin, spacing3, shape = grid_for_region(lo, hi, spacing)
    branches = grow_tree(
        lo,
        hi,
        seed,
        n_trunks=n_trunks,
        trunk_radius=trunk_radius,
        min_radius=min_radius,
        max_depth=max_depth,
        branch_every=branch_every,
    )
    data = np.zeros(shape, dtype=np.float32)
    for branch in branches:
        _draw_tube(data, origin, spacing3, branch)
    drawn = Volume(data, origin, spacing3)
    cloud = volume_to_cloud(drawn, threshold=CLOUD_THRESHOLD * float(data.max()))
    # The truth is the field the cloud really holds (the drawing blurred by one voxel), so
    # a perfect reconstruction of the data scores a perfect match.
    from ..model.voxelize import voxelize

    return Phantom(voxelize(cloud, origin, spacing3, shape), cloud)


def grow_tree(
    lo,
    hi,
    seed,
    *,
    n_trunks: int = 3,
    trunk_radius=(0.4e-3, 0.5e-3),
    min_radius: float = 0.15e-3,
    max_depth: int = 4,
    branch_every=(2.5e-3, 5e-3),
) -> list:
    """The branches of the seeded random vessel tree in the box ``[lo, hi]`` (used by
    :func:`vessels_phantom` and the dynamic phantom)."""
    rng = np.random.default_rng(seed)
    grower = _TreeGrower(lo, hi, rng, min_radius, max_depth, branch_every)
    branches = []
    for _ in range(n_trunks):
        start, direction = _entry_point(lo, hi, rng)
        radius = rng.uniform(*trunk_radius)
        branches.extend(grower.grow(start, direction, radius, depth=0))
    return branches


def _region_bounds(region):
    return parse_region(DEFAULT_REGION if region is None else region)


def _entry_point(lo, hi, rng):
    """A point on one of the four side faces, mid-slab, and an inward direction."""
    side = rng.integers(4)
    axis, at_high = divmod(side, 2)
    other = 1 - axis
    start = np.empty(3)
    start[axis] = hi[axis] if at_high else lo[axis]
    start[other] = rng.uniform(
        lo[other] + 0.2 * (hi[other] - lo[other]), hi[other] - 0.2 * (hi[other] - lo[other])
    )
    start[2] = 0.5 * (lo[2] + hi[2]) + rng.uniform(-0.25, 0.25) * (hi[2] - lo[2])
    direction = np.zeros(3)
    direction[axis] = -1.0 if at_high else 1.0
    direction[other] = rng.uniform(-0.5, 0.5)
    return start, direction / np.linalg.norm(direction)


class _TreeGrower:
    """Grows branches by a smooth random walk of the direction (a meander)."""

    def __init__(self, lo, hi, rng, min_radius, max_depth, branch_every):
        self.lo, self.hi, self.rng = lo, hi, rng
        self.min_radius, self.max_depth = min_radius, max_depth
        self.branch_every = branch_every
        self.step = 0.2e-3  # finer than any radius, so the polyline looks smooth
        self.max_branches = 400  # a hard stop against pathological seeds

    def grow(self, start, direction, radius, depth):
        branches = []
        pending = [(start, direction, radius, depth)]
        while pending and len(branches) < self.max_branches:
            start, direction, radius, depth = pending.pop()
            branch, end, end_direction, spawn = self._walk(start, direction, radius, depth)
            if len(branch.points) >= 2:
                branches.append(branch)
            if spawn:
                pending.extend(self._split(end, end_direction, radius, depth))
        return branches

    def _walk(self, start, direction, radius, depth):
        """Walk until a branch point, the region's edge, or the slab's floor/ceiling."""
        rng = self.rng
        length = rng.uniform(*self.branch_every)
        n_steps = max(2, int(length / self.step))
        mid_z = 0.5 * (self.lo[2] + self.hi[2])
        half_z = 0.5 * (self.hi[2] - self.lo[2])
        turn = np.zeros(3)  # angular velocity: it changes slowly, so paths bend smoothly
        points = [np.asarray(start, float)]
        position, heading = points[0].copy(), np.asarray(direction, float)
        for _ in range(n_steps):
            turn = 0.85 * turn + 0.15 * rng.normal(0.0, 0.35, 3)
            # Steer back towards the slab's middle plane, harder near its faces.
            offset = (position[2] - mid_z) / max(half_z - radius, 1e-6)
            turn[2] += -0.12 * offset - 0.4 * heading[2]
            heading = heading + turn * 0.5
            heading /= np.linalg.norm(heading)
            position = position + self.step * heading
            position[2] = np.clip(position[2], self.lo[2] + radius, self.hi[2] - radius)
            points.append(position.copy())
            margin = 2 * radius
            if (
                (position[:2] < self.lo[:2] - margin) | (position[:2] > self.hi[:2] + margin)
            ).any():
                return self._branch(points, radius), position, heading, False
        return self._branch(points, radius), position, heading, True

    def _branch(self, points, radius):
        # Blood absorbs about equally everywhere; a mild per-vessel spread keeps it real.
        amplitude = self.rng.uniform(0.85, 1.15)
        return _Branch(np.array(points), radius, amplitude)

    def _split(self, position, heading, radius, depth):
        """Two children whose radii satisfy Murray's law, turned to either side."""
        if depth >= self.max_depth:
            return []
        share = self.rng.uniform(0.2, 0.5)  # fraction of r^3 that goes to the side branch
        side = radius * share ** (1 / 3)
        main = radius * (1 - share) ** (1 / 3)
        children = []
        angle = self.rng.uniform(0.45, 1.0) * self.rng.choice([-1, 1])
        for r, turn in ((main, -0.35 * angle), (side, angle)):
            if r < self.min_radius:
                continue
            children.append((position, _turn_in_plane(heading, turn), r, depth + 1))
        return children


def _turn_in_plane(heading, angle):
    """``heading`` turned by ``angle`` radians about z (branches spread within the slab)."""
    c, s = np.cos(angle), np.sin(angle)
    x, y, z = heading
    turned = np.array([c * x - s * y, s * x + c * y, 0.3 * z])
    return turned / np.linalg.norm(turned)


def _draw_tube(data, origin, spacing, branch: _Branch) -> None:
    """Draw ``branch`` into ``data`` (max with what is there), segment by segment.

    The profile is flat inside the vessel and falls off with a smoothstep one voxel wide
    around the wall, so thin vessels keep a smooth, unaliased edge.
    """
    edge = float(spacing.mean())
    reach = branch.radius + edge
    shape = np.array(data.shape)
    a_all, b_all = branch.points[:-1], branch.points[1:]
    for a, b in zip(a_all, b_all, strict=True):
        lo = np.floor((np.minimum(a, b) - reach - origin) / spacing).astype(int)
        hi = np.ceil((np.maximum(a, b) + reach - origin) / spacing).astype(int) + 1
        lo = np.clip(lo, 0, shape)
        hi = np.clip(hi, 0, shape)
        if (hi <= lo).any():
            continue
        axes = [origin[d] + np.arange(lo[d], hi[d]) * spacing[d] for d in range(3)]
        gx, gy, gz = np.meshgrid(*axes, indexing="ij", sparse=True)
        distance = _segment_distance(gx, gy, gz, a, b)
        s = np.clip((reach - distance) / (2 * edge), 0.0, 1.0)
        value = (branch.amplitude * s * s * (3 - 2 * s)).astype(np.float32)
        box = tuple(slice(lo[d], hi[d]) for d in range(3))
        np.maximum(data[box], value, out=data[box])


def _segment_distance(gx, gy, gz, a, b):
    """Distance from grid points to the segment ``a``-``b``."""
    ab = b - a
    length2 = float(ab @ ab)
    px, py, pz = gx - a[0], gy - a[1], gz - a[2]
    if length2 == 0:
        return np.sqrt(px**2 + py**2 + pz**2)
    t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / length2, 0.0, 1.0)
    return np.sqrt((px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2)


def load_phantom(spec, **kwargs) -> Phantom:
    """A phantom by name or file.

    Parameters
    ----------
    spec : str or os.PathLike
        ``"vessels"`` (the built-in tree), a ``.ply`` cloud (``volume`` is None) or an
        HDF5 volume (``.h5``, ``.hdf5``, ``.hdf``; its cloud comes from
        :func:`volume_to_cloud` above 0.1 % of the peak).
    **kwargs
        Passed to :func:`vessels_phantom` for ``"vessels"``; unused otherwise.

    Returns
    -------
    Phantom
        The object as a volume (if it has one) and as a cloud.

    Raises
    ------
    InputError
        For any other name or suffix, a file that cannot be read, or an empty volume.
    """
    text = os.fspath(spec)
    if text == "vessels":
        return vessels_phantom(**kwargs)
    suffix = Path(text).suffix.lower()
    if suffix == ".ply":
        from ..io.ply import read_ply

        return Phantom(None, read_ply(text))
    if suffix in (".h5", ".hdf5", ".hdf"):
        from ..io.native import read_volume

        volume = read_volume(text)
        peak = float(np.abs(volume.data).max())
        cloud = volume_to_cloud(volume, threshold=CLOUD_THRESHOLD * peak)
        if len(cloud) == 0:
            raise InputError(text, "volume", "some voxels above zero", got="an empty volume")
        return Phantom(volume, cloud)
    raise InputError("PHANTOM", None, "'vessels', a .ply cloud or an .h5 volume", got=text)
