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

What real systems add (SPEC section 9):

* **faces**: a disc or rectangle records the pressure averaged over its face, exactly,
  near field included (:mod:`slingbag.benchmark.exact_faces`);
* **a tissue layer**: ``layer=(depth, tissue_speed)``, water at ``sound_speed`` from the
  sensors to a plane ``depth`` in front of them (along each sensor's normal), tissue
  beyond.  Each sphere's wave travels the refracted ray of least time (Fermat), its
  N-wave keeps its shape (``b`` over the source medium's speed, in time) and its
  amplitude falls as ``1 / L`` with ``L`` the ray tube's spreading distance; the two
  media are taken as impedance-matched (no transmission loss);
* **attenuation**: a power law ``a0 f^y`` (dB/cm/MHz^y) with its minimum phase
  (:func:`slingbag.benchmark.conditions.attenuation_exponent`), applied by path: the
  spheres are grouped per sensor into distance bins of ``ATTENUATION_BIN`` and each bin's
  signal is filtered for its mean path.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .conditions import attenuate

# Pairs of (sensor, voxel) handled at once: bounds the working memory to ~100 MB.
_PAIRS_PER_CHUNK = 2_000_000
#: Width of the distance bins that share one attenuation filter, metres.
ATTENUATION_BIN = 1e-3
#: Gauss-Legendre points per piece of a face's window (exact_faces): on kink intervals
#: with smooth ends, and on those with a square-root edge.
FACE_QUADRATURE = (3, 4)
# Spheres per launch of the face kernel (keeps sensors x spheres inside int32).
_FACE_CHUNK = 200_000
# Newton steps of the Fermat crossing point (quadratic convergence from the straight ray),
# and the step, metres, below which it has converged.
_FERMAT_STEPS = 20
_FERMAT_TOL = 1e-13


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
    **options,
) -> np.ndarray:
    """Pressure at the sensors from a voxel volume of initial pressure, averaged over
    each sampling interval (and over each sensor's face).

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
    **options
        What real systems add: ``element``, ``normals``, ``layer``, ``attenuation``
        (see :func:`simulate_spheres`).

    Returns
    -------
    ndarray, float64, shape (n_sensors, n_samples)
    """
    data = np.asarray(data)
    idx = np.argwhere(data != 0)
    values = data[tuple(idx.T)].astype(np.float64)
    centres = np.asarray(origin, np.float64) + idx * np.asarray(spacing, np.float64)
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    grid = dict(fs=fs, n_samples=n_samples, sound_speed=sound_speed, t0=t0)
    return simulate_spheres(centres, values, sphere_radius(spacing), positions, **grid, **options)


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
    element=None,
    normals: np.ndarray | None = None,
    layer: tuple | None = None,
    attenuation: float | None = None,
    attenuation_power: float = 1.0,
    reference_frequency: float = 5e6,
) -> np.ndarray:
    """Interval-averaged pressure from uniform spheres of one ``radius`` (see the module).

    Parameters
    ----------
    centres, pressures, radius
        The spheres: ``(n, 3)`` centres and ``(n,)`` initial pressures; metres.
    positions : ndarray, shape (n_sensors, 3)
        Sensor positions (face centres) in metres.
    fs, n_samples, sound_speed, t0
        Sample ``n`` is the average over ``[t0 + (n - 1/2)/fs, t0 + (n + 1/2)/fs]``;
        ``sound_speed`` is the medium's (the water's, with a ``layer``).
    element : Element, optional
        The sensors' faces (:class:`slingbag.core.element.Element`); None or a point
        element for point sensors.  Faces need ``normals`` and take neither ``layer`` nor
        ``attenuation``.
    normals : ndarray, shape (n_sensors, 3), optional
        Unit normals into the medium: they orient the faces and the layer.
    layer : (float, float), optional
        ``(depth, tissue_speed)``: tissue beyond a plane ``depth`` metres in front of
        every sensor.
    attenuation : float, optional
        ``a0`` in dB/cm/MHz^``attenuation_power``; its phase velocity at
        ``reference_frequency`` Hz is ``sound_speed``.

    Returns
    -------
    ndarray, float64, shape (n_sensors, n_samples)
    """
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    grid = dict(fs=fs, n_samples=n_samples, sound_speed=sound_speed, t0=t0)
    if element is not None and not element.is_point:
        if layer is not None or attenuation:
            raise InputError("simulate_spheres", "element", "point sensors with layer/attenuation")
        return _face_average(centres, pressures, radius, positions, element, normals, **grid)
    if layer is not None and attenuation:
        raise InputError("simulate_spheres", "layer", "a layer or attenuation, not both")
    if layer is not None and normals is None:
        raise InputError("simulate_spheres", "normals", "sensor normals to place the layer")
    paths = _layered_paths(layer, normals, sound_speed) if layer is not None else _straight
    binned = attenuation is not None and attenuation > 0
    edges, mean_path = _point_edges(centres, pressures, radius, positions, paths, binned, **grid)
    signals = np.diff(edges, axis=-1) / (sound_speed / fs)  # (S, bins, n_samples)
    if binned:
        signals = attenuate(
            signals,
            mean_path,
            fs,
            attenuation,
            power=attenuation_power,
            reference=reference_frequency,
        )
    return signals.sum(axis=1)


def _straight(positions: np.ndarray, centres: np.ndarray, radius: float):
    """Homogeneous medium: the arrival ``R`` (in ``u``), the amplitude factor ``1/(4R)``
    of ``H``, the N-wave's half-width ``b`` and the path, per (sensor, sphere)."""
    r = np.linalg.norm(positions[:, None, :] - centres[None, :, :], axis=2)  # (S, n)
    r = np.maximum(r, radius)  # a sensor inside a voxel: the formula's 1/R stays finite
    return r, 0.25 / r, np.full_like(r, radius), r


def fermat_crossing(depth, height, lateral, c1: float, c2: float) -> np.ndarray:
    """Where the least-time ray crosses the interface: its lateral distance from the
    sensor, for a source ``height`` beyond the interface at ``depth`` and ``lateral`` off
    the sensor's axis (speed ``c1`` before the interface, ``c2`` beyond; Newton on the
    convex travel time from the straight ray's crossing)."""
    depth, height, lateral = np.broadcast_arrays(depth, height, lateral)
    x = lateral * depth / (depth + height)
    for _ in range(_FERMAT_STEPS):
        r1 = np.hypot(depth, x)
        r2 = np.hypot(height, lateral - x)
        slope = x / (c1 * r1) - (lateral - x) / (c2 * r2)
        curve = depth**2 / (c1 * r1**3) + height**2 / (c2 * r2**3)
        step = np.clip(x - slope / curve, 0.0, lateral) - x
        x = x + step
        if np.abs(step).max() <= _FERMAT_TOL:
            break
    return x


def layered_path(depth, height, lateral, c1: float, c2: float):
    """The refracted ray through a planar interface: its travel time, the ray tube's
    spreading distance ``L`` (amplitude ``1/L``; ``L = R`` when ``c1 = c2``) and its length.

    With take-off angle ``theta2`` in the source's medium and ``theta1`` at the sensor,
    ``L^2 = cos(theta1) (X / sin(theta2)) dX/dtheta2`` for the ray's lateral reach
    ``X = h tan(theta2) + D tan(theta1)`` (``D`` the depth of the interface, ``h`` the
    source's height beyond it).
    """
    x = fermat_crossing(depth, height, lateral, c1, c2)
    r1 = np.hypot(depth, x)
    r2 = np.hypot(height, lateral - x)
    cos1, cos2 = depth / r1, height / r2
    ratio = c1 / c2
    reach = height / cos2 + depth * ratio / cos1  # X / sin(theta2)
    slope = height / cos2**2 + depth * ratio * cos2 / cos1**3  # dX / dtheta2
    return r1 / c1 + r2 / c2, np.sqrt(cos1 * reach * slope), r1 + r2


def _layered_paths(layer, normals, c1: float):
    """:func:`_straight` for water (``c1``) up to a plane ``depth`` in front of each
    sensor and tissue beyond (``layer = (depth, c2)``), in ``u = c1 t``."""
    depth, c2 = float(layer[0]), float(layer[1])
    normals = np.asarray(normals, np.float64).reshape(-1, 3)
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)

    def paths(positions, centres, radius):
        d = centres[None, :, :] - positions[:, None, :]
        z = np.einsum("snk,sk->sn", d, normals)
        r = np.maximum(np.linalg.norm(d, axis=2), radius)
        lateral = np.sqrt(np.maximum(r**2 - z**2, 0.0))
        beyond = z > depth
        height = np.where(beyond, z - depth, 1.0)
        time, spread, length = layered_path(depth, height, lateral, c1, c2)
        time = np.where(beyond, time, r / c1)
        spread = np.where(beyond, spread, r)
        length = np.where(beyond, length, r)
        c_src = np.where(beyond, c2, c1)
        # H = P (c_src / c1) (b_u^2 - (u - c1 T)^2) / (4 L), b_u = b c1 / c_src.
        return c1 * time, c_src / (4.0 * c1 * spread), radius * c1 / c_src, length

    return paths


def _path_bins(centres, positions, binned: bool):
    """The first distance and the number of attenuation bins (one bin unless ``binned``)."""
    if not binned:
        return 0.0, 1
    lo, hi = np.inf, 0.0
    chunk = max(1, _PAIRS_PER_CHUNK // max(len(positions), 1))
    for start in range(0, len(centres), chunk):
        c = centres[start : start + chunk]
        r = np.linalg.norm(positions[:, None, :] - c[None, :, :], axis=2)
        lo, hi = min(lo, float(r.min())), max(hi, float(r.max()))
    return lo, int((hi - lo) // ATTENUATION_BIN) + 1


def _point_edges(centres, pressures, radius, positions, paths, binned, **grid):
    """``H`` summed at every sampling edge, ``(n_sensors, n_bins, n_samples + 1)``, and
    each (sensor, bin)'s pressure-weighted mean path (None unless ``binned``)."""
    n_sensors = len(positions)
    du, u_first, n_edges = _edges(**grid)
    first_path, n_bins = _path_bins(centres, positions, binned)
    acc = np.zeros(n_sensors * n_bins * n_edges, np.float64)
    weight = np.zeros((2, n_sensors * n_bins))
    chunk = max(1, _PAIRS_PER_CHUNK // max(n_sensors, 1))
    sensor = np.arange(n_sensors)[:, None]
    for start in range(0, len(centres), chunk):
        r, fac, half, path = paths(positions, centres[start : start + chunk], radius)
        p = pressures[start : start + chunk]
        amp = p[None, :] * fac
        row = sensor * n_bins + np.clip((path - first_path) // ATTENUATION_BIN, 0, n_bins - 1)
        row = row.astype(np.int64)
        if binned:
            w = np.broadcast_to(np.abs(p), r.shape)
            weight[0] += np.bincount(row.ravel(), (w * path).ravel(), weight.shape[1])
            weight[1] += np.bincount(row.ravel(), w.ravel(), weight.shape[1])
        first = np.ceil((r - half - u_first) / du).astype(np.int64)
        for m in range(int(np.ceil(2.0 * float(np.max(half)) / du)) + 2):
            e = first + m
            u = u_first + e * du
            h = np.clip(half**2 - (u - r) ** 2, 0.0, None)
            ok = (e >= 0) & (e < n_edges) & (h > 0)
            if not ok.any():
                continue
            flat = (row * n_edges + e)[ok]
            acc += np.bincount(flat, weights=(amp * h)[ok], minlength=acc.size)
    mean_path = weight[0] / np.maximum(weight[1], 1e-300) if binned else None
    shape = (n_sensors, n_bins)
    return acc.reshape(*shape, n_edges), None if mean_path is None else mean_path.reshape(shape)


def _edges(*, fs, n_samples, sound_speed, t0):
    """``du``, the first sampling edge ``u_first`` and the number of edges: edge ``e`` of
    the sampling intervals sits at ``u = u_first + e du`` (``n_samples + 1`` edges)."""
    return sound_speed / fs, sound_speed * (t0 - 0.5 / fs), n_samples + 1


def face_table(element, normals, positions) -> np.ndarray:
    """Per-sensor rows for :func:`slingbag.benchmark.exact_faces.face_edges`, float64:
    position, unit normal, width axis e1, height axis e2 = normal x e1, half-width,
    half-height (a disc: radius, radius)."""
    if normals is None:
        raise InputError("simulate_spheres", "normals", f"sensor normals for {element.shape} faces")
    n = np.asarray(normals, np.float64).reshape(-1, 3)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    e1 = element.width_axes(n)
    e2 = np.cross(n, e1)
    half = element.half_extents()
    if half.shape != (len(positions), 2):
        raise InputError("simulate_spheres", "element", f"one size per sensor ({len(positions)})")
    return np.ascontiguousarray(np.hstack([positions, n, e1, e2, half]), np.float64)


def face_rule(n_plain: int, n_edge: int) -> np.ndarray:
    """Gauss-Legendre on ``[0, 1]`` for the face kernel, ``(2, n_plain + n_edge)``: nodes,
    then weights; ``n_plain`` points for kink intervals with smooth ends, then
    ``n_edge`` for those with a square-root edge."""
    rules = [np.polynomial.legendre.leggauss(n) for n in (n_plain, n_edge)]
    return np.hstack([np.array([0.5 * (t + 1.0), 0.5 * w]) for t, w in rules])


def _face_average(centres, pressures, radius, positions, element, normals, **grid):
    """The interval-averaged pressure averaged over every sensor's face (exact_faces)."""
    from ..backend import ensure_init

    ensure_init()
    from . import exact_faces

    table = face_table(element, normals, positions)
    half = table[:, 12:14]
    disc = element.shape == "disc"
    area = np.pi * half[:, 0] ** 2 if disc else 4.0 * half[:, 0] * half[:, 1]
    rule = face_rule(*FACE_QUADRATURE)
    du, u_first, n_edges = _edges(**grid)
    out = np.zeros((len(positions), n_edges), np.float64)
    centres = np.asarray(centres, np.float64).reshape(-1, 3)
    pressures = np.asarray(pressures, np.float64).reshape(-1)
    chunk = max(1, min(_FACE_CHUNK, (2**31 - 1) // max(len(positions), 1)))
    shape = exact_faces.DISC if disc else exact_faces.RECT
    for start in range(0, len(centres), chunk):
        exact_faces.face_edges(
            np.ascontiguousarray(centres[start : start + chunk]),
            np.ascontiguousarray(pressures[start : start + chunk]),
            table,
            rule,
            out,
            float(radius),
            du,
            u_first,
            shape,
            FACE_QUADRATURE[0],
        )
    return np.diff(out, axis=1) / (4.0 * area[:, None] * du)
