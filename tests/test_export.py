"""``slingbag export``: NIfTI, TIFF and NRRD read back by nibabel, tifffile and pynrrd."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from slingbag.cli import main
from slingbag.core.cloud import GaussianCloud
from slingbag.core.volume import Volume
from slingbag.io.export import export_volume, format_for
from slingbag.io.native import write_result

# Uneven shape and spacing and an off-centre origin, so swapped axes cannot pass.
SPACING = np.array([0.2e-3, 0.25e-3, 0.1e-3])
ORIGIN = np.array([-3.1e-3, 2.0e-3, 11.5e-3])


@pytest.fixture(scope="module")
def volume() -> Volume:
    data = np.random.default_rng(7).random((7, 5, 4)).astype(np.float32)
    return Volume(data, ORIGIN, SPACING)


@pytest.fixture(scope="module")
def result_file(volume, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "result.h5"
    write_result(path, volume=volume, attrs={"method": "slingbag"})
    return path


@pytest.mark.parametrize("name", ["out.nii.gz", "out.nii"])
def test_nifti_round_trip(volume, result_file, tmp_path, name, capsys):
    nib = pytest.importorskip("nibabel")
    out = tmp_path / name
    assert main(["export", str(result_file), str(out)]) == 0
    assert "7x5x4 voxels of 0.2, 0.25, 0.1 mm" in capsys.readouterr().out
    image = nib.load(out)
    np.testing.assert_array_equal(np.asarray(image.dataobj), volume.data)
    np.testing.assert_allclose(image.header.get_zooms(), SPACING * 1e3, rtol=1e-6)
    np.testing.assert_allclose(image.affine[:3, 3], ORIGIN * 1e3, rtol=1e-6)
    np.testing.assert_allclose(image.affine[:3, :3], np.diag(SPACING * 1e3), rtol=1e-6)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert (out.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_nrrd_round_trip(volume, result_file, tmp_path):
    nrrd = pytest.importorskip("nrrd")
    out = tmp_path / "out.nrrd"
    assert main(["export", str(result_file), str(out)]) == 0
    data, header = nrrd.read(str(out))
    np.testing.assert_array_equal(data, volume.data)
    np.testing.assert_allclose(header["space directions"], np.diag(SPACING * 1e3), rtol=1e-9)
    np.testing.assert_allclose(header["space origin"], ORIGIN * 1e3, rtol=1e-9)
    assert list(header["space units"]) == ["mm", "mm", "mm"]


@pytest.mark.parametrize("name", ["out.tif", "out.tiff"])
def test_tiff_round_trip(volume, result_file, tmp_path, name):
    tifffile = pytest.importorskip("tifffile")
    out = tmp_path / name
    assert main(["export", str(result_file), str(out)]) == 0
    with tifffile.TiffFile(out) as tif:
        stack = tif.asarray()
        meta = tif.imagej_metadata
        page = tif.pages[0]
        xres = page.tags["XResolution"].value
        yres = page.tags["YResolution"].value
    # ImageJ order is z, y, x.
    np.testing.assert_array_equal(np.transpose(stack, (2, 1, 0)), volume.data)
    pixel = np.array([xres[1] / xres[0], yres[1] / yres[0], meta["spacing"]])
    np.testing.assert_allclose(pixel, SPACING * 1e3, rtol=1e-6)
    assert meta["unit"] == "mm"
    origin_voxels = np.array([meta["xorigin"], meta["yorigin"], meta["zorigin"]])
    np.testing.assert_allclose(-origin_voxels * pixel, ORIGIN * 1e3, rtol=1e-6)


def test_export_writes_an_acquisitions_truth(tmp_path):
    pytest.importorskip("nrrd")
    import nrrd

    from slingbag.core.acquisition import Acquisition
    from slingbag.io.native import write_acquisition

    truth = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), ORIGIN, SPACING)
    acq = tmp_path / "acq.h5"
    write_acquisition(
        acq, Acquisition(np.zeros((2, 8)), np.zeros((2, 3)), 40e6, 1500.0, truth_volume=truth)
    )
    out = tmp_path / "truth.nrrd"
    assert main(["export", str(acq), str(out)]) == 0
    np.testing.assert_array_equal(nrrd.read(str(out))[0], truth.data)


def test_export_input_errors(result_file, tmp_path, capsys):
    assert main(["export", str(result_file), str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert ".nii.gz" in err and ".tif" in err and ".nrrd" in err
    assert not (tmp_path / "out.png").exists()
    cloud_only = tmp_path / "cloud.h5"
    write_result(cloud_only, cloud=GaussianCloud(np.zeros((2, 3)), np.ones(2), np.ones(2) * 1e-4))
    assert main(["export", str(cloud_only), str(tmp_path / "c.nrrd")]) == 2
    assert "volume" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.h5"), str(tmp_path / "m.nrrd")]) == 2
    assert main(["export", str(result_file), str(tmp_path / "no" / "x.nrrd")]) == 2


@pytest.mark.parametrize(
    ("name", "module", "package"),
    [
        ("x.nii.gz", "nibabel", "nibabel"),
        ("x.tif", "tifffile", "tifffile"),
        ("x.nrrd", "nrrd", "pynrrd"),
    ],
)
def test_missing_library_says_what_to_install(
    result_file, tmp_path, monkeypatch, capsys, name, module, package
):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    assert main(["export", str(result_file), str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"pip install {package}" in err and "slingbag[export]" in err
    assert not (tmp_path / name).exists()


def test_format_for_names():
    assert format_for("a/B.NII.GZ") == "nifti"
    assert format_for("b.nii") == "nifti"
    assert format_for("c.tiff") == "tiff"
    assert format_for("d.nrrd") == "nrrd"


def test_export_volume_api(volume, tmp_path):
    pytest.importorskip("nibabel")
    path = export_volume(volume, tmp_path / "api.nii.gz")
    assert path.exists() and not list(tmp_path.glob(".*.tmp"))
