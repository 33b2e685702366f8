"""Write a voxel volume for 3D Slicer, Fiji/ImageJ and napari: NIfTI, TIFF or NRRD.

Every format gets the voxel values as float32 and the voxel size in millimetres (these
tools' unit).  Axis ``i`` of the array is x, ``j`` y and ``k`` z, and the origin is the
centre of voxel ``[0, 0, 0]``, as in :class:`slingbag.core.volume.Volume`:

* NIfTI (``.nii``, ``.nii.gz``, nibabel): the affine holds spacing and origin (mm); the
  units are set to mm.  Slicer reads the world frame as RAS, napari and Fiji the array.
* NRRD (``.nrrd``, pynrrd): ``space directions`` and ``space origin`` in mm, the array
  written x fastest (NRRD's order).
* TIFF (``.tif``, ``.tiff``, tifffile): an ImageJ hyperstack ordered z, y, x, with the
  pixel size, the z step and the unit (mm) in ImageJ's own tags and the origin in ImageJ's
  ``xorigin/yorigin/zorigin`` (in voxels, as ImageJ keeps it).

The libraries are optional (``pip install 'slingbag[export]'``); a missing one is reported
as one line naming what to install.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError, SlingbagError
from .atomic import atomic_path

MM = 1e3
# Suffix -> (format name, module, pip package).
FORMATS = {
    ".nii.gz": ("nifti", "nibabel", "nibabel"),
    ".nii": ("nifti", "nibabel", "nibabel"),
    ".nrrd": ("nrrd", "nrrd", "pynrrd"),
    ".tif": ("tiff", "tifffile", "tifffile"),
    ".tiff": ("tiff", "tifffile", "tifffile"),
}


def format_for(path) -> str:
    """The format (``nifti``, ``nrrd``, ``tiff``) an output name asks for.

    Raises
    ------
    InputError
        For any other suffix.
    """
    name = os.fspath(path).lower()
    for suffix, (fmt, _, _) in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise InputError(
        os.fspath(path),
        None,
        "an output name ending in " + ", ".join(FORMATS),
        hint="NIfTI for Slicer/napari, TIFF for Fiji, NRRD for Slicer",
    )


def _require(module: str, package: str, fmt: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SlingbagError(
            f"writing {fmt.upper()} needs {package}: pip install 'slingbag[export]' "
            f"(or pip install {package})"
        ) from None


def export_volume(volume, path) -> Path:
    """Write ``volume`` to ``path`` (atomically) in the format its suffix names.

    Parameters
    ----------
    volume : Volume
        The voxel values and their grid; written as float32 with the grid in millimetres.
    path : str or os.PathLike
        ``.nii`` or ``.nii.gz`` (NIfTI, with nibabel), ``.nrrd`` (with pynrrd), ``.tif``
        or ``.tiff`` (an ImageJ hyperstack, with tifffile); the libraries come with
        ``pip install 'slingbag[export]'``.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        For an unknown suffix.
    SlingbagError
        When the library the format needs is not installed.
    """
    path = Path(path)
    fmt = format_for(path)
    _, module, package = next(v for k, v in FORMATS.items() if v[0] == fmt)
    lib = _require(module, package, fmt)
    data = np.ascontiguousarray(volume.data, dtype=np.float32)
    spacing = np.asarray(volume.spacing, dtype=np.float64) * MM
    origin = np.asarray(volume.origin, dtype=np.float64) * MM
    gzip = path.name.lower().endswith(".gz")
    with atomic_path(path) as tmp:
        _WRITERS[fmt](lib, tmp, data, spacing, origin, gzip=gzip)
    return path


def _write_nifti(nib, path, data, spacing, origin, gzip: bool) -> None:
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = origin
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units(xyz="mm")
    image.header["descrip"] = b"slingbag volume"
    # The sform alone is the grid; a qform says the same for readers that prefer it.
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    # nibabel picks compression from the file name; the temporary name has none.
    raw = image.to_bytes()
    if gzip:
        import gzip as gz

        raw = gz.compress(raw, compresslevel=6)
    Path(path).write_bytes(raw)


def _write_nrrd(nrrd, path, data, spacing, origin, gzip: bool) -> None:
    header = {
        "space": "right-anterior-superior",
        "space directions": np.diag(spacing),
        "space origin": origin,
        "space units": ["mm", "mm", "mm"],
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    nrrd.write(str(path), data, header, index_order="F")


def _write_tiff(tifffile, path, data, spacing, origin, gzip: bool) -> None:
    # ImageJ stores a stack as z, y, x and its origin in voxels (where world 0 lies).
    stack = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    metadata = {
        "axes": "ZYX",
        "spacing": float(spacing[2]),
        "unit": "mm",
        "xorigin": float(-origin[0] / spacing[0]),
        "yorigin": float(-origin[1] / spacing[1]),
        "zorigin": float(-origin[2] / spacing[2]),
    }
    tifffile.imwrite(
        str(path),
        stack,
        imagej=True,
        resolution=(1.0 / float(spacing[0]), 1.0 / float(spacing[1])),
        metadata=metadata,
    )


_WRITERS = {"nifti": _write_nifti, "nrrd": _write_nrrd, "tiff": _write_tiff}
