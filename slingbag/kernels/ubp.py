"""Taichi kernel of universal back-projection (UBP, Xu & Wang 2005).

This module only computes; it knows nothing about files, geometry inference or defaults
(see :mod:`slingbag.baselines.ubp` for those).  One thread per voxel loops over every
sensor, reads the back-projection term ``b(r_s, t)`` at the voxel's time of flight with
linear interpolation, and accumulates it with its solid-angle weight.

Discrete form
-------------
For voxel ``r`` and sensor ``s`` with position ``r_s``, weighted normal ``m_s = dS_s n_s``
(``n_s`` a unit normal pointing into the medium) and ``v = r - r_s``::

    w_s(r)  = max(m_s . v, 0) / |v|^3          (= dS_s cos(theta_s) / |v|^2)
    p0(r)   = sum_s w_s(r) b(r_s, |v| / c) / N(r)

The normaliser ``N(r)`` is either the per-voxel sum of weights ``sum_s w_s(r)`` (the usual
discrete form: it is the solid angle the array subtends from ``r``, so limited-view arrays
are not darkened away from their centre, and it makes any constant area irrelevant) or a
fixed ``Omega_0`` (2 pi for a plane, 4 pi for a closed surface) exactly as in the continuous
formula.  Sensors that see the voxel from behind (``cos(theta) < 0``) get zero weight: a
sensor facing away cannot have measured a wave coming from there.  A time of flight outside
the recorded window reads ``b = 0`` but keeps its weight (the sensor looked and saw nothing).

Everything is float32 and every argument is a ``ti.types.ndarray`` so NumPy arrays pass
directly and the same code compiles for cpu and cuda.
"""

# No ``from __future__ import annotations``: Taichi reads the kernel annotations as objects.
import numpy as np
import taichi as ti

from ..backend import ensure_init


@ti.kernel
def _ubp_kernel(
    b: ti.types.ndarray(dtype=ti.f32, ndim=2),
    pos: ti.types.ndarray(dtype=ti.f32, ndim=2),
    nrm: ti.types.ndarray(dtype=ti.f32, ndim=2),
    out: ti.types.ndarray(dtype=ti.f32, ndim=3),
    ox: ti.f32,
    oy: ti.f32,
    oz: ti.f32,
    dx: ti.f32,
    dy: ti.f32,
    dz: ti.f32,
    samples_per_metre: ti.f32,
    first_sample: ti.f32,
    omega0: ti.f32,
):
    n_sensors = b.shape[0]
    last = b.shape[1] - 1
    lastf = ti.cast(last, ti.f32)
    for i, j, k in ti.ndrange(out.shape[0], out.shape[1], out.shape[2]):
        x = ox + i * dx
        y = oy + j * dy
        z = oz + k * dz
        acc = 0.0
        wsum = 0.0
        for s in range(n_sensors):
            vx = x - pos[s, 0]
            vy = y - pos[s, 1]
            vz = z - pos[s, 2]
            d2 = vx * vx + vy * vy + vz * vz
            # One square root and one division per pair; the floor keeps a voxel sitting
            # exactly on a sensor finite.
            inv = 1.0 / ti.sqrt(ti.max(d2, 1e-30))
            # dS cos(theta) / |v|^2 = (m . v) / |v|^3; max() drops sensors facing away.
            w = ti.max(nrm[s, 0] * vx + nrm[s, 1] * vy + nrm[s, 2] * vz, 0.0) * inv * inv * inv
            # Fractional sample index of the time of flight |v| / c.  Clamp, interpolate and
            # mask instead of branching: the same instructions for every thread (GPU warps)
            # and no unpredictable branches on the CPU.
            u = d2 * inv * samples_per_metre - first_sample
            inside = u >= 0.0 and u <= lastf
            uc = ti.min(ti.max(u, 0.0), lastf)
            n0 = ti.min(ti.cast(uc, ti.i32), last - 1)  # uc >= 0: truncation is floor
            f = uc - n0
            b0 = b[s, n0]
            val = b0 + f * (b[s, n0 + 1] - b0)
            acc += ti.select(inside, w * val, 0.0)
            wsum += w
        norm = ti.select(omega0 > 0.0, omega0, wsum)
        out[i, j, k] = ti.select(norm > 0.0, acc / norm, 0.0)


def backprojection_term(signals: np.ndarray, fs: float, t0: float = 0.0) -> np.ndarray:
    """The UBP term ``b(t) = 2 p(t) - 2 t dp/dt`` for every sensor, float32.

    Parameters
    ----------
    signals : ndarray, shape (n_sensors, n_samples)
        Pressure ``p`` sampled at ``t_n = t0 + n / fs``.
    fs : float
        Sampling rate, Hz.
    t0 : float
        Time of sample 0 after the laser pulse, s.  ``t`` in the formula is the absolute
        time since the pulse, so ``t0`` matters.

    Returns
    -------
    ndarray, float32, shape (n_sensors, n_samples)

    Notes
    -----
    The derivative is the second-order central difference (one-sided at the ends), done in
    float64 on the host: it is ``O(S T)`` against the kernel's ``O(voxels S)``.
    """
    p = np.asarray(signals, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"signals must be 2-D (n_sensors, n_samples), got shape {p.shape}")
    if p.shape[1] < 2:
        dpdt = np.zeros_like(p)
    else:
        dpdt = np.gradient(p, axis=1, edge_order=2 if p.shape[1] > 2 else 1) * float(fs)
    t = float(t0) + np.arange(p.shape[1]) / float(fs)
    return (2.0 * p - 2.0 * t[None, :] * dpdt).astype(np.float32)


def _scaled_to_one(b: np.ndarray, nrm: np.ndarray):
    """``b`` scaled to a peak of 1 and the weighted normals to a mean length of 1, with
    values far below float32 precision flushed to zero, and the two scales.

    The kernel then never meets subnormal floats (the tails of exp() in simulated data
    produce them, and they made the kernel 1.5-2x slower on x86), whatever the units of
    the signals and areas.  The caller undoes both scales on the result.
    """
    b_scale = float(np.abs(b).max())
    if not np.isfinite(b_scale):
        raise ValueError("the back-projection term is not finite (NaN or inf in the signals)")
    b_scale = b_scale if b_scale > 0 else 1.0
    b = b / np.float32(b_scale)
    b[np.abs(b) < 1e-20] = 0.0
    n_scale = float(np.linalg.norm(nrm, axis=1).mean())
    n_scale = n_scale if np.isfinite(n_scale) and n_scale > 0 else 1.0
    nrm = nrm / np.float32(n_scale)
    return b, b_scale, nrm, n_scale


def backproject(
    b: np.ndarray,
    positions: np.ndarray,
    weighted_normals: np.ndarray,
    origin,
    spacing,
    shape,
    *,
    fs: float,
    sound_speed: float,
    t0: float = 0.0,
    omega0: float | None = None,
) -> np.ndarray:
    """Run the UBP kernel on a regular grid.

    Parameters
    ----------
    b : ndarray, shape (n_sensors, n_samples)
        Back-projection term (see :func:`backprojection_term`), sample ``n`` at
        ``t0 + n / fs``.
    positions : ndarray, shape (n_sensors, 3)
        Sensor positions, metres.
    weighted_normals : ndarray, shape (n_sensors, 3)
        Unit normals (pointing into the medium) times the sensor areas ``dS``.
    origin, spacing : 3 floats
        Voxel ``[i, j, k]`` sits at ``origin + (i, j, k) * spacing``.
    shape : 3 ints
    fs, sound_speed, t0 : float
        Sampling rate (Hz), speed of sound (m/s), time of sample 0 (s).
    omega0 : float or None
        ``None`` (default): normalise each voxel by its sum of weights.  A positive number:
        divide by this fixed ``Omega_0`` instead (the continuous formula; then the areas
        must be physical).

    Returns
    -------
    ndarray, float32, shape ``shape``
    """
    ensure_init()
    b = np.ascontiguousarray(b, dtype=np.float32)
    pos = np.ascontiguousarray(positions, dtype=np.float32).reshape(-1, 3)
    nrm = np.ascontiguousarray(weighted_normals, dtype=np.float32).reshape(-1, 3)
    if b.ndim != 2 or b.shape[0] != pos.shape[0] or nrm.shape != pos.shape:
        raise ValueError(
            f"inconsistent shapes: b {b.shape}, positions {pos.shape}, normals {nrm.shape}"
        )
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive ints, got {shape}")
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    if b.shape[1] < 2:
        # The interpolation reads two samples; a single sample is a constant signal.
        b = np.repeat(b, 2, axis=1)
    b, b_scale, nrm, n_scale = _scaled_to_one(b, nrm)
    out = np.zeros(shape, dtype=np.float32)
    _ubp_kernel(
        b,
        pos,
        nrm,
        out,
        float(origin[0]),
        float(origin[1]),
        float(origin[2]),
        float(spacing[0]),
        float(spacing[1]),
        float(spacing[2]),
        float(fs) / float(sound_speed),
        float(t0) * float(fs),
        float(omega0) / n_scale if omega0 else 0.0,
    )
    out *= np.float32(b_scale)
    return out
