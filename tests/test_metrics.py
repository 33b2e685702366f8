"""Quality metrics (SPEC section 6) and the `slingbag metrics` command."""

import json
import math

import h5py
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from slingbag.cli import main
from slingbag.core.cloud import GaussianCloud
from slingbag.core.volume import Volume
from slingbag.errors import InputError
from slingbag.io.native import write_result
from slingbag.report.metrics import maps, metrics, resample, ssim

SSIM_KEYS = ("ssim_map", "ssim_map_z", "ssim_map_y", "ssim_map_x", "ssim_slice")
ALL_KEYS = SSIM_KEYS + ("snr_db", "cnr")
CENTRES = np.array([[0.8e-3, 1.0e-3, 0.6e-3], [1.6e-3, 0.7e-3, 1.0e-3], [1.2e-3, 1.5e-3, 0.9e-3]])


def blobs(origin, spacing, shape):
    """Three uncut Gaussian blobs (so the background is small but not exactly zero)."""
    vol = Volume(np.zeros(shape), origin, spacing)
    grid = np.stack(np.meshgrid(*vol.axes(), indexing="ij"), axis=-1)
    data = sum(
        p * np.exp(-np.sum((grid - c) ** 2, axis=-1) / (2 * s**2))
        for c, p, s in zip(CENTRES, (1.0, 0.7, 0.5), (0.15e-3, 0.2e-3, 0.12e-3), strict=True)
    )
    return Volume(data, origin, spacing)


@pytest.fixture
def truth():
    return blobs(np.zeros(3), 0.1e-3, (24, 22, 18))


def test_identical_volumes(truth):
    m = metrics(truth, truth)
    for key in SSIM_KEYS:
        assert m[key] == pytest.approx(1.0, abs=1e-9)
    assert math.isfinite(m["snr_db"]) and m["snr_db"] > 20
    assert math.isfinite(m["cnr"]) and m["cnr"] > 5
    # default slice: the truth's brightest z plane (largest sum), near the blobs' centres
    assert m["slice_axis"] == "z"
    assert m["slice_index"] == int(np.argmax(truth.data.sum(axis=(0, 1))))


def test_worse_reconstruction_scores_lower_everywhere(truth, rng):
    light = truth.data + rng.normal(0, 0.005, truth.shape)
    heavy = gaussian_filter(truth.data, 2.0) + rng.normal(0, 0.05, truth.shape)
    good = metrics(Volume(light, truth.origin, truth.spacing), truth)
    bad = metrics(Volume(heavy, truth.origin, truth.spacing), truth)
    for key in ALL_KEYS:
        assert bad[key] < good[key], key
    assert good["ssim_map"] > 0.9


def test_scale_and_negatives_do_not_matter(truth):
    # Scaled by its own max, with negatives clipped: 5x the truth minus a negative haze that
    # clipping removes scores as well as the truth itself.
    data = 5 * truth.data
    data[truth.data < 1e-6] = -1.0
    m = metrics(Volume(data, truth.origin, truth.spacing), truth)
    assert m["ssim_map"] == pytest.approx(1.0, abs=1e-3)


def test_resample_linear_field_is_exact_and_zero_outside():
    src = Volume(np.zeros((6, 7, 8)), [1e-3, 2e-3, 3e-3], [1e-4, 2e-4, 1.5e-4])
    x, y, z = np.meshgrid(*src.axes(), indexing="ij")
    src.data = (3e3 * x - 2e3 * y + 1e3 * z + 1).astype(np.float32)
    # target: finer, offset, reaching past the source's +x face
    target = Volume(np.zeros((12, 9, 10)), [1.05e-3, 2.1e-3, 3.1e-3], [0.5e-4, 1.3e-4, 1e-4])
    out = resample(src, target)
    tx, ty, tz = np.meshgrid(*target.axes(), indexing="ij")
    inside = tx <= src.extent()[0, 1] + 1e-12
    assert (~inside).any() and inside.any()
    want = 3e3 * tx - 2e3 * ty + 1e3 * tz + 1
    np.testing.assert_allclose(out[inside], want[inside], rtol=1e-5)
    assert not out[~inside].any()


def test_resample_keeps_edges_hit_up_to_rounding():
    src = Volume(np.arange(60.0).reshape(3, 4, 5) + 1, [0.0, 0.0, 0.0], 1e-4)
    # every other voxel of src, on a grid whose last planes land a rounding error past src's
    target = Volume(np.zeros((2, 2, 3)), [1e-17, -1e-17, 0.0], 2e-4 * (1 + 1e-12))
    np.testing.assert_allclose(resample(src, target), src.data[::2, ::2, ::2], rtol=1e-6)
    same = Volume(np.zeros((3, 4, 5)), [1e-17, 0.0, 0.0], 1e-4 * (1 + 1e-12))
    np.testing.assert_allclose(resample(src, same), src.data, rtol=1e-6)


def test_metrics_on_a_different_grid(truth):
    # The same scene voxelized finer and over a larger region still matches the truth.
    fine = blobs(truth.origin - 0.3e-3, 0.05e-3, (60, 58, 50))
    m = metrics(fine, truth)
    for key in SSIM_KEYS:
        assert m[key] > 0.98, key
    # Shifted by 4 voxels along x it no longer does.
    shifted = Volume(fine.data, fine.origin + [0.4e-3, 0, 0], fine.spacing)
    assert metrics(shifted, truth)["ssim_map"] < m["ssim_map"] - 0.1


def test_snr_cnr_known_values():
    truth = Volume(np.array([1, 0.5, 0, 0, 0, 0, 0, 0.07]).reshape(2, 2, 2), [0, 0, 0], 1e-4)
    # vessels (truth > 0.1): voxels 0, 1; background (truth < 0.05): voxels 2..6; the
    # 0.07 voxel is neither.  Image after clipping and scaling by its max of 2:
    # [1, 0.5, 0.1, 0, 0.1, 0, 0.1, 0.3].
    image = Volume(np.array([2, 1, 0.2, -3, 0.2, 0, 0.2, 0.6]).reshape(2, 2, 2), [0, 0, 0], 1e-4)
    m = metrics(image, truth)
    background = np.array([0.1, 0, 0.1, 0, 0.1])
    assert m["snr_db"] == pytest.approx(20 * np.log10(1 / background.std()))
    assert m["cnr"] == pytest.approx((0.75 - background.mean()) / background.std())
    # 2 voxels wide: no SSIM window fits
    assert math.isnan(m["ssim_map"])


def test_ssim_small_images_and_noise_free_background():
    img = np.zeros((5, 4))
    img[2, 1:3] = 1
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, np.roll(img, 1, axis=0)) < 0.9
    truth = Volume(np.zeros((5, 5, 5)), [0, 0, 0], 1e-4)
    truth.data[2, 2, 2] = 1
    m = metrics(truth, truth)
    assert m["snr_db"] == math.inf and m["cnr"] == math.inf


def test_zero_or_disjoint_volumes_raise(truth):
    zero = Volume(np.zeros(truth.shape), truth.origin, truth.spacing)
    with pytest.raises(InputError, match="volume"):
        metrics(zero, truth)
    with pytest.raises(InputError, match="truth"):
        metrics(truth, zero)
    far = Volume(truth.data, truth.origin + 1.0, truth.spacing)
    with pytest.raises(InputError, match="overlap"):
        metrics(far, truth)
    with pytest.raises(InputError, match="slice_axis"):
        metrics(truth, truth, slice_axis="w")
    with pytest.raises(InputError, match="slice_index"):
        metrics(truth, truth, slice_index=99)


def test_maps(truth):
    top, front, side = maps(truth)
    assert top.shape == (24, 22) and front.shape == (24, 18) and side.shape == (22, 18)
    np.testing.assert_array_equal(top, truth.data.max(axis=2))
    np.testing.assert_array_equal(side, truth.data.max(axis=0))
    with pytest.raises(InputError):
        maps(np.zeros((0, 3, 3)))


def _truth_file(path, volume):
    """A minimal acquisition-like file: just truth/volume with its geometry."""
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("truth/volume", data=volume.data)
        ds.attrs["origin"] = volume.origin
        ds.attrs["spacing"] = volume.spacing


def test_command_table_and_json(tmp_path, truth, capsys):
    _truth_file(tmp_path / "data.h5", truth)
    write_result(tmp_path / "res.h5", volume=truth)
    assert main(["metrics", str(tmp_path / "res.h5"), "--truth", str(tmp_path / "data.h5")]) == 0
    table = capsys.readouterr().out
    assert "SSIM MAP top (z)" in table and "CNR" in table
    argv = ["metrics", str(tmp_path / "res.h5"), "--truth", str(tmp_path / "data.h5"), "--json"]
    assert main(argv + ["--slice-axis", "x"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["ssim_map"] == pytest.approx(1.0) and values["slice_axis"] == "x"


def test_command_voxelizes_a_cloud_only_result(tmp_path, truth, capsys):
    cloud = GaussianCloud(CENTRES, [1.0, 0.7, 0.5], [0.15e-3, 0.2e-3, 0.12e-3])
    _truth_file(tmp_path / "data.h5", truth)
    write_result(tmp_path / "res.h5", cloud=cloud)
    argv = ["metrics", str(tmp_path / "res.h5"), "--truth", str(tmp_path / "data.h5"), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["ssim_map"] > 0.9


def test_command_without_truth_is_one_line(tmp_path, truth, capsys):
    write_result(tmp_path / "res.h5", volume=truth)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("signals", data=np.zeros((2, 4), np.float32))
    assert main(["metrics", str(tmp_path / "res.h5"), "--truth", str(tmp_path / "data.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slingbag: error:") and "truth/volume" in err and "\n" not in err
