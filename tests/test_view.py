"""``slingbag view --screenshot``: off-screen PyVista rendering without a display."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from slingbag.cli import main
from slingbag.cloud import GaussianCloud
from slingbag.h5io import write_result
from slingbag.view import brightest
from slingbag.volume import Volume

# A blank (single-colour) frame has zero variance; a drawn scene has far more.
MIN_VARIANCE = 20.0

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


@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    rng = np.random.default_rng(3)
    shape = (24, 24, 10)
    axes = [np.linspace(-1, 1, n) for n in shape]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    data = np.exp(-((gx - 0.2 * np.sin(3 * gy)) ** 2 + gz**2) / 0.05) + 0.02 * rng.random(shape)
    volume = Volume(data, origin=(-2.4e-3, -2.4e-3, 12e-3), spacing=0.2e-3)
    n = 400
    xyz = np.c_[rng.uniform(-2e-3, 2e-3, (n, 2)), rng.uniform(12e-3, 14e-3, n)]
    cloud = GaussianCloud(xyz, rng.uniform(0.1, 1.0, n), rng.uniform(0.1e-3, 0.3e-3, n))
    g = (np.arange(4) - 1.5) * 3e-3
    sensors = np.array([[x, y, 0.0] for x in g for y in g])
    path = tmp_path_factory.mktemp("view") / "result.h5"
    write_result(path, volume=volume, cloud=cloud, sensors=sensors, attrs={"method": "slingbag"})
    return path


def _variance(path) -> float:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return float(np.asarray(im.convert("L"), dtype=np.float64).var())


def test_brightest_caps_the_cloud():
    p0 = np.array([0.1, 5.0, 3.0, 0.2, 4.0])
    cloud = GaussianCloud(np.zeros((5, 3)), p0, np.ones(5))
    assert brightest(cloud, 3).tolist() == [1, 4, 2]
    assert brightest(cloud, 0).tolist() == [1, 4, 2, 3, 0]
    assert brightest(cloud, 10).tolist() == [1, 4, 2, 3, 0]


@pytest.mark.parametrize("mode", ["all", "mip", "cloud"])
def test_screenshot_is_not_blank(offscreen, result_file, tmp_path, mode, capsys):
    shot = tmp_path / f"{mode}.png"
    argv = ["view", str(result_file), "--screenshot", str(shot), "--mode", mode]
    assert main(argv + ["--size", "320x240", "--max-balls", "200"]) == 0
    with Image.open(shot) as im:
        assert im.size == (320, 240)
    assert _variance(shot) > MIN_VARIANCE
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


def test_interactive_without_display_says_use_screenshot(result_file, monkeypatch, capsys):
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check applies to Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(result_file)]) == 2
    assert "--screenshot" in capsys.readouterr().err
