"""Figures: MAPs, slices, loss history and the method comparison (matplotlib, Agg)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from slingbag.cli import main
from slingbag.core.acquisition import Acquisition
from slingbag.core.volume import Volume
from slingbag.io.native import read_result, write_acquisition, write_result
from slingbag.report import figures


def _blob_volume(shape=(30, 24, 10), spacing=0.2e-3, centre=(0.3, 0.6, 0.5), sign=1.0):
    """A Gaussian blob with a negative ring (so clipping matters) on a small grid."""
    axes = [np.linspace(0, 1, n) for n in shape]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    r2 = (gx - centre[0]) ** 2 + (gy - centre[1]) ** 2 + (gz - centre[2]) ** 2
    data = sign * np.exp(-r2 / 0.02) - 0.3 * np.exp(-r2 / 0.1)
    return Volume(data, origin=(-3e-3, -2e-3, 12e-3), spacing=spacing)


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def _informative(path, min_std=10.0):
    pixels = _png(path)
    assert pixels.std() > min_std, f"{path} looks blank"
    return pixels


def test_nice_scale_bar_lengths():
    assert figures._nice_length(20.0) == 2.0  # a fifth of 20 mm
    assert figures._nice_length(8.0) == 1.0
    assert figures._nice_length(30.0) == 5.0
    assert figures._nice_length(0.4) == pytest.approx(0.05)


def test_edges_follow_spacing_and_views_project_right_axes():
    vol = _blob_volume()
    lo, hi = figures._edges_mm(vol, 2)
    assert lo == pytest.approx(12.0 - 0.1) and hi == pytest.approx(12.0 + 10 * 0.2 - 0.1)
    top = figures._view_image(vol, "top")
    front = figures._view_image(vol, "front")
    side = figures._view_image(vol, "side")
    assert top.shape == (30, 24) and front.shape == (30, 10) and side.shape == (24, 10)
    np.testing.assert_allclose(top, np.clip(vol.data, 0, None).max(axis=2))
    assert figures._positive(vol.data).min() == 0.0 and figures._positive(vol.data).max() == 1.0


def test_maps_and_slice_with_truth(tmp_path):
    vol, truth = _blob_volume(), _blob_volume(shape=(15, 12, 5), spacing=0.4e-3)
    path = figures.maps_figure(vol, tmp_path / "maps.png", truth=truth, title="t")
    two_rows = _informative(path)
    figures.maps_figure(vol, tmp_path / "one.png")
    assert two_rows.shape[0] > _png(tmp_path / "one.png").shape[0]  # truth adds a row
    path, index = figures.slice_figure(vol, tmp_path / "slice.png", truth=truth)
    _informative(path)
    # Default slice: the truth's brightest z slice, at the same depth in the volume's grid
    # (truth voxels are twice as large, both grids start at the same z).
    brightest = int(np.argmax(np.clip(truth.data, 0, None).sum(axis=(0, 1))))
    assert index == 2 * brightest
    _, index = figures.slice_figure(vol, tmp_path / "s2.png", axis="x", index=-1)
    assert index == vol.shape[0] - 1
    with pytest.raises(figures.InputError, match="slice-index"):
        figures.slice_figure(vol, tmp_path / "bad.png", axis="y", index=99)
    assert not (tmp_path / "bad.png").exists()


def test_history_marks_the_fine_stage(tmp_path):
    history = {
        "loss": np.geomspace(1.0, 1e-3, 50),
        "balls": np.r_[np.full(30, 500), np.linspace(500, 900, 20)],
        "stage": np.r_[np.zeros(30), np.ones(20)],
    }
    _informative(figures.history_figure(history, tmp_path / "h.png"))
    with pytest.raises(figures.InputError, match="loss"):
        figures.history_figure({"loss": []}, tmp_path / "empty.png")


def test_comparison_rows_and_metrics(tmp_path):
    truth = _blob_volume()
    vols = {"truth": truth, "UBP": _blob_volume(centre=(0.35, 0.6, 0.5)), "slingbag": truth}
    m = {"UBP": {"ssim_map_z": 0.5, "ssim_map_y": 0.4, "snr_db": 20.0, "cnr": 3.0}}
    path = figures.comparison_figure(vols, tmp_path / "c.png", title="demo", metrics=m)
    three = _informative(path)
    figures.comparison_figure({"truth": truth}, tmp_path / "c1.png")
    assert three.shape[0] > 2 * _png(tmp_path / "c1.png").shape[0]
    assert "SSIM top 0.500" in figures._metrics_line(m["UBP"])
    with pytest.raises(figures.InputError):
        figures.comparison_figure({}, tmp_path / "none.png")
    with pytest.raises(figures.InputError, match="finite"):
        bad = Volume(np.full((4, 4, 4), np.nan), (0, 0, 0), 1e-4)
        figures.comparison_figure({"bad": bad}, tmp_path / "nan.png")


def test_cli_figures(tmp_path, capsys):
    vol = _blob_volume()
    history = {"loss": np.geomspace(1, 0.1, 10), "balls": np.arange(10), "stage": np.zeros(10)}
    write_result(tmp_path / "r.h5", volume=vol, history=history, attrs={"method": "slingbag"})
    acq = Acquisition(np.zeros((4, 8)), np.zeros((4, 3)), 40e6, 1500.0, truth_volume=vol)
    write_acquisition(tmp_path / "d.h5", acq)
    out = tmp_path / "figs"
    argv = ["figures", str(tmp_path / "r.h5"), "--truth", str(tmp_path / "d.h5"), "-o", str(out)]
    assert main(argv) == 0
    for name in ("maps.png", "slice_z.png", "history.png"):
        _informative(out / name)
    assert "maps.png" in capsys.readouterr().out
    # A UBP result has no history: no history figure.
    write_result(tmp_path / "u.h5", volume=vol, attrs={"method": "ubp"})
    assert main(["figures", str(tmp_path / "u.h5"), "-o", str(tmp_path / "u")]) == 0
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["maps.png", "slice_z.png"]
    assert read_result(tmp_path / "u.h5").volume is not None
    bad = ["figures", str(tmp_path / "u.h5"), "-o", str(tmp_path / "x"), "--slice-index", "50"]
    assert main(bad) == 2
    assert "slice-index" in capsys.readouterr().err


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_default_slice_is_the_one_metrics_scores(tmp_path, axis):
    from slingbag.report.metrics import metrics

    rng = np.random.default_rng(5)
    # Negative lobes (as in back-projections) and a bright slice whose raw sum is small.
    truth = Volume(rng.normal(0.0, 1.0, (12, 10, 8)).astype(np.float32), np.zeros(3), 1e-4)
    d = "xyz".index(axis)
    bright = np.zeros(truth.shape, bool)
    np.moveaxis(bright, d, 0)[3] = True
    truth.data[bright] = np.where(truth.data[bright] > 0, 50.0, -60.0)
    volume = Volume(
        truth.data + rng.normal(0, 0.1, truth.shape).astype(np.float32), truth.origin, 1e-4
    )
    expected = metrics(volume, truth, slice_axis=axis)["slice_index"]
    assert expected == 3
    _, shown = figures.slice_figure(volume, tmp_path / "s.png", truth=truth, axis=axis)
    _, alone = figures.slice_figure(truth, tmp_path / "t.png", axis=axis)
    assert shown == alone == expected
