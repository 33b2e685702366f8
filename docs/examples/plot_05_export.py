"""
Files: save, read, export
=========================

Write an acquisition, a result and a point cloud in slingbag's own formats, read them back,
and export the volume for 3D Slicer, Fiji/ImageJ and napari.  The layouts are described in
:doc:`/formats`.
"""

# %%
import tempfile
from pathlib import Path

import numpy as np

import slingbag

slingbag.init("cpu")
folder = Path(tempfile.mkdtemp())

region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = slingbag.vessels_phantom(region=region, spacing=0.2e-3, seed=1)
acq = slingbag.simulate(
    phantom.cloud, "planar:6x6:2e-3", n_samples=512, noise=0.01, seed=0
)

# %%
# Acquisitions
# ------------
# One HDF5 file per frame: signals, sensor positions, fs, sound speed, t0 and, for
# simulated data, the truth.  The command line's ``slingbag simulate`` writes the same.
slingbag.write_acquisition(folder / "data.h5", acq)
back = slingbag.read_acquisition(folder / "data.h5")
print(back.signals.shape, back.fs, back.sound_speed)
print(back.truth_cloud.n, "truth balls")
assert np.array_equal(back.signals, acq.signals)

# %%
# Files from other tools are read by their content, whatever their name:
# :func:`slingbag.detect_format` says which layout a file has, :func:`slingbag.read_any`
# reads any of them (IPASC, PATATO-style HDF5, the SlingBAG paper's text files).
slingbag.write_ipasc(folder / "data.ipasc.h5", acq)
print(slingbag.detect_format(folder / "data.ipasc.h5"))
ipasc = slingbag.read_any(folder / "data.ipasc.h5")
print("same signals:", np.allclose(ipasc.signals, acq.signals))

# %%
# Results and point clouds
# ------------------------
# A result file holds the cloud, the volume, the loss history and the attributes of the
# run (configuration, region, timings).  The cloud also goes to PLY, which point-cloud
# tools (CloudCompare, MeshLab, Open3D) read.
config = slingbag.load_config("fast", overrides={"init": {"balls": 1000}})
rec = slingbag.reconstruct(
    acq, config, region=region, iterations=120, seed=0, progress=False
)
slingbag.write_result(
    folder / "recon.h5",
    volume=rec.volume,
    cloud=rec.cloud,
    history=rec.history,
    attrs=rec.attrs,
    sensors=acq.array,
)
result = slingbag.read_result(folder / "recon.h5")
n_iterations = len(result.history["loss"])
print(result.attrs["method"], result.volume.shape, n_iterations, "iterations")

slingbag.write_ply(folder / "recon.ply", rec.cloud)
cloud = slingbag.read_ply(folder / "recon.ply")
print(cloud.n, "balls; largest sigma", f"{cloud.sigma.max() * 1e6:.0f} µm")

# %%
# Exported volumes
# ----------------
# :func:`slingbag.export_volume` picks the format from the suffix: NIfTI (``.nii``,
# ``.nii.gz``), NRRD (``.nrrd``) or an ImageJ TIFF (``.tif``), float32 with the voxel
# size and origin in millimetres.  They need ``pip install "slingbag[export]"``.
for name in ("recon.nii.gz", "recon.nrrd", "recon.tif"):
    path = slingbag.export_volume(rec.volume, folder / name)
    print(f"{path.name:14s} {path.stat().st_size / 1024:6.1f} KiB")

# %%
# Read one back with its own library, to see what another tool sees:
import nibabel  # noqa: E402

image = nibabel.load(folder / "recon.nii.gz")
print(image.shape, "voxel size (mm):", image.header.get_zooms())
print("origin (mm):", image.affine[:3, 3], "=", rec.volume.origin * 1e3)
