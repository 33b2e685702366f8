"""``slingbag export``: a result's volume as NIfTI, TIFF or NRRD (Slicer, Fiji, napari)."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a volume as NIfTI, TIFF or NRRD (3D Slicer, Fiji, napari)",
        description="Write the voxel volume of a result file (or the truth volume of an "
        "acquisition) with its voxel size and origin in millimetres, in the format the "
        "output name asks for: .nii/.nii.gz (NIfTI, nibabel), .tif/.tiff (ImageJ TIFF, "
        "tifffile) or .nrrd (NRRD, pynrrd).  The libraries are optional: pip install "
        "'slingbag[export]'.  The cloud of balls is already written as PLY by reconstruct.",
    )
    parser.add_argument("result", metavar="RESULT.h5", help="result (or acquisition) file")
    parser.add_argument("output", metavar="OUT", help="OUT.nii.gz, OUT.nii, OUT.tif or OUT.nrrd")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..io.export import export_volume, format_for
    from ..io.native import read_volume

    format_for(args.output)  # a bad name fails before the file is read
    volume = read_volume(args.result)
    path = export_volume(volume, args.output)
    shape = "x".join(str(n) for n in volume.shape)
    spacing = ", ".join(f"{v * 1e3:g}" for v in volume.spacing)
    print(f"wrote {path} ({shape} voxels of {spacing} mm)")
    return 0
