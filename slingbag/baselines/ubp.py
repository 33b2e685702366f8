"""Universal back-projection (UBP), the classical baseline.

:func:`ubp` reconstructs an initial-pressure volume from one :class:`Acquisition` on a given
grid; :func:`default_grid` picks a grid when the user gives none; :func:`infer_geometry`
works out sensor normals, areas and whether the array is closed when the file does not say.
The heavy lifting is the Taichi kernel in :mod:`slingbag.kernels.ubp`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..core.acquisition import Acquisition
from ..core.arrays import fit_sphere
from ..core.geometry import fit_plane
from ..core.volume import Volume, grid_for_region
from ..errors import InputError

log = logging.getLogger("slingbag")

#: Relative tolerances of the geometry tests (fraction of the array's size).
PLANE_TOL = 1e-3
SPHERE_TOL = 1e-2
#: A spherical array counts as closed (Omega_0 = 4 pi) when it covers more than this
#: fraction of its sphere: "more than a hemisphere", with a margin for sampling noise.
CLOSED_FRACTION = 0.55
#: Default grids are capped at about this many voxels.
DEFAULT_MAX_VOXELS = 1_000_000


@dataclass
class ArrayGeometry:
    """What :func:`infer_geometry` found out about a sensor array.

    Attributes
    ----------
    kind : {"planar", "spherical", "other"}
    normals : ndarray, shape (n_sensors, 3)
        Unit normals pointing into the imaged medium.
    areas : ndarray, shape (n_sensors,)
        Sensor areas, m^2 (estimated when the file has none).
    closed : bool
        Whether the surface encloses the region (``Omega_0 = 4 pi``) or not (``2 pi``).
    centre : ndarray, shape (3,)
        Centroid (planar, other) or fitted sphere centre (spherical).
    radius : float
        Fitted sphere radius (spherical), else 0.
    coverage : float
        Estimated fraction of the sphere the sensors cover (spherical), else 0.
    plane_normal : ndarray or None
        Unit normal of the fitted plane (planar), oriented like ``normals``.
    """

    kind: str
    normals: np.ndarray
    areas: np.ndarray
    closed: bool
    centre: np.ndarray
    radius: float = 0.0
    coverage: float = 0.0
    plane_normal: np.ndarray | None = None

    @property
    def omega0(self) -> float:
        return 4.0 * np.pi if self.closed else 2.0 * np.pi


def _nn_spacing(points2d: np.ndarray) -> float:
    """Median distance to the nearest neighbour (the pitch of a regular grid)."""
    from scipy.spatial import cKDTree

    if len(points2d) < 2:
        return 0.0
    d, _ = cKDTree(points2d).query(points2d, k=2)
    return float(np.median(d[:, 1]))


def infer_geometry(
    positions: np.ndarray,
    grid_centre=None,
    *,
    normals: np.ndarray | None = None,
    areas: np.ndarray | None = None,
) -> ArrayGeometry:
    """Work out normals, areas and closedness of a sensor array from its positions.

    Parameters
    ----------
    positions : ndarray, shape (n_sensors, 3)
    grid_centre : 3 floats, optional
        Centre of the region to image.  Planar (and irregular) arrays face it; without it a
        planar array faces the side its normal's largest component points to (+z for the
        usual arrays at z = 0).
    normals, areas : ndarray, optional
        Known values; they are kept (normals are only normalised to unit length).

    Returns
    -------
    ArrayGeometry

    Notes
    -----
    - Coplanar (rms distance to the best plane below ``PLANE_TOL`` of the array size):
      planar, ``Omega_0 = 2 pi``, normal = the plane normal pointing at ``grid_centre``.
    - On a sphere (rms radial residual below ``SPHERE_TOL`` of the radius): normals point to
      the centre.  The covered fraction of the sphere is estimated as ``1 - |mean(u)|``
      (``u`` the unit vectors from the centre to the sensors), which is exact for a
      uniformly sampled spherical cap; above ``CLOSED_FRACTION`` the array is closed
      (``4 pi``), else partial (``2 pi``).
    - Anything else: each sensor faces ``grid_centre`` (or the centroid), ``2 pi``, with a
      warning.
    Default areas are the covered area divided equally (grid pitch squared for planar
    arrays); with the default per-voxel normalisation of :func:`ubp` any constant works.
    """
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(pos)
    if n == 0:
        raise InputError(None, "sensors/positions", "at least one sensor", "0")
    plane = fit_plane(pos)
    centroid = plane.centroid
    target = None if grid_centre is None else np.asarray(grid_centre, dtype=np.float64)
    geom = None
    if n < 3 or plane.rms <= PLANE_TOL * max(plane.size, 1e-12):
        geom = _planar_geometry(pos, plane, target)
    elif n >= 4:
        geom = _spherical_geometry(pos)
    if geom is None:
        geom = _facing_geometry(pos, target if target is not None else centroid, centroid)
        if normals is None:
            log.warning(
                "ubp: the sensors are neither coplanar nor on a sphere; each is assumed to "
                "face the centre of the region, Omega_0 = 2 pi"
            )
    if normals is not None:
        geom.normals = _unit_normals(normals, pos)
    if areas is not None:
        ar = np.asarray(areas, dtype=np.float64).reshape(-1)
        if ar.shape != (n,) or np.any(ar < 0) or not np.all(np.isfinite(ar)):
            raise InputError(None, "sensors/areas", f"{n} non-negative finite values")
        geom.areas = ar
    return geom


def _planar_geometry(pos: np.ndarray, plane, target) -> ArrayGeometry:
    """A coplanar array: every normal is the plane's, facing ``target`` (or the side its
    largest component points to); the default area is the grid pitch squared."""
    n = len(pos)
    centroid, pnormal = plane.centroid, plane.normal
    side = pnormal @ (target - centroid) if target is not None else 0.0
    if abs(side) <= 1e-12:
        side = pnormal[np.argmax(np.abs(pnormal))]
    plane_normal = pnormal if side >= 0 else -pnormal
    # Project onto the plane to measure the pitch.
    e1 = np.cross(plane_normal, [1.0, 0.0, 0.0])
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.cross(plane_normal, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(plane_normal, e1)
    pitch = _nn_spacing(np.column_stack([(pos - centroid) @ e1, (pos - centroid) @ e2]))
    est_area = pitch**2 if pitch > 0 else 1.0
    return ArrayGeometry(
        kind="planar",
        normals=np.tile(plane_normal, (n, 1)),
        areas=np.full(n, float(est_area)),
        closed=False,
        centre=np.asarray(centroid, dtype=np.float64),
        plane_normal=plane_normal,
    )


def _spherical_geometry(pos: np.ndarray) -> ArrayGeometry | None:
    """Sensors on a sphere face its centre; closed when they cover more than
    ``CLOSED_FRACTION`` of it.  None when the sensors are not on a sphere."""
    n = len(pos)
    c, r, res = fit_sphere(pos)
    if c is None or not res <= SPHERE_TOL * r:
        return None
    u = (pos - c) / np.linalg.norm(pos - c, axis=1, keepdims=True)
    coverage = float(np.clip(1.0 - np.linalg.norm(u.mean(axis=0)), 0.0, 1.0))
    est_area = 4.0 * np.pi * r**2 * max(coverage, 1.0 / n) / n
    return ArrayGeometry(
        kind="spherical",
        normals=-u,
        areas=np.full(n, float(est_area)),
        closed=coverage > CLOSED_FRACTION,
        centre=np.asarray(c, dtype=np.float64),
        radius=float(r),
        coverage=coverage,
    )


def _facing_geometry(pos: np.ndarray, aim: np.ndarray, centroid: np.ndarray) -> ArrayGeometry:
    """Any other array: each sensor faces ``aim``; open, unit areas."""
    n = len(pos)
    v = aim - pos
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return ArrayGeometry(
        kind="other",
        normals=np.where(norm > 0, v / np.maximum(norm, 1e-300), [0.0, 0.0, 1.0]),
        areas=np.full(n, 1.0),
        closed=False,
        centre=np.asarray(centroid, dtype=np.float64),
    )


def _unit_normals(normals, pos: np.ndarray) -> np.ndarray:
    """Given normals, checked (one non-zero finite vector per sensor) and scaled to unit
    length."""
    n = len(pos)
    nrm = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    if nrm.shape != pos.shape:
        raise InputError(None, "sensors/normals", f"shape ({n}, 3)", nrm.shape)
    length = np.linalg.norm(nrm, axis=1, keepdims=True)
    if np.any(length <= 0) or not np.all(np.isfinite(length)):
        raise InputError(None, "sensors/normals", "non-zero finite vectors")
    return nrm / length


def ubp(
    acquisition: Acquisition,
    origin,
    spacing,
    shape,
    *,
    normals: np.ndarray | None = None,
    closed: bool | None = None,
    areas: np.ndarray | None = None,
    normalize: str = "weights",
) -> Volume:
    """Universal back-projection of one acquisition onto a regular grid.

    Parameters
    ----------
    acquisition : Acquisition
        Signals ``(S, T)`` sampled at ``t0 + n / fs``, sensor positions in metres.
    origin, spacing : 3 floats (spacing may be one float)
        Voxel ``[i, j, k]`` sits at ``origin + (i, j, k) * spacing``.
    shape : 3 ints
        Number of voxels along x, y and z.
    normals : ndarray (S, 3), optional
        Unit sensor normals pointing into the medium.  Default: the acquisition's, else
        inferred by :func:`infer_geometry` (planar arrays face the grid centre, spherical
        arrays their centre).
    closed : bool, optional
        Closed surface (``Omega_0 = 4 pi``) or not (``2 pi``).  Default: inferred from the
        geometry.  Only matters with ``normalize="omega0"``.
    areas : ndarray (S,), optional
        Sensor areas.  Default: the acquisition's, else equal shares of the covered area.
    normalize : {"weights", "omega0"}
        ``"weights"`` (default) divides each voxel by its own sum of solid-angle weights,
        the usual discrete UBP: with full coverage that sum is ``Omega_0``, with limited
        view it is the solid angle actually seen, so the image is not dimmed towards the
        edges and the scale matches ``p0``.  ``"omega0"`` divides by the fixed ``Omega_0``
        of the continuous formula (then areas must be physical).

    Returns
    -------
    Volume
        The float32 estimate of the initial pressure, in the units of the signals.
    """
    acq = acquisition
    _check_inputs(acq, normalize)
    origin, spacing, shape = _checked_grid(origin, spacing, shape)
    grid_centre = origin + (np.asarray(shape) - 1) / 2.0 * spacing
    geom = infer_geometry(
        acq.positions,
        grid_centre,
        normals=normals if normals is not None else acq.normals,
        areas=areas if areas is not None else acq.areas,
    )
    if closed is None:
        closed = geom.closed
    omega0 = (4.0 if closed else 2.0) * np.pi
    log.debug(
        "ubp: %s array of %d sensors, %s (Omega_0 = %s pi), normalised by %s",
        geom.kind,
        acq.n_sensors,
        "closed" if closed else "open",
        4 if closed else 2,
        "the per-voxel sum of weights" if normalize == "weights" else "Omega_0",
    )
    # Taichi is imported on first use only, so `import slingbag` stays light.
    from ..kernels.ubp import backproject, backprojection_term

    b = backprojection_term(acq.signals, acq.fs, acq.t0)
    data = backproject(
        b,
        acq.positions,
        geom.normals * geom.areas[:, None],
        origin,
        spacing,
        shape,
        fs=acq.fs,
        sound_speed=acq.sound_speed,
        t0=acq.t0,
        omega0=omega0 if normalize == "omega0" else None,
    )
    return Volume(data, origin, spacing)


def _check_inputs(acq: Acquisition, normalize: str) -> None:
    """A known ``normalize``; signals ``(n_sensors, n_samples)``, a positive sampling rate
    and sound speed."""
    if normalize not in ("weights", "omega0"):
        raise InputError("--normalize", None, "'weights' or 'omega0'", normalize)
    if acq.signals.ndim != 2 or acq.n_sensors != len(acq.positions):
        raise InputError(
            acq.source,
            "signals",
            f"shape (n_sensors={len(acq.positions)}, n_samples)",
            acq.signals.shape,
        )
    if acq.fs <= 0 or acq.sound_speed <= 0:
        raise InputError(acq.source, "fs / sound_speed", "positive values")


def _checked_grid(origin, spacing, shape):
    """The grid as float64 ``origin`` (3,), ``spacing`` (3,) and a tuple of 3 ints."""
    shape = tuple(int(s) for s in shape)
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,)).copy()
    if len(shape) != 3 or min(shape) < 1 or np.any(spacing <= 0):
        raise InputError(
            None, "grid", "3 positive sizes and positive spacing", (shape, spacing.tolist())
        )
    return origin, spacing, shape


def _round_sig(x: float, digits: int = 2) -> float:
    if x <= 0:
        return x
    e = np.floor(np.log10(x)) - (digits - 1)
    return float(np.ceil(x / 10**e) * 10**e)


def default_grid(
    acquisition: Acquisition,
    spacing: float | None = None,
    *,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], str]:
    """A grid to reconstruct on when the user names none.

    Parameters
    ----------
    acquisition : Acquisition
    spacing : float, optional
        Voxel size, metres.  Default: the truth's spacing if the file has a truth volume,
        else the larger of one sample's travel ``c / fs`` and the size that keeps the grid
        under ``max_voxels``.
    max_voxels : int

    Returns
    -------
    origin, spacing, shape, description
        ``description`` says in words where the grid came from (for the log).

    Notes
    -----
    - With a ``truth/volume``: its grid (or its box at ``spacing``).
    - Planar array: the box over the array's footprint, from the plane (or from depth
      ``c t0``) to the depth ``c t_max`` a wave can travel in the recorded window, on the
      side the array faces.
    - Spherical array: the cube inscribed in the sphere (every voxel inside the array).
    - Otherwise: the bounding box of the sensors.
    """
    acq = acquisition
    truth = acq.truth_volume
    if truth is not None:
        if spacing is None:
            return truth.origin.copy(), truth.spacing.copy(), truth.shape, "the truth volume's grid"
        ext = truth.extent()
        o, s, sh = grid_for_region(ext[:, 0], ext[:, 1], spacing)
        return o, s, sh, f"the truth volume's box at spacing {spacing:g} m"
    c = acq.sound_speed
    t_max = acq.t0 + (acq.n_samples - 1) / acq.fs
    geom = infer_geometry(acq.positions, normals=acq.normals)
    pos = acq.positions
    if geom.kind == "planar":
        nvec = geom.plane_normal
        if acq.normals is not None:
            mean_n = geom.normals.mean(axis=0)
            if mean_n @ nvec < 0:
                nvec = -nvec
        near = max(c * acq.t0, 0.0)
        far = c * t_max
        if far <= near:
            raise InputError(acq.source, "signals", "a time window reaching into the medium")
        pts = np.concatenate([pos + near * nvec, pos + far * nvec])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        desc = (
            f"the box over the planar array's footprint, depth {near * 1e3:.3g} to "
            f"{far * 1e3:.3g} mm (c t_max)"
        )
    elif geom.kind == "spherical":
        half = geom.radius / np.sqrt(3.0)
        lo, hi = geom.centre - half, geom.centre + half
        desc = f"the cube inscribed in the spherical array (radius {geom.radius * 1e3:.3g} mm)"
    else:
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        desc = "the bounding box of the sensors"
    box = np.maximum(hi - lo, 0.0)
    if spacing is None:
        # Cap the voxel count, but never go finer than one sample's travel.
        sides = box[box > 0]
        s_cap = (np.prod(sides) / max_voxels) ** (1.0 / len(sides)) if len(sides) else 0.0
        spacing = _round_sig(max(c / acq.fs, s_cap))
    o, s, sh = grid_for_region(lo, hi, spacing)
    return o, s, sh, desc
