"""An exact simulator of hard-edged objects, written apart from :mod:`slingbag.kernels`.

It shares no code with the radiator the reconstruction fits, so its data test the engine
the way measurements do: the object is a voxel volume (sharp walls, not Gaussian balls),
and every voxel radiates as a uniform sphere of the same volume.

A uniform sphere of radius ``b`` and initial pressure ``P`` at distance ``R`` gives the
N-wave ``p(u) = P (R - u) / (2 R)`` for ``|u - R| < b``, with ``u = c t``.  Its integral up
to ``u`` is the parabola ``H(u) = P (b^2 - (u - R)^2) / (4 R)`` inside the shell and zero
outside (the N-wave integrates to zero), so the average of ``p`` over each sampling
interval is a difference of ``H`` at the interval's edges: each sample is the exact
interval average (a boxcar filter before sampling), with no supersampling error.
"""

from __future__ import annotations

import numpy as np

# Pairs of (sensor, voxel) handled at once: bounds the working memory to ~100 MB.
_PAIRS_PER_CHUNK = 2_000_000


def sphere_radius(spacing) -> float:
    """Radius of the sphere with the volume of one voxel."""
    return float(np.cbrt(3.0 * np.prod(np.asarray(spacing, np.float64)) / (4.0 * np.pi)))


def simulate_voxels(
    data: np.ndarray,
    origin,
    spacing,
    positions: np.ndarray,
    *,
    fs: float,
    n_samples: int,
    sound_speed: float,
    t0: float = 0.0,
) -> np.ndarray:
    """Pressure at point sensors from a voxel volume of initial pressure, averaged over
    each sampling interval.

    Parameters
    ----------
    data : ndarray, shape (nx, ny, nz)
        Initial pressure per voxel; voxel ``(i, j, k)`` is centred at
        ``origin + (i, j, k) * spacing``.
    origin, spacing : sequence of 3 floats
        Metres.
    positions : ndarray, shape (n_sensors, 3)
        Sensor positions in metres.
    fs, n_samples, sound_speed, t0
        Sample ``n`` is the average over ``[t0 + (n - 1/2)/fs, t0 + (n + 1/2)/fs]``.

    Returns
    -------
    ndarray, float64, shape (n_sensors, n_samples)
    """
    data = np.asarray(data)
    idx = np.argwhere(data != 0)
    values = data[tuple(idx.T)].astype(np.float64)
    centres = np.asarray(origin, np.float64) + idx * np.asarray(spacing, np.float64)
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    return simulate_spheres(
        centres,
        values,
        sphere_radius(spacing),
        positions,
        fs=fs,
        n_samples=n_samples,
        sound_speed=sound_speed,
        t0=t0,
    )


def simulate_spheres(
    centres: np.ndarray,
    pressures: np.ndarray,
    radius: float,
    positions: np.ndarray,
    *,
    fs: float,
    n_samples: int,
    sound_speed: float,
    t0: float = 0.0,
) -> np.ndarray:
    """Interval-averaged pressure from uniform spheres of one ``radius`` (see the module)."""
    n_sensors = len(positions)
    du = sound_speed / fs
    # Edge e of the sampling intervals sits at u = u_first + e * du (n_samples + 1 edges).
    u_first = sound_speed * (t0 - 0.5 / fs)
    n_edges = n_samples + 1
    span = int(np.ceil(2.0 * radius / du)) + 1  # edges inside one shell, at most
    acc = np.zeros(n_sensors * n_edges, np.float64)
    chunk = max(1, _PAIRS_PER_CHUNK // max(n_sensors, 1))
    steps = np.arange(span + 1)
    for start in range(0, len(centres), chunk):
        c = centres[start : start + chunk]
        p = pressures[start : start + chunk]
        r = np.linalg.norm(positions[:, None, :] - c[None, :, :], axis=2)  # (S, n)
        r = np.maximum(r, radius)  # a sensor inside a voxel: the formula's 1/R stays finite
        first = np.ceil((r - radius - u_first) / du).astype(np.int64)
        amp = p[None, :] / (4.0 * r)
        sensor = np.arange(n_sensors)[:, None]
        for m in steps:
            e = first + m
            u = u_first + e * du
            h = amp * np.clip(radius**2 - (u - r) ** 2, 0.0, None)
            ok = (e >= 0) & (e < n_edges) & (h > 0)
            if not ok.any():
                continue
            flat = (sensor * n_edges + e)[ok]
            acc += np.bincount(flat, weights=h[ok], minlength=acc.size)
    edges = acc.reshape(n_sensors, n_edges)
    # H at every edge of the record is known, so each interval's average is exact, also
    # for a pulse that starts before the record or ends after it.
    return np.diff(edges, axis=1) / du
