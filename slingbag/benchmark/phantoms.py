"""Hard-edged test objects for the independent benchmark.

Each phantom is drawn twice: on a fine grid that the simulator radiates (sharp walls, one
value inside, zero outside) and, by averaging blocks of that grid, on the truth grid the
metrics use (partial-volume values at the walls, as a voxel of a real object has).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.volume import Volume, grid_for_region
from ..phantoms import grow_tree

# Fine-grid voxels per truth voxel along each axis.
SUPERSAMPLE = 2


@dataclass
class HardPhantom:
    """A phantom's fine (simulated) and truth (scored) voxel volumes."""

    name: str
    fine: Volume
    truth: Volume


def _grid(lo, hi, truth_spacing):
    origin, spacing, shape = grid_for_region(lo, hi, truth_spacing)
    fine_spacing = spacing / SUPERSAMPLE
    # Fine voxel centres inside each truth voxel, so that block means land on its centre.
    fine_origin = origin - spacing / 2 + fine_spacing / 2
    fine_shape = tuple(int(n) * SUPERSAMPLE for n in shape)
    return (origin, spacing, shape), (fine_origin, fine_spacing, fine_shape)


def _block_mean(data: np.ndarray) -> np.ndarray:
    k = SUPERSAMPLE
    nx, ny, nz = (n // k for n in data.shape)
    return data.reshape(nx, k, ny, k, nz, k).mean(axis=(1, 3, 5)).astype(np.float32)


def _finish(name, fine_data, truth_grid, fine_grid) -> HardPhantom:
    origin, spacing, _ = truth_grid
    fine_origin, fine_spacing, _ = fine_grid
    return HardPhantom(
        name,
        Volume(fine_data, fine_origin, fine_spacing),
        Volume(_block_mean(fine_data), origin, spacing),
    )


def _axes(origin, spacing, shape, lo_idx, hi_idx):
    return [origin[d] + np.arange(lo_idx[d], hi_idx[d]) * spacing[d] for d in range(3)]


def _draw_segment(data, origin, spacing, a, b, radius, value) -> None:
    """Set voxels whose centre is within ``radius`` of segment a-b to ``value`` (max)."""
    shape = np.array(data.shape)
    lo = np.clip(np.floor((np.minimum(a, b) - radius - origin) / spacing).astype(int), 0, shape)
    hi = np.clip(np.ceil((np.maximum(a, b) + radius - origin) / spacing).astype(int) + 1, 0, shape)
    if (hi <= lo).any():
        return
    gx, gy, gz = np.meshgrid(*_axes(origin, spacing, shape, lo, hi), indexing="ij", sparse=True)
    ab = b - a
    length2 = float(ab @ ab)
    px, py, pz = gx - a[0], gy - a[1], gz - a[2]
    t = 0.0 if length2 == 0 else np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / length2, 0, 1)
    d2 = (px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2
    box = tuple(slice(lo[d], hi[d]) for d in range(3))
    inside = np.where(d2 <= radius * radius, np.float32(value), np.float32(0))
    np.maximum(data[box], inside, out=data[box])


def _draw_sphere(data, origin, spacing, centre, radius, value) -> None:
    _draw_segment(data, origin, spacing, np.asarray(centre), np.asarray(centre), radius, value)


def vessel_tree(
    seed: int = 0,
    region=(-10e-3, 10e-3, -10e-3, 10e-3, 12e-3, 18e-3),
    *,
    truth_spacing: float = 0.1e-3,
    trunk_radius=(0.4e-3, 0.5e-3),
    min_radius: float = 0.15e-3,
    spheres=(),
    name: str | None = None,
) -> HardPhantom:
    """A random vessel tree of uniform cylinders (each vessel one value, 0.85-1.15), with
    optional uniform spheres ``(x, y, z, diameter)`` at value 1 (tumour-like)."""
    values = np.asarray(region, np.float64)
    lo, hi = values[0::2], values[1::2]
    truth_grid, fine_grid = _grid(lo, hi, truth_spacing)
    fine_origin, fine_spacing, fine_shape = fine_grid
    data = np.zeros(fine_shape, np.float32)
    branches = grow_tree(lo, hi, seed, trunk_radius=trunk_radius, min_radius=min_radius)
    for br in branches:
        for a, b in zip(br.points[:-1], br.points[1:], strict=True):
            _draw_segment(data, fine_origin, fine_spacing, a, b, br.radius, br.amplitude)
    for x, y, z, diameter in spheres:
        _draw_sphere(data, fine_origin, fine_spacing, (x, y, z), diameter / 2, 1.0)
    label = name or f"vessels-s{seed}"
    return _finish(label, data, truth_grid, fine_grid)


def sphere_set(
    spheres,
    region,
    *,
    truth_spacing: float = 0.1e-3,
    name: str = "spheres",
) -> HardPhantom:
    """Uniform spheres ``(x, y, z, diameter)`` at value 1 alone in ``region``."""
    values = np.asarray(region, np.float64)
    lo, hi = values[0::2], values[1::2]
    truth_grid, fine_grid = _grid(lo, hi, truth_spacing)
    fine_origin, fine_spacing, fine_shape = fine_grid
    data = np.zeros(fine_shape, np.float32)
    for x, y, z, diameter in spheres:
        _draw_sphere(data, fine_origin, fine_spacing, (x, y, z), diameter / 2, 1.0)
    return _finish(name, data, truth_grid, fine_grid)


def cloud_phantom(cloud, *, spacing: float = 0.1e-3, name: str = "cloud") -> HardPhantom:
    """A cloud of Gaussian balls (e.g. the rat-liver PLY) drawn on its own voxel grid by
    a plain NumPy splat; the simulator radiates that grid (fine = truth here)."""
    xyz = np.asarray(cloud.xyz, np.float64)
    sig = np.asarray(cloud.sigma, np.float64)
    p0 = np.asarray(cloud.p0, np.float64)
    lo = (xyz - 3 * sig[:, None]).min(axis=0)
    hi = (xyz + 3 * sig[:, None]).max(axis=0)
    origin, spacing3, shape = grid_for_region(lo, hi, spacing)
    data = np.zeros(shape, np.float64)
    shape_a = np.array(shape)
    for x, s, p in zip(xyz, sig, p0, strict=True):
        a = np.clip(np.floor((x - 3 * s - origin) / spacing3).astype(int), 0, shape_a)
        b = np.clip(np.ceil((x + 3 * s - origin) / spacing3).astype(int) + 1, 0, shape_a)
        gx, gy, gz = np.meshgrid(*_axes(origin, spacing3, shape, a, b), indexing="ij", sparse=True)
        r2 = (gx - x[0]) ** 2 + (gy - x[1]) ** 2 + (gz - x[2]) ** 2
        data[a[0] : b[0], a[1] : b[1], a[2] : b[2]] += p * np.exp(-r2 / (2 * s * s))
    vol = Volume(data.astype(np.float32), origin, spacing3)
    return HardPhantom(name, vol, vol)
