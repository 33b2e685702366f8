"""3-D views of results with PyVista: the volume, the cloud of balls and the sensors.

Scenes are drawn in millimetres.  By default the voxel volume is volume-rendered, its colour
and opacity ranges taken from its own histogram (:func:`display_levels`) so that every
structure above about a fifth of the peak shows and the background stays transparent.  The
camera is framed on what the volume shows, from the side the sensors look from, at an angle
(:func:`frame_camera`); sensors are small points.  Several results are drawn side by side
with one shared camera.  Interactive windows get check boxes (and keys v, c, s, x) to switch
each part on and off, x showing three orthogonal slice planes that can be dragged;
screenshots render off-screen, with no display.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError, SlingbagError

MODES = ("volume", "mip", "cloud", "all")
DEFAULT_MODE = "volume"
MAX_BALLS = 20_000  # spheres drawn at most; more make an interactive window sluggish
MM = 1e3
BACKGROUND = "black"
SENSOR_COLOR = "deepskyblue"

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
BAR_MARGIN = 0.1  # right-hand share of a panel kept for the colour bar

METHOD_LABELS = {
    "slingbag": "SlingBAG",
    "ubp": "UBP",
    "model-based": "model-based",
    "model_based": "model-based",
    "mb": "model-based",
    "truth": "truth",
}
PART_KEYS = {"volume": "v", "cloud": "c", "sensors": "s", "slices": "x"}


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


def camera_pose(box, toward=DEFAULT_TOWARD, aspect: float = 4 / 3, reach: float = 0.0):
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
    reach : float
        Distance (mm) from the box centre to the farthest thing that must stay in front of
        the camera (the sensors).

    Returns
    -------
    position, focal_point, up : ndarray (3,)
    parallel_scale : float
        Half the frame height (mm).  The box's projection is centred and spans
        :data:`FILL` of the frame in its tighter direction.
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
    """A result file, or an acquisition's truth, as a :class:`~slingbag.h5io.Result`.

    An acquisition file (simulated data) is shown through its truth volume (or truth
    cloud) with its sensors, titled "truth".

    Raises
    ------
    InputError
        If the file is neither a readable result nor an acquisition with a truth.
    """
    from .h5io import ACQUISITION_FORMAT, Result, read_acquisition, read_result

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


# --------------------------------------------------------------------------- scene


def _pyvista(off_screen: bool):
    """Import PyVista, set up for a window or for off-screen rendering."""
    if off_screen and sys.platform.startswith("linux") and not _has_display():
        # Without an X server VTK tries X first, prints a warning and falls back to EGL;
        # asking for EGL directly skips the failed attempt and the noise.
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    if off_screen:
        pv.OFF_SCREEN = True
    return pv


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass
class Panel:
    """What one result's panel holds.

    Attributes
    ----------
    actors : dict of str -> actor or list
        ``volume``, ``cloud``, ``sensors`` actors and ``slices`` (a list of actors), those
        actually drawn.
    widgets : list
        The slice planes' widgets (interactive dragging).
    box : ndarray (3, 2)
        What the camera frames, mm.
    toward : ndarray (3,)
        Unit direction from the object to the sensors.
    title : str
    levels : (float, float)
        The volume's display floor and peak (0, 0 without a volume).
    """

    actors: dict = field(default_factory=dict)
    widgets: list = field(default_factory=list)
    box: np.ndarray | None = None
    toward: np.ndarray | None = None
    title: str = ""
    levels: tuple = (0.0, 0.0)


def _volume_grid(pv, volume, peak: float):
    data = np.clip(np.asarray(volume.data, dtype=np.float32), 0.0, None)
    grid = pv.ImageData(
        dimensions=volume.shape,
        spacing=tuple(volume.spacing * MM),
        origin=tuple(volume.origin * MM),
    )
    # ImageData points run x fastest: Fortran order of an (nx, ny, nz) array.
    values = np.minimum(data / peak, 1.0) if peak > 0 else data
    grid.point_data["amplitude"] = values.ravel(order="F")
    return grid


def _lookup_table(pv, clim, opacity):
    """Colours from :func:`colormap` and the given opacities (one per colour) over ``clim``.

    Built here rather than passed as ``opacity=`` because PyVista stores an opacity array
    exactly as long as its table unscaled (0..1 in a 0..255 table): all transparent.
    """
    lut = pv.LookupTable(cmap=colormap(), n_values=N_COLORS)
    values = np.array(lut.values)
    values[:, 3] = np.round(np.clip(opacity, 0.0, 1.0) * 255).astype(np.uint8)
    lut.values = values
    lut.scalar_range = tuple(clim)
    return lut


def _add_volume(plotter, grid, floor_frac, voxel_mm, mip: bool, scalar_bar: bool, font: int):
    import pyvista as pv

    clim = (floor_frac, 1.0)
    return plotter.add_volume(
        grid,
        scalars="amplitude",
        cmap=_lookup_table(pv, clim, opacity_transfer(floor_frac, mip=mip)),
        clim=clim,
        opacity_unit_distance=voxel_mm,
        blending="maximum" if mip else "composite",
        show_scalar_bar=scalar_bar,
        scalar_bar_args=_bar_args("p0 / peak", font),
    )


def _bar_args(title: str, font: int) -> dict:
    return {
        "title": title,
        "color": "white",
        "vertical": True,
        "position_x": 1.0 - BAR_MARGIN + 0.015,
        "position_y": 0.25,
        "width": 0.025,
        "height": 0.5,
        "n_labels": 3,
        "fmt": "%.2f",
        "title_font_size": font + 1,
        "label_font_size": font,
    }


def _add_cloud(plotter, pv, cloud, max_balls: int, scalar_bar: bool, font: int):
    keep, peak = visible_balls(cloud, max_balls)
    if not len(keep):
        return None, None
    points = pv.PolyData(np.ascontiguousarray(cloud.xyz[keep] * MM))
    points.point_data["sigma"] = cloud.sigma[keep] * MM
    points.point_data["p0"] = np.minimum(cloud.p0[keep] / peak, 1.0)
    # A unit sphere scaled by sigma: each ball drawn at its one-sigma radius.
    sphere = pv.Sphere(radius=1.0, theta_resolution=12, phi_resolution=12)
    glyphs = points.glyph(geom=sphere, scale="sigma", orient=False, factor=1.0)
    clim = (FAINT_BALL, 1.0)
    opacity = np.interp(np.linspace(*clim, N_COLORS), clim, [0.15, 0.95])
    actor = plotter.add_mesh(
        glyphs,
        scalars="p0",
        cmap=_lookup_table(pv, clim, opacity),
        clim=clim,
        smooth_shading=True,
        show_scalar_bar=scalar_bar,
        scalar_bar_args=_bar_args("p0 / peak", font),
    )
    sig = cloud.sigma[keep] * MM
    xyz = cloud.xyz[keep] * MM
    box = np.stack([(xyz - sig[:, None]).min(axis=0), (xyz + sig[:, None]).max(axis=0)], 1)
    return actor, box


def _add_sensors(plotter, pv, positions, point_size: float):
    points = pv.PolyData(np.ascontiguousarray(np.asarray(positions) * MM))
    return plotter.add_mesh(
        points,
        color=SENSOR_COLOR,
        point_size=point_size,
        render_points_as_spheres=True,
        opacity=0.8,
        pickable=False,
    )


def _add_slices(plotter, grid, floor_frac: float):
    """Three orthogonal planes through the volume, each draggable with its widget."""
    owner = getattr(plotter, "widgets", plotter)  # PyVista >= 0.47 keeps widgets apart
    before = len(owner.plane_widgets)
    actors = plotter.add_mesh_slice_orthogonal(
        grid,
        scalars="amplitude",
        cmap=colormap(),
        clim=(floor_frac, 1.0),
        below_color=BACKGROUND,
        show_scalar_bar=False,
        widget_color="white",
        interaction_event="always",
    )
    return list(actors), list(owner.plane_widgets[before:])


def build_scene(
    plotter,
    result,
    mode: str = DEFAULT_MODE,
    *,
    max_balls: int = MAX_BALLS,
    slices: bool = False,
    scalar_bar: bool = True,
    point_size: float = 5.0,
    font_size: int = 11,
    floor: float | None = None,
) -> Panel:
    """Add a result's volume, cloud and sensors to the plotter's active renderer.

    Parameters
    ----------
    plotter : pyvista.Plotter
    result : slingbag.h5io.Result
    mode : {"volume", "mip", "cloud", "all"}
        ``volume`` (default): composite volume rendering; ``mip``: maximum-intensity
        projection; ``cloud``: the balls (size sigma, colour and opacity by p0, faint ones
        dropped); ``all``: the volume rendering and the balls.  Sensors are shown whenever
        the result has them.
    max_balls : int
        Most balls drawn (the brightest); 0 for all.
    slices : bool
        Add three orthogonal, draggable slice planes through the volume.
    scalar_bar : bool
        Show the colour bar.
    point_size : float
        Sensor marker size, pixels.
    font_size : int
        Colour bar text size.
    floor : float, optional
        Fraction of the peak at and below which the volume is transparent, instead of the
        histogram's choice (e.g. 0.3 to clear the haze of a back-projection).

    Returns
    -------
    Panel
        The parts added, for toggling, and the box the camera should frame.

    Raises
    ------
    InputError
        If the mode asks for something the result does not hold.
    """
    import pyvista as pv

    if mode not in MODES:
        raise InputError("--mode", None, "one of " + ", ".join(MODES), got=mode)
    source = result.source or "result"
    panel = Panel(title=result_title(result))
    want_volume = mode in ("volume", "mip", "all")
    want_cloud = mode in ("cloud", "all")
    has_cloud = result.cloud is not None and len(result.cloud) > 0
    if want_volume and result.volume is None and mode != "all":
        raise InputError(source, "volume", f"a volume for --mode {mode}", hint="try --mode cloud")
    if want_cloud and not has_cloud and mode != "all":
        raise InputError(
            source, "cloud", "a cloud of balls for --mode cloud", hint="try --mode volume"
        )
    boxes = []
    if result.volume is not None and (want_volume or slices):
        floor_value, peak = display_levels(result.volume.data)
        if floor is not None:
            floor_value = float(floor) * peak
        panel.levels = (floor_value, peak)
        if peak > 0:
            grid = _volume_grid(pv, result.volume, peak)
            voxel_mm = float(np.mean(result.volume.spacing) * MM)
            if want_volume:
                panel.actors["volume"] = _add_volume(
                    plotter,
                    grid,
                    floor_value / peak,
                    voxel_mm,
                    mode == "mip",
                    scalar_bar,
                    font_size,
                )
            if slices:
                panel.actors["slices"], panel.widgets = _add_slices(
                    plotter, grid, floor_value / peak
                )
            boxes.append(content_box(result.volume, floor_value, peak))
    if want_cloud and has_cloud:
        actor, box = _add_cloud(
            plotter, pv, result.cloud, max_balls, scalar_bar and not boxes, font_size
        )
        if actor is not None:
            panel.actors["cloud"] = actor
            boxes.append(box)
    if result.sensor_positions is not None and len(result.sensor_positions):
        panel.actors["sensors"] = _add_sensors(plotter, pv, result.sensor_positions, point_size)
    if not panel.actors:
        raise InputError(source, None, "something to show (a volume, a cloud or sensors)")
    if boxes:
        panel.box = np.stack(
            [np.min([b[:, 0] for b in boxes], axis=0), np.max([b[:, 1] for b in boxes], axis=0)],
            axis=1,
        )
    elif result.volume is not None:
        panel.box = result.volume.extent() * MM
    else:
        p = np.asarray(result.sensor_positions) * MM
        panel.box = np.stack([p.min(axis=0), p.max(axis=0)], axis=1)
    panel.toward = sensor_direction(result.sensor_positions, panel.box.mean(axis=1))
    return panel


def nice_box(box) -> np.ndarray:
    """``box`` (mm) widened to multiples of a round step (1, 2 or 5 x 10^k, near a tenth of
    its largest side), so the axis labels read cleanly."""
    box = np.asarray(box, dtype=np.float64)
    side = float(np.max(box[:, 1] - box[:, 0])) or 1.0
    power = 10.0 ** np.floor(np.log10(side / 10.0))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= side / 10.0)
    lo = np.floor(box[:, 0] / step + 1e-9)
    hi = np.ceil(box[:, 1] / step - 1e-9)
    hi = np.where(hi == lo, hi + 1, hi)
    return np.stack([lo, hi], axis=1) * step


def _add_axes_labels(plotter, box, font_size: int) -> None:
    """Labelled axes in millimetres around the framed box (widened to round values)."""
    plotter.show_bounds(
        bounds=tuple(nice_box(box).ravel()),
        xtitle="x (mm)",
        ytitle="y (mm)",
        ztitle="z (mm)",
        n_xlabels=3,
        n_ylabels=3,
        n_zlabels=3,
        fmt="%g",
        font_size=font_size,
        color="grey",
        location="outer",
        ticks="outside",
        use_3d_text=False,  # screen-sized labels, the same whatever the scene's size
    )


def frame_camera(
    plotter, box, toward, aspect: float, reach: float = 0.0, margin: float = 0.0
) -> None:
    """Set the active renderer's camera from :func:`camera_pose` (parallel projection),
    keeping the right-hand ``margin`` share of the frame free (for the colour bar)."""
    position, focal, up, scale = camera_pose(box, toward, aspect * (1.0 - margin), reach)
    # Moving the camera right by half the margin moves the scene left by as much.
    right = np.cross(focal - position, up)
    shift = right / np.linalg.norm(right) * margin * scale * aspect
    position, focal = position + shift, focal + shift
    plotter.enable_parallel_projection()
    camera = plotter.camera
    camera.position = tuple(position)
    camera.focal_point = tuple(focal)
    camera.up = tuple(up)
    camera.parallel_scale = scale
    plotter.renderer.reset_camera_clipping_range()


def build_view(
    results,
    *,
    mode: str = DEFAULT_MODE,
    max_balls: int = MAX_BALLS,
    window_size=None,
    off_screen: bool = False,
    slices: bool = False,
    floor: float | None = None,
):
    """A plotter showing one result, or several side by side with one shared camera.

    Parameters
    ----------
    results : Result or sequence of Result
    mode, max_balls, slices, floor
        See :func:`build_scene`.
    window_size : (int, int), optional
        Default 1200 x 900 for one result, 640 x 560 per panel for several.
    off_screen : bool

    Returns
    -------
    (pyvista.Plotter, list of Panel)
    """
    if not isinstance(results, (list, tuple)):
        results = [results]
    n = len(results)
    if n == 0:
        raise InputError("RESULT.h5", None, "at least one result file")
    if window_size is None:
        window_size = (1200, 900) if n == 1 else (min(640 * n, 8192), 560)
    width, height = (int(v) for v in window_size)
    pv = _pyvista(off_screen)
    plotter = pv.Plotter(
        off_screen=off_screen, window_size=[width, height], shape=(1, n), border=False
    )
    plotter.set_background(BACKGROUND)
    scale = min(width / n, height) / 900.0
    point_size = max(2.0, 6.0 * scale)
    font = max(9, round(12 * scale))
    # Axis labels: the cube axes size its labels against the camera distance, which
    # camera_pose keeps in proportion to the frame, so one factor fits every scene.
    axes_font = max(10, round(18 * scale))
    panels = []
    for i, result in enumerate(results):
        plotter.subplot(0, i)
        panel = build_scene(
            plotter,
            result,
            mode,
            max_balls=max_balls,
            slices=slices,
            scalar_bar=(i == n - 1),
            point_size=point_size,
            font_size=font,
            floor=floor,
        )
        panels.append(panel)
        if n > 1:
            plotter.add_text(panel.title, position="upper_edge", font_size=font, color="white")
    # One camera for all: frame the union of what the panels show.
    box = np.stack(
        [np.min([p.box[:, 0] for p in panels], 0), np.max([p.box[:, 1] for p in panels], 0)], 1
    )
    toward = panels[0].toward
    reach = 0.0
    for result in results:
        if result.sensor_positions is not None and len(result.sensor_positions):
            offsets = np.asarray(result.sensor_positions) * MM - box.mean(axis=1)
            reach = max(reach, float(np.linalg.norm(offsets, axis=1).max()))
    for i in range(n):
        plotter.subplot(0, i)
        _add_axes_labels(plotter, box, axes_font)
    plotter.subplot(0, 0)
    frame_camera(plotter, box, toward, (width / n) / height, reach, BAR_MARGIN)
    if n > 1:
        plotter.link_views()
    for i in range(n):
        plotter.subplot(0, i)
        plotter.renderer.reset_camera_clipping_range()
    if not slices:
        set_visible(panels, "slices", False)
    return plotter, panels


def set_visible(panels, part: str, visible: bool) -> None:
    """Show or hide one kind of part (``volume``, ``cloud``, ``sensors``, ``slices``) in
    every panel."""
    for panel in panels:
        item = panel.actors.get(part)
        if item is None:
            continue
        for actor in item if isinstance(item, list) else [item]:
            actor.SetVisibility(bool(visible))
        if part == "slices":
            for widget in panel.widgets:
                widget.SetEnabled(int(bool(visible)))


def _is_visible(panels, part: str) -> bool:
    for panel in panels:
        item = panel.actors.get(part)
        if item is not None:
            first = item[0] if isinstance(item, list) else item
            return bool(first.GetVisibility())
    return False


def _add_toggles(plotter, panels) -> None:
    """Check boxes at the lower left of the first panel and keys v / c / s / x to show or
    hide each part in every panel."""
    parts = [p for p in PART_KEYS if any(p in panel.actors for panel in panels)]
    plotter.subplot(0, 0)
    for row, part in enumerate(parts):

        def toggle(state, part=part):
            set_visible(panels, part, bool(state))

        widget = plotter.add_checkbox_button_widget(
            toggle,
            value=_is_visible(panels, part),
            position=(10, 10 + 40 * row),
            size=30,
            color_on="orange",
        )
        plotter.add_text(
            f"{part} ({PART_KEYS[part]})",
            position=(48, 16 + 40 * row),
            font_size=9,
            color="white",
            name=f"label-{part}",
        )

        def flip(part=part, widget=widget):
            state = not _is_visible(panels, part)
            set_visible(panels, part, state)
            widget.GetRepresentation().SetState(int(state))
            plotter.render()

        plotter.add_key_event(PART_KEYS[part], flip)


def view(
    results,
    *,
    mode: str = DEFAULT_MODE,
    screenshot=None,
    max_balls: int = MAX_BALLS,
    window_size=None,
    slices: bool = False,
    floor: float | None = None,
) -> Path | None:
    """Show results in an interactive window, or render them to a PNG off-screen.

    Parameters
    ----------
    results : Result or sequence of Result
        One result, or several shown side by side with linked cameras and titles.
    mode : {"volume", "mip", "cloud", "all"}
        See :func:`build_scene`.
    screenshot : str or os.PathLike, optional
        Write a PNG there (atomically) instead of opening a window; needs no display.
    max_balls : int
        Most balls drawn, the brightest first.
    window_size : (int, int), optional
        See :func:`build_view`.
    slices : bool
        Start with the orthogonal slice planes shown (in a window they can always be
        switched on with the key x and dragged).
    floor : float, optional
        Fraction of each volume's peak below which it is transparent (default: from the
        histogram, see :func:`display_levels`).

    Returns
    -------
    pathlib.Path or None
        The screenshot written, if any.
    """
    off_screen = screenshot is not None
    if not off_screen and sys.platform.startswith("linux") and not _has_display():
        raise SlingbagError(
            "no display for an interactive window (DISPLAY is not set); "
            "use --screenshot FILE.png to render off-screen"
        )
    if not isinstance(results, (list, tuple)):
        results = [results]
    # A window always gets the slice planes, hidden unless asked for, so x can show them.
    plotter, panels = build_view(
        results,
        mode=mode,
        max_balls=max_balls,
        window_size=window_size,
        off_screen=off_screen,
        slices=slices or not off_screen,
        floor=floor,
    )
    if not off_screen:
        if not slices:
            set_visible(panels, "slices", False)
        _add_toggles(plotter, panels)
        names = ", ".join(Path(r.source).name for r in results if r.source)
        plotter.show(title=f"slingbag view: {names}" if names else "slingbag view")
        return None
    try:
        image = plotter.screenshot(None, return_img=True)
    finally:
        plotter.close()
    return save_png(image, screenshot)


def save_png(image: np.ndarray, path) -> Path:
    """Write an RGB(A) uint8 image as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
    return path
