"""``slingbag view``: what the default picture shows, comparisons, slicing, off-screen.

The picture tests render a synthetic volume, a bright tube at 1.0 and a faint one at 0.3
of the peak on an empty background, under an 8 x 8 planar array, in small windows.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from slingbag.cli import main
from slingbag.core.acquisition import Acquisition
from slingbag.core.cloud import GaussianCloud
from slingbag.core.volume import Volume
from slingbag.io.native import write_acquisition, write_result
from slingbag.report.view import (
    FAINT_BALL,
    FILL,
    brightest,
    build_view,
    camera_pose,
    display_levels,
    nice_box,
    opacity_transfer,
    read_viewable,
    set_visible,
    visible_balls,
)

# A blank (single-colour) frame has zero variance; a drawn scene has far more.
MIN_VARIANCE = 20.0
# How much brighter (0-255 luminance) than the background a tube's pixels must be.
VISIBLE_MARGIN = 40.0
SIZE = (400, 300)

_PROBE = """
import os
if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
import pyvista as pv
p = pv.Plotter(off_screen=True, window_size=(64, 64))
p.add_mesh(pv.Sphere(), color="white")
img = p.screenshot(None, return_img=True)
print(float(img.std()))
"""


@pytest.fixture(scope="module")
def offscreen():
    """Skip only when VTK cannot render off-screen at all here (checked in a child process,
    since a missing OpenGL/EGL library can abort the process rather than raise)."""
    try:
        run = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.skip("off-screen rendering probe hung (no usable EGL/OSMesa/X)")
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"VTK cannot render off-screen here (needs EGL, OSMesa or X): {reason}")


# Two tubes along x at z = 12 mm: bright at y = -2 mm, faint at y = +2 mm.
ORIGIN = np.array([-5e-3, -5e-3, 10e-3])
SPACING = 0.25e-3
SHAPE = (41, 41, 17)
TUBES = {"bright": (-2e-3, 1.0), "faint": (2e-3, 0.3)}
TUBE_Z = 12e-3
TUBE_X = (-4e-3, 4e-3)


def tubes_volume() -> Volume:
    x, y, z = (ORIGIN[d] + np.arange(SHAPE[d]) * SPACING for d in range(3))
    gx, gy, gz = np.meshgrid(x, y, z, indexing="ij")
    inside = (gx >= TUBE_X[0]) & (gx <= TUBE_X[1])
    data = np.zeros(SHAPE)
    for y0, amplitude in TUBES.values():
        r2 = (gy - y0) ** 2 + (gz - TUBE_Z) ** 2
        data += amplitude * np.exp(-r2 / (2 * (0.4e-3) ** 2)) * inside
    return Volume(data, ORIGIN, SPACING)


def planar_sensors(n=8, pitch=2e-3) -> np.ndarray:
    g = (np.arange(n) - (n - 1) / 2) * pitch
    return np.array([[x, y, 0.0] for x in g for y in g])


@pytest.fixture(scope="module")
def tubes_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("view") / "tubes.h5"
    write_result(
        path, volume=tubes_volume(), sensors=planar_sensors(), attrs={"method": "slingbag"}
    )
    return path


@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    """A result with a volume, a cloud and sensors (every mode has something to draw)."""
    rng = np.random.default_rng(3)
    n = 300
    xyz = np.c_[rng.uniform(-4e-3, 4e-3, (n, 2)), rng.uniform(11e-3, 13e-3, n)]
    cloud = GaussianCloud(xyz, rng.uniform(0.01, 1.0, n), rng.uniform(0.1e-3, 0.3e-3, n))
    path = tmp_path_factory.mktemp("view") / "result.h5"
    write_result(
        path,
        volume=tubes_volume(),
        cloud=cloud,
        sensors=planar_sensors(),
        attrs={"method": "slingbag"},
    )
    return path


@pytest.fixture(scope="module")
def acquisition_file(tmp_path_factory):
    """A simulated acquisition whose truth is the tubes."""
    sensors = planar_sensors()
    acq = Acquisition(
        signals=np.zeros((len(sensors), 16)),
        positions=sensors,
        fs=40e6,
        sound_speed=1500.0,
        truth_volume=tubes_volume(),
    )
    path = tmp_path_factory.mktemp("view") / "acq.h5"
    write_acquisition(path, acq)
    return path


def _shot(plotter) -> np.ndarray:
    plotter.render()
    return np.asarray(plotter.screenshot(None, return_img=True))[..., :3].astype(np.float64)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _to_pixels(plotter, points_mm, height) -> np.ndarray:
    """Display (column, row) of world points (mm), rows counted from the top."""
    renderer = plotter.renderer
    out = []
    for p in points_mm:
        renderer.SetWorldPoint(*p, 1.0)
        renderer.WorldToDisplay()
        x, y, _ = renderer.GetDisplayPoint()
        out.append((round(x), height - 1 - round(y)))
    return np.array(out)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels that differ between two renders."""
    return np.abs(a - b).sum(axis=-1) > 30


def _drawn(image: np.ndarray) -> np.ndarray:
    """Pixels that differ from the background (the most common colour)."""
    background = np.median(image.reshape(-1, 3), axis=0)
    return np.abs(image - background).sum(axis=-1) > 30


# --------------------------------------------------------------------------- pure parts


def test_levels_come_from_the_histogram_not_the_maximum():
    data = tubes_volume().data.copy()
    floor, peak = display_levels(data)
    assert 0.8 <= peak <= 1.0
    assert 0.05 * peak <= floor <= 0.1 * peak
    # A few hot voxels do not move the peak (the maximum would have put it at 50).
    data[0, 0, :3] = 50.0
    floor_hot, peak_hot = display_levels(data)
    assert peak_hot == pytest.approx(peak, rel=0.05)
    assert display_levels(np.zeros((4, 4, 4))) == (0.0, 0.0)
    # Noise raises the floor, up to a tenth of the peak.
    noisy = data + np.random.default_rng(0).normal(0, 0.05, data.shape)
    assert display_levels(noisy)[0] == pytest.approx(0.1 * display_levels(noisy)[1])


def test_opacity_transfer_shows_a_fifth_of_the_peak():
    floor = 0.06
    x = np.linspace(floor, 1.0, 256)
    opacity = opacity_transfer(floor)
    assert opacity[0] == 0.0
    assert np.all(np.diff(opacity) >= 0)
    assert np.interp(0.2, x, opacity) >= 0.3
    high = opacity_transfer(0.3)  # a floor set above the first knee (--floor 0.3)
    assert high[0] == 0.0 and np.all(np.diff(high) >= 0) and high[-1] > 0.5
    mip = opacity_transfer(floor, mip=True)
    assert mip[0] == 0.0 and np.interp(0.2, x, mip) == 1.0


@pytest.mark.parametrize("toward", [(0, 0, -1), (0, 0, 1), (1, 0, 0), (0.3, -0.5, -0.8)])
@pytest.mark.parametrize("aspect", [4 / 3, 0.7])
def test_camera_frames_the_box_from_the_sensors_side(toward, aspect):
    box = np.array([[-10.0, 10.0], [-4.0, 6.0], [12.0, 18.0]])
    position, focal, up, scale = camera_pose(box, toward, aspect)
    toward = np.asarray(toward, float) / np.linalg.norm(toward)
    back = (position - focal) / np.linalg.norm(position - focal)
    assert back @ toward > 0.5  # from the sensors' side, at an angle
    assert back @ toward < 0.95
    assert up @ toward > 0  # the sensors' side is up on screen
    right = np.cross(-back, up)
    corners = np.array([[x, y, z] for x in box[0] for y in box[1] for z in box[2]]) - focal
    u, v = corners @ right, corners @ up
    assert abs(u.max() + u.min()) < 1e-9 and abs(v.max() + v.min()) < 1e-9  # centred
    fill = max((v.max() - v.min()) / (2 * scale), (u.max() - u.min()) / (2 * scale * aspect))
    assert fill == pytest.approx(FILL)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([[-10, 10], [-9.4, 10], [12, 18]], [[-10, 10], [-10, 10], [12, 18]]),
        # Ball tails just past round values do not widen the axes by a whole step.
        ([[-10.03, 10.09], [-10.1, 10.15], [11.94, 18.06]], [[-10, 10], [-10, 10], [12, 18]]),
        ([[-4.75, 4.75], [-3.1, 2.9], [10.5, 13.5]], [[-5, 5], [-3, 3], [10.5, 13.5]]),
    ],
)
def test_axes_box_is_round_and_about_the_content(box, expected):
    np.testing.assert_allclose(nice_box(box), expected)


def test_faint_balls_are_dropped():
    p0 = np.array([0.01, 1.0, 0.5, 0.05, 0.9, 0.2])
    cloud = GaussianCloud(np.zeros((6, 3)), p0, np.ones(6))
    keep, peak = visible_balls(cloud, 0)
    assert peak == pytest.approx(np.percentile(p0, 99))
    assert keep.tolist() == [1, 4, 2, 5]  # 0.05 and 0.01 are under FAINT_BALL of the peak
    assert FAINT_BALL * peak > 0.05
    assert visible_balls(cloud, 2)[0].tolist() == [1, 4]


def test_brightest_caps_the_cloud():
    p0 = np.array([0.1, 5.0, 3.0, 0.2, 4.0])
    cloud = GaussianCloud(np.zeros((5, 3)), p0, np.ones(5))
    assert brightest(cloud, 3).tolist() == [1, 4, 2]
    assert brightest(cloud, 0).tolist() == [1, 4, 2, 3, 0]
    assert brightest(cloud, 10).tolist() == [1, 4, 2, 3, 0]


def test_an_acquisition_shows_its_truth(acquisition_file):
    result = read_viewable(acquisition_file)
    assert result.attrs["method"] == "truth"
    assert result.volume.shape == SHAPE
    assert len(result.sensor_positions) == 64


# --------------------------------------------------------------------------- pictures


def test_default_view_shows_both_tubes_and_frames_the_object(offscreen, tubes_file):
    result = read_viewable(tubes_file)
    plotter, panels = build_view([result], window_size=SIZE, off_screen=True)
    try:
        panel = panels[0]
        assert set(panel.actors) == {"volume", "sensors"}  # the volume is the default
        # The opacity really reaches the renderer (PyVista once zeroed custom tables).
        opacity = panel.actors["volume"].prop.GetScalarOpacity()
        floor, peak = panel.levels
        assert opacity.GetValue(0.3) > 0.3 and opacity.GetValue(floor / peak * 0.5) == 0.0

        image = _shot(plotter)
        lum = _luminance(image)
        background = float(np.median(lum))
        width, height = SIZE
        for name, (y0, _) in TUBES.items():
            xs = np.linspace(TUBE_X[0] + 1e-3, TUBE_X[1] - 1e-3, 15)
            centre = np.c_[xs, np.full_like(xs, y0), np.full_like(xs, TUBE_Z)] * 1e3
            cols_rows = _to_pixels(plotter, centre, height)
            assert np.all((cols_rows[:, 0] >= 0) & (cols_rows[:, 0] < width))
            values = [lum[r - 1 : r + 2, c - 1 : c + 2].max() for c, r in cols_rows]
            assert np.median(values) - background > VISIBLE_MARGIN, name

        # Where the object and the sensors land: what changes when each is hidden.
        set_visible(panels, "sensors", False)
        without_sensors = _shot(plotter)
        sensor_pixels = _changed(image, without_sensors)
        set_visible(panels, "volume", False)
        object_pixels = _changed(without_sensors, _shot(plotter))
    finally:
        plotter.close()
    columns = np.flatnonzero(object_pixels.any(axis=0))
    assert (columns[-1] - columns[0] + 1) / width >= 0.5
    assert 0 < sensor_pixels.sum() < object_pixels.sum()


def test_floor_option_clears_the_faint_tube(offscreen, tubes_file):
    plotter, panels = build_view(
        [read_viewable(tubes_file)], window_size=SIZE, off_screen=True, floor=0.4
    )
    try:
        opacity = panels[0].actors["volume"].prop.GetScalarOpacity()
        assert opacity.GetValue(0.3) == 0.0 and opacity.GetValue(0.8) > 0.3
        assert panels[0].levels[0] == pytest.approx(0.4 * panels[0].levels[1])
    finally:
        plotter.close()


def test_comparison_has_both_panels_and_one_camera(offscreen, tubes_file, acquisition_file):
    results = [read_viewable(tubes_file), read_viewable(acquisition_file)]
    plotter, panels = build_view(results, window_size=(2 * 240, 240), off_screen=True)
    try:
        assert [p.title for p in panels] == ["SlingBAG: tubes.h5", "truth: acq.h5"]
        cameras = [r.camera for r in plotter.renderers]
        assert cameras[0] is cameras[1]
        image = _shot(plotter)
    finally:
        plotter.close()
    drawn = _drawn(image)
    left, right = drawn[:, :240], drawn[:, 240:]
    assert left.mean() > 0.02 and right.mean() > 0.02


def test_comparison_of_different_regions_draws_both(offscreen, tubes_file, tmp_path):
    """One camera for scenes far apart: its clipping range must hold both."""
    from slingbag.io.native import Result

    near = read_viewable(tubes_file)
    volume = tubes_volume()
    far = Result(
        volume=Volume(volume.data, volume.origin + np.array([0.0, 0.0, 25e-3]), SPACING),
        attrs={"method": "ubp"},
        sensor_positions=planar_sensors(),
    )
    plotter, _ = build_view([near, far], window_size=(2 * 240, 240), off_screen=True)
    try:
        drawn = _drawn(_shot(plotter))
    finally:
        plotter.close()
    assert drawn[:, :240].mean() > 0.02 and drawn[:, 240:].mean() > 0.02


def test_comparison_screenshot_from_the_cli(offscreen, tubes_file, acquisition_file, tmp_path):
    shot = tmp_path / "cmp.png"
    argv = ["view", str(tubes_file), str(acquisition_file), "--screenshot", str(shot)]
    assert main(argv + ["--size", "480x240"]) == 0
    with Image.open(shot) as im:
        assert im.size == (480, 240)
        drawn = _drawn(np.asarray(im.convert("RGB"), dtype=np.float64))
    assert drawn[:, :240].mean() > 0.02 and drawn[:, 240:].mean() > 0.02


def test_slices_can_be_switched_and_dragged(offscreen, tubes_file):
    plotter, panels = build_view(
        [read_viewable(tubes_file)], window_size=SIZE, off_screen=True, slices=True
    )
    try:
        slices, widgets = panels[0].actors["slices"], panels[0].widgets
        assert len(slices) == 3 and len(widgets) == 3
        assert all(w.GetEnabled() for w in widgets)
        with_slices = _shot(plotter)
        set_visible(panels, "slices", False)
        assert not any(w.GetEnabled() for w in widgets)
        assert not any(a.GetVisibility() for a in slices)
        without = _shot(plotter)
    finally:
        plotter.close()
    assert np.abs(with_slices - without).sum(axis=-1).astype(bool).mean() > 0.05


def test_window_keys_and_check_boxes_switch_parts(offscreen, tubes_file):
    """The window's controls, driven through VTK events (no display needed)."""
    from slingbag.report.view import _add_toggles, _is_visible

    plotter, panels = build_view(
        [read_viewable(tubes_file)], window_size=SIZE, off_screen=True, slices=True
    )
    try:
        set_visible(panels, "slices", False)  # as a window starts without --slices
        _add_toggles(plotter, panels)
        interactor = plotter.iren.interactor

        def press(key):
            interactor.SetKeySym(key)
            interactor.SetKeyCode(key)
            interactor.InvokeEvent("KeyPressEvent")

        press("x")
        assert _is_visible(panels, "slices")
        assert all(w.GetEnabled() for w in panels[0].widgets)  # the planes can be dragged
        press("x")
        assert not _is_visible(panels, "slices")
        press("v")
        assert not _is_visible(panels, "volume") and _is_visible(panels, "sensors")
        press("s")
        assert not _is_visible(panels, "sensors")
    finally:
        plotter.close()


@pytest.mark.parametrize("mode", ["volume", "mip", "cloud", "all"])
def test_screenshot_is_not_blank(offscreen, result_file, tmp_path, mode, capsys):
    shot = tmp_path / f"{mode}.png"
    argv = ["view", str(result_file), "--screenshot", str(shot), "--mode", mode]
    assert main(argv + ["--size", "320x240", "--max-balls", "200"]) == 0
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (320, 240)
        assert float(np.asarray(im.convert("L"), dtype=np.float64).var()) > MIN_VARIANCE
    assert str(shot) in capsys.readouterr().out


def test_view_input_errors(result_file, tmp_path, capsys):
    volume_only = tmp_path / "v.h5"
    write_result(volume_only, volume=Volume(np.ones((3, 3, 3)), (0, 0, 0), 1e-4))
    shot = tmp_path / "x.png"
    assert main(["view", str(volume_only), "--mode", "cloud", "--screenshot", str(shot)]) == 2
    assert "cloud" in capsys.readouterr().err
    assert not shot.exists()
    assert main(["view", str(result_file), "--size", "big", "--screenshot", str(shot)]) == 2
    missing = tmp_path / "no" / "x.png"
    assert main(["view", str(result_file), "--screenshot", str(missing)]) == 2
    assert main(["view", str(result_file), "--floor", "1.2", "--screenshot", str(shot)]) == 2
    assert "--floor" in capsys.readouterr().err
    no_truth = tmp_path / "acq.h5"
    write_acquisition(no_truth, Acquisition(np.zeros((2, 8)), np.zeros((2, 3)), 40e6, 1500.0))
    assert main(["view", str(no_truth), "--screenshot", str(shot)]) == 2
    assert "truth" in capsys.readouterr().err


def test_interactive_without_display_says_use_screenshot(result_file, monkeypatch, capsys):
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check applies to Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(result_file)]) == 2
    assert "--screenshot" in capsys.readouterr().err
