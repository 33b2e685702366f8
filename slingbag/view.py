"""3-D views of a result with PyVista: the volume, the cloud of balls and the sensors.

Scenes are drawn in millimetres.  The volume is volume-rendered (``composite``) or shown as
a maximum-intensity projection (``mip``); the balls are spheres of radius ``sigma``
coloured by ``p0``, the brightest first when a cloud is too large to draw whole; sensors are
small markers.  Interactive windows get check boxes (and keys v, c, s) to switch each part
on and off; screenshots render off-screen, with no display.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError, SlingbagError

MODES = ("volume", "mip", "cloud", "all")
MAX_BALLS = 20_000  # spheres drawn at most; more make an interactive window sluggish
CMAP = "inferno"
# Opacity transfer for composite rendering: the faint background stays transparent so the
# vessels are not hidden in a fog; the brightest voxels are nearly opaque.
VOLUME_OPACITY = [0.0, 0.0, 0.02, 0.12, 0.35, 0.6, 0.8]
MM = 1e3


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


def _volume_grid(pv, volume):
    data = np.clip(np.asarray(volume.data, dtype=np.float32), 0.0, None)
    peak = float(data.max())
    grid = pv.ImageData(
        dimensions=volume.shape,
        spacing=tuple(volume.spacing * MM),
        origin=tuple(volume.origin * MM),
    )
    # ImageData points run x fastest: Fortran order of an (nx, ny, nz) array.
    grid.point_data["amplitude"] = (data / peak if peak > 0 else data).ravel(order="F")
    return grid


def _add_volume(plotter, pv, volume, mip: bool):
    grid = _volume_grid(pv, volume)
    return plotter.add_volume(
        grid,
        scalars="amplitude",
        cmap=CMAP,
        clim=(0.0, 1.0),
        opacity="linear" if mip else VOLUME_OPACITY,
        blending="maximum" if mip else "composite",
        show_scalar_bar=False,
        name="volume",
    )


def _add_cloud(plotter, pv, cloud, max_balls: int):
    keep = brightest(cloud, max_balls)
    points = pv.PolyData(np.ascontiguousarray(cloud.xyz[keep] * MM))
    points.point_data["sigma"] = cloud.sigma[keep] * MM
    peak = float(cloud.p0[keep].max()) if len(keep) else 1.0
    points.point_data["p0"] = cloud.p0[keep] / (peak if peak > 0 else 1.0)
    # A unit sphere scaled by sigma: each ball drawn at its one-sigma radius.
    sphere = pv.Sphere(radius=1.0, theta_resolution=10, phi_resolution=10)
    glyphs = points.glyph(geom=sphere, scale="sigma", orient=False, factor=1.0)
    actor = plotter.add_mesh(
        glyphs,
        scalars="p0",
        cmap=CMAP,
        clim=(0.0, 1.0),
        smooth_shading=True,
        scalar_bar_args={"title": "p0 (normalised)", "color": "white"},
        name="cloud",
    )
    return actor, len(keep)


def _add_sensors(plotter, pv, positions, size_mm: float):
    points = pv.PolyData(np.ascontiguousarray(np.asarray(positions) * MM))
    marker = pv.Cube(x_length=size_mm, y_length=size_mm, z_length=size_mm / 4)
    glyphs = points.glyph(geom=marker, orient=False, scale=False)
    return plotter.add_mesh(glyphs, color="deepskyblue", name="sensors")


def _scene_size(result) -> float:
    """A length (mm) typical of the scene, to size markers."""
    boxes = []
    if result.volume is not None:
        boxes.append(result.volume.extent() * MM)
    if result.cloud is not None and len(result.cloud):
        lo, hi = result.cloud.bounds()
        boxes.append(np.stack([lo, hi], axis=1) * MM)
    if result.sensor_positions is not None:
        p = result.sensor_positions * MM
        boxes.append(np.stack([p.min(axis=0), p.max(axis=0)], axis=1))
    if not boxes:
        return 10.0
    lo = np.min([b[:, 0] for b in boxes], axis=0)
    hi = np.max([b[:, 1] for b in boxes], axis=0)
    return float(np.linalg.norm(hi - lo)) or 10.0


def build_scene(plotter, result, mode: str = "all", *, max_balls: int = MAX_BALLS) -> dict:
    """Add a result's volume, cloud and sensors to a PyVista plotter.

    Parameters
    ----------
    plotter : pyvista.Plotter
    result : slingbag.h5io.Result
    mode : {"volume", "mip", "cloud", "all"}
        ``volume``: composite volume rendering; ``mip``: maximum-intensity projection;
        ``cloud``: the balls; ``all``: the volume rendering and the balls.  Sensors are
        shown whenever the result has them.
    max_balls : int
        Most balls drawn (the brightest); 0 for all.

    Returns
    -------
    dict of str -> vtk actor
        The parts actually added (``volume``, ``cloud``, ``sensors``), for toggling.

    Raises
    ------
    InputError
        If the mode asks for something the result does not hold.
    """
    import pyvista as pv

    if mode not in MODES:
        raise InputError("--mode", None, "one of " + ", ".join(MODES), got=mode)
    source = result.source or "result"
    actors = {}
    want_volume = mode in ("volume", "mip", "all")
    want_cloud = mode in ("cloud", "all")
    if want_volume and result.volume is None and mode != "all":
        raise InputError(source, "volume", f"a volume for --mode {mode}", hint="try --mode cloud")
    if want_cloud and (result.cloud is None or not len(result.cloud)) and mode != "all":
        raise InputError(
            source, "cloud", "a cloud of balls for --mode cloud", hint="try --mode volume"
        )
    if want_volume and result.volume is not None:
        if float(np.clip(result.volume.data, 0, None).max()) > 0:
            actors["volume"] = _add_volume(plotter, pv, result.volume, mip=(mode == "mip"))
    if want_cloud and result.cloud is not None and len(result.cloud):
        actors["cloud"], _ = _add_cloud(plotter, pv, result.cloud, max_balls)
    if result.sensor_positions is not None and len(result.sensor_positions):
        actors["sensors"] = _add_sensors(
            plotter, pv, result.sensor_positions, size_mm=0.012 * _scene_size(result)
        )
    if not actors:
        raise InputError(source, None, "something to show (a volume, a cloud or sensors)")
    plotter.show_bounds(
        xtitle="x (mm)", ytitle="y (mm)", ztitle="z (mm)", font_size=10, color="white"
    )
    plotter.add_axes()
    # Sensors (z = 0) above the tissue (z > 0): look from the side and slightly below the
    # array plane with -z up, as the depth grows downwards in a PA image.
    plotter.view_vector((0.9, -1.4, 0.7), viewup=(0.0, 0.0, -1.0))
    plotter.reset_camera()
    return actors


def _add_toggles(plotter, actors: dict) -> None:
    """Check boxes at the lower left and keys v / c / s to show or hide each part."""
    keys = {"volume": "v", "cloud": "c", "sensors": "s"}
    for row, (name, actor) in enumerate(actors.items()):

        def toggle(state, actor=actor):
            actor.SetVisibility(bool(state))

        plotter.add_checkbox_button_widget(
            toggle, value=True, position=(10, 10 + 45 * row), size=35, color_on="orange"
        )
        plotter.add_text(
            f"{name} ({keys[name]})", position=(52, 18 + 45 * row), font_size=9, name=f"l{name}"
        )

        def flip(actor=actor):
            actor.SetVisibility(not actor.GetVisibility())
            plotter.render()

        plotter.add_key_event(keys[name], flip)


def view(
    result,
    *,
    mode: str = "all",
    screenshot=None,
    max_balls: int = MAX_BALLS,
    window_size=(1200, 900),
) -> Path | None:
    """Show a result in an interactive window, or render it to a PNG off-screen.

    Parameters
    ----------
    result : slingbag.h5io.Result
    mode : {"volume", "mip", "cloud", "all"}
        See :func:`build_scene`.
    screenshot : str or os.PathLike, optional
        Write a PNG there (atomically) instead of opening a window; needs no display.
    max_balls : int
        Most balls drawn, the brightest first.
    window_size : (int, int)

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
    pv = _pyvista(off_screen)
    plotter = pv.Plotter(off_screen=off_screen, window_size=list(window_size))
    plotter.set_background("black")
    actors = build_scene(plotter, result, mode, max_balls=max_balls)
    title = f"slingbag view: {Path(result.source).name}" if result.source else "slingbag view"
    if not off_screen:
        _add_toggles(plotter, actors)
        plotter.show(title=title)
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
