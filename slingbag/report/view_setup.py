"""What a view shows and from where, without PyVista: display levels from a volume's
histogram, the balls worth drawing, the camera that frames an object from the sensors' side,
round axis bounds, panel titles, and reading the files to show.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

MAX_BALLS = 20_000  # spheres drawn at most; more make an interactive window sluggish
MM = 1e3

# Levels from the histogram.  The background's level is its median + 3 robust standard
# deviations; the object is what stands above it (and above a small fraction of a near-top
# percentile, so a handful of hot voxels counts as neither); the peak is a high percentile
# of the object, so a few hot voxels do not dim everything else.  The floor, where opacity
# starts, is the background's level held between 5 % and 10 % of the peak: noise and ball
# tails stay transparent and every structure above ~10 % of the peak is drawn.
TOP_PERCENTILE = 99.99
OBJECT_FRACTION = 0.05
PEAK_PERCENTILE = 99.0
FLOOR_RANGE = (0.05, 0.10)
FRAME_FRACTION = 0.15  # the camera frames the voxels above this fraction of the peak
# Opacity per voxel (the unit distance is one voxel) at fractions of the peak: a vessel a
# few voxels thick at 20 % of the peak is clearly seen; the brightest stay see-through enough
# not to hide everything behind them.
OPACITY_POINTS = ((0.2, 0.35), (1.0, 0.85))
MIP_FULL = 0.15  # MIP: opacity reaches 1 at this fraction of the peak
# Inferno's lowest quarter is near-black, invisible on the dark background: faint
# structures start at its purple.
CMAP = "inferno"
CMAP_START = 0.25
N_COLORS = 256
FAINT_BALL = 0.10  # balls under this fraction of the (robust) p0 peak are not drawn

# Camera: from the sensors' side, tilted, turned a little about the sensors' direction;
# parallel projection, so the labelled axes measure the same everywhere in the frame.
ELEVATION_DEG = 45.0
AZIMUTH_DEG = 20.0
FILL = 0.8  # the framed box spans this fraction of the frame in its tighter direction
DEFAULT_TOWARD = (0.0, 0.0, -1.0)  # planar arrays lie at z = 0, the tissue at z > 0

METHOD_LABELS = {
    "slingbag": "SlingBAG",
    "ubp": "UBP",
    "model-based": "model-based",
    "model_based": "model-based",
    "mb": "model-based",
    "truth": "truth",
}


# --------------------------------------------------------------------------- pure helpers


def display_levels(data) -> tuple[float, float]:
    """Floor and peak used to display a volume, from its histogram.

    Parameters
    ----------
    data : array_like
        Voxel values (any shape; negative values count as background).

    Returns
    -------
    (float, float)
        ``floor`` (values at or below it are transparent) and ``peak`` (the top of the colour
        range; brighter voxels saturate).  Both 0 for a volume with nothing above zero.
    """
    d = np.asarray(data, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if not d.size or float(d.max()) <= 0:
        return 0.0, 0.0
    median = float(np.median(d))
    background = median + 3.0 * 1.4826 * float(np.median(np.abs(d - median)))
    top = float(np.percentile(d, TOP_PERCENTILE))
    if top <= 0:  # fewer positive voxels than the percentile skips
        top = float(d.max())
    obj = d[d >= max(background, OBJECT_FRACTION * top)]
    peak = float(np.percentile(obj, PEAK_PERCENTILE)) if obj.size else top
    lo, hi = FLOOR_RANGE
    floor = float(np.clip(background, lo * peak, hi * peak))
    return floor, peak


def opacity_transfer(floor_frac: float, mip: bool = False, n: int = N_COLORS) -> np.ndarray:
    """Opacity at ``n`` values spread evenly over the colour range ``[floor_frac, 1]``.

    Values are fractions of the peak.  Composite rendering ramps from 0 at the floor through
    :data:`OPACITY_POINTS`; MIP ramps to fully opaque at :data:`MIP_FULL`.
    """
    x = np.linspace(floor_frac, 1.0, n)
    if mip:
        points = [(floor_frac, 0.0), (max(MIP_FULL, floor_frac + 1e-6), 1.0), (1.0, 1.0)]
    else:
        points = [(floor_frac, 0.0)] + [(px, py) for px, py in OPACITY_POINTS if px > floor_frac]
    xs, ys = zip(*points, strict=True)
    return np.interp(x, xs, ys)


def colormap():
    """Inferno without its near-black lowest part (see :data:`CMAP_START`)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    base = colormaps[CMAP]
    return ListedColormap(base(np.linspace(CMAP_START, 1.0, N_COLORS)), name="inferno_lit")


def brightest(cloud, max_balls: int = MAX_BALLS):
    """Indices of the ``max_balls`` balls with the largest ``p0`` (all when fewer).

    Returns
    -------
    ndarray of int
        Sorted brightest first.
    """
    n = len(cloud)
    if max_balls <= 0 or n <= max_balls:
        return np.argsort(-cloud.p0, kind="stable")
    top = np.argpartition(-cloud.p0, max_balls - 1)[:max_balls]
    return top[np.argsort(-cloud.p0[top], kind="stable")]


def visible_balls(cloud, max_balls: int = MAX_BALLS) -> tuple[np.ndarray, float]:
    """The balls worth drawing, brightest first, and the ``p0`` that counts as the peak.

    Balls fainter than :data:`FAINT_BALL` of the peak (a high percentile of ``p0``) are
    dropped; of the rest, at most ``max_balls`` (0: all) of the brightest are kept.
    """
    p0 = np.asarray(cloud.p0, dtype=np.float64)
    positive = p0[p0 > 0]
    if not positive.size:
        return np.zeros(0, dtype=int), 0.0
    peak = float(np.percentile(positive, PEAK_PERCENTILE))
    order = brightest(cloud, 0)
    order = order[p0[order] >= FAINT_BALL * peak]
    if max_balls > 0:
        order = order[:max_balls]
    return order, peak


def content_box(volume, floor: float, peak: float) -> np.ndarray:
    """``(3, 2)`` box in mm around the voxels above :data:`FRAME_FRACTION` of the peak.

    Padded by two voxels and kept inside the volume; the whole volume when nothing is
    above the threshold.
    """
    extent = volume.extent() * MM
    if peak <= 0:
        return extent
    mask = np.asarray(volume.data) >= max(floor, FRAME_FRACTION * peak)
    if not mask.any():
        return extent
    lo_idx, hi_idx = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        lo_idx.append(max(hit[0] - 2, 0))
        hi_idx.append(min(hit[-1] + 2, volume.shape[axis] - 1))
    origin = volume.origin * MM
    spacing = volume.spacing * MM
    return np.stack([origin + np.array(lo_idx) * spacing, origin + np.array(hi_idx) * spacing], 1)


def camera_pose(box, toward=DEFAULT_TOWARD, aspect: float = 4 / 3):
    """A parallel-projection camera that frames ``box`` from the ``toward`` side.

    Parameters
    ----------
    box : array_like, (3, 2)
        ``[lo, hi]`` per axis (mm).
    toward : array_like, (3,)
        Direction from the object to the sensors; it is "up" on screen and the camera sits
        :data:`ELEVATION_DEG` above the plane normal to it, turned :data:`AZIMUTH_DEG`
        about it.
    aspect : float
        Width / height of the viewport.

    Returns
    -------
    position, focal_point, up : ndarray (3,)
    parallel_scale : float
        Half the frame height (mm).  The box's projection is centred and spans
        :data:`FILL` of the frame in its tighter direction.

    Notes
    -----
    The camera stands a few frame heights from the box; sensors farther out on its side
    (a wide sphere around a small object) fall behind it and are not drawn.
    """
    box = np.asarray(box, dtype=np.float64)
    center = box.mean(axis=1)
    up = np.asarray(toward, dtype=np.float64)
    up = up / np.linalg.norm(up)
    ref = np.array([0.0, 1.0, 0.0])
    if abs(ref @ up) > 0.9:
        ref = np.array([1.0, 0.0, 0.0])
    h1 = ref - (ref @ up) * up
    h1 /= np.linalg.norm(h1)
    h2 = np.cross(up, h1)
    az, el = np.radians(AZIMUTH_DEG), np.radians(ELEVATION_DEG)
    horizontal = np.cos(az) * h1 + np.sin(az) * h2
    back = np.cos(el) * horizontal + np.sin(el) * up  # from the focal point to the camera
    cam_up = up - (up @ back) * back
    cam_up /= np.linalg.norm(cam_up)
    right = np.cross(-back, cam_up)
    corners = np.array([[x, y, z] for x in box[0] for y in box[1] for z in box[2]]) - center
    x, y = corners @ right, corners @ cam_up
    focal = center + right * (x.max() + x.min()) / 2 + cam_up * (y.max() + y.min()) / 2
    half_w, half_h = (x.max() - x.min()) / 2, (y.max() - y.min()) / 2
    scale = max(half_h, half_w / aspect) / FILL
    scale = scale if scale > 0 else 1.0
    diagonal = float(np.linalg.norm(box[:, 1] - box[:, 0]))
    # As far back as a 30-degree perspective camera showing the same frame: the cube axes
    # size their labels by this distance, so a fixed ratio keeps them one size on screen.
    distance = max(scale / np.tan(np.radians(15.0)), diagonal)
    return focal + distance * back, focal, cam_up, float(scale)


def sensor_direction(positions, center) -> np.ndarray:
    """Unit direction from ``center`` (mm) to the sensors' mean position (mm); the default
    :data:`DEFAULT_TOWARD` without sensors or when they surround the object."""
    if positions is None or not len(positions):
        return np.array(DEFAULT_TOWARD, dtype=np.float64)
    p = np.asarray(positions, dtype=np.float64) * MM
    v = p.mean(axis=0) - np.asarray(center, dtype=np.float64)
    spread = float(np.linalg.norm(p.max(axis=0) - p.min(axis=0))) or 1.0
    if np.linalg.norm(v) < 0.05 * spread:
        return np.array(DEFAULT_TOWARD, dtype=np.float64)
    return v / np.linalg.norm(v)


def result_title(result) -> str:
    """A panel title: the method (SlingBAG, UBP, truth...) and the file name."""
    method = str(result.attrs.get("method", "")) if result.attrs else ""
    label = METHOD_LABELS.get(method.lower(), method or "result")
    name = Path(result.source).name if result.source else ""
    return f"{label}: {name}" if name else label


# --------------------------------------------------------------------------- reading


def read_viewable(path):
    """A result file, or an acquisition's truth, as a :class:`~slingbag.io.native.Result`.

    An acquisition file (simulated data) is shown through its truth volume (or truth
    cloud) with its sensors, titled "truth".

    Raises
    ------
    InputError
        If the file is neither a readable result nor an acquisition with a truth.
    """
    from ..io.native import ACQUISITION_FORMAT, Result, read_acquisition, read_result

    if _format_of(path) == ACQUISITION_FORMAT:
        acq = read_acquisition(path)
        if acq.truth_volume is None and acq.truth_cloud is None:
            raise InputError(
                acq.source,
                "truth/volume",
                "a truth volume or cloud to show (an acquisition without a truth has no image)",
                hint="reconstruct it first and view the result",
            )
        return Result(
            volume=acq.truth_volume,
            cloud=acq.truth_cloud if acq.truth_volume is None else None,
            attrs={"method": "truth"},
            sensor_positions=acq.positions,
            source=acq.source,
        )
    return read_result(path)


def _format_of(path) -> str | None:
    """The ``format`` root attribute, or None when the file cannot be opened (the readers
    then report the problem)."""
    import h5py

    try:
        with h5py.File(os.fspath(path), "r") as f:
            value = f.attrs.get("format")
    except (OSError, ValueError):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return value if isinstance(value, str) else None


NICE_SLACK = 0.02  # content may overhang the labelled box by this share of its largest side


def nice_box(box) -> np.ndarray:
    """``box`` (mm) snapped outwards to multiples of a round step (the largest 1, 2 or 5 x
    10^k within a tenth of its largest side), so the axis labels read cleanly.  A side that
    overhangs a step by less than :data:`NICE_SLACK` of the box is snapped inwards instead
    (a ball's tail just past 10 mm keeps the label at 10)."""
    box = np.asarray(box, dtype=np.float64)
    side = float(np.max(box[:, 1] - box[:, 0])) or 1.0
    power = 10.0 ** np.floor(np.log10(side / 10.0))
    step = max(m * power for m in (1.0, 2.0, 5.0) if m * power <= side / 10.0 + 1e-12)
    slack = NICE_SLACK * side
    lo = np.floor((box[:, 0] + slack) / step)
    hi = np.ceil((box[:, 1] - slack) / step)
    hi = np.where(hi <= lo, lo + 1, hi)
    return np.stack([lo, hi], axis=1) * step
