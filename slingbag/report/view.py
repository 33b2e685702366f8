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

from ..errors import InputError, SlingbagError
from ..io.atomic import atomic_path
from .view_setup import (  # noqa: F401  (re-exported: the view's building blocks)
    FAINT_BALL,
    FILL,
    MAX_BALLS,
    MM,
    N_COLORS,
    brightest,
    camera_pose,
    colormap,
    content_box,
    display_levels,
    nice_box,
    opacity_transfer,
    read_viewable,
    result_title,
    sensor_direction,
    visible_balls,
)

MODES = ("volume", "mip", "cloud", "all")
VOLUME_MODES = ("volume", "mip", "all")  # the modes that render the volume
CLOUD_MODES = ("cloud", "all")  # the modes that draw the balls
DEFAULT_MODE = "volume"
BACKGROUND = "black"
SENSOR_COLOR = "deepskyblue"

BAR_MARGIN = 0.1  # right-hand share of a panel kept for the colour bar

PART_KEYS = {"volume": "v", "cloud": "c", "sensors": "s", "slices": "x"}


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
    result : slingbag.io.native.Result
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
    want_volume, want_cloud, has_cloud = _wanted_parts(result, mode, source)
    boxes = []
    if result.volume is not None and (want_volume or slices):
        box = _add_volume_parts(
            plotter, pv, panel, result.volume, mode, slices, floor, scalar_bar, font_size
        )
        if box is not None:
            boxes.append(box)
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
    panel.box = _framed_box(boxes, result)
    panel.toward = sensor_direction(result.sensor_positions, panel.box.mean(axis=1))
    return panel


def _wanted_parts(result, mode: str, source: str):
    """Whether ``mode`` draws the volume and the cloud, and whether the result has a cloud.

    Raises an InputError when a single-part mode asks for a part the result lacks
    (``all`` draws whatever there is).
    """
    want_volume = mode in VOLUME_MODES
    want_cloud = mode in CLOUD_MODES
    has_cloud = result.cloud is not None and len(result.cloud) > 0
    if want_volume and result.volume is None and mode != "all":
        raise InputError(source, "volume", f"a volume for --mode {mode}", hint="try --mode cloud")
    if want_cloud and not has_cloud and mode != "all":
        raise InputError(
            source, "cloud", "a cloud of balls for --mode cloud", hint="try --mode volume"
        )
    return want_volume, want_cloud, has_cloud


def _add_volume_parts(plotter, pv, panel, volume, mode, slices, floor, scalar_bar, font_size):
    """Add the volume rendering (as ``mode`` asks) and/or the slice planes to ``panel``.

    Sets ``panel.levels``; returns the box of what shows, or None (adding nothing) for a
    volume without a positive peak.
    """
    floor_value, peak = display_levels(volume.data)
    if floor is not None:
        floor_value = float(floor) * peak
    panel.levels = (floor_value, peak)
    if not peak > 0:
        return None
    grid = _volume_grid(pv, volume, peak)
    voxel_mm = float(np.mean(volume.spacing) * MM)
    if mode in VOLUME_MODES:
        panel.actors["volume"] = _add_volume(
            plotter, grid, floor_value / peak, voxel_mm, mode == "mip", scalar_bar, font_size
        )
    if slices:
        panel.actors["slices"], panel.widgets = _add_slices(plotter, grid, floor_value / peak)
    return content_box(volume, floor_value, peak)


def _framed_box(boxes, result) -> np.ndarray:
    """What the camera frames, mm: the union of the parts' boxes, else the volume's
    extent, else the sensors' bounding box."""
    if boxes:
        return np.stack(
            [np.min([b[:, 0] for b in boxes], axis=0), np.max([b[:, 1] for b in boxes], axis=0)],
            axis=1,
        )
    if result.volume is not None:
        return result.volume.extent() * MM
    p = np.asarray(result.sensor_positions) * MM
    return np.stack([p.min(axis=0), p.max(axis=0)], axis=1)


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


def frame_camera(plotter, box, toward, aspect: float, margin: float = 0.0) -> None:
    """Set the active renderer's camera from :func:`camera_pose` (parallel projection),
    keeping the right-hand ``margin`` share of the frame free (for the colour bar)."""
    position, focal, up, scale = camera_pose(box, toward, aspect * (1.0 - margin))
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
    try:
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
    except BaseException:
        plotter.close()
        raise
    _share_camera(plotter, panels, (width / n) / height, axes_font)
    if not slices:
        set_visible(panels, "slices", False)
    return plotter, panels


def _share_camera(plotter, panels, aspect: float, axes_font: int) -> None:
    """One camera for all panels, framing the union of what they show, each with axes."""
    n = len(panels)
    box = np.stack(
        [np.min([p.box[:, 0] for p in panels], 0), np.max([p.box[:, 1] for p in panels], 0)], 1
    )
    toward = panels[0].toward
    for i in range(n):
        plotter.subplot(0, i)
        _add_axes_labels(plotter, box, axes_font)
    plotter.subplot(0, 0)
    frame_camera(plotter, box, toward, aspect, BAR_MARGIN)
    if n > 1:
        plotter.link_views()
    # The shared camera's clipping range must hold every panel's scene, not the last one's.
    bounds = np.array([r.ComputeVisiblePropBounds() for r in plotter.renderers], dtype=float)
    union = [bounds[:, 0].min(), bounds[:, 1].max(), bounds[:, 2].min()]
    union += [bounds[:, 3].max(), bounds[:, 4].min(), bounds[:, 5].max()]
    plotter.renderers[0].ResetCameraClippingRange(union)


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
