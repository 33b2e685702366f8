"""``slingbag ubp``: universal back-projection of an acquisition (the classical baseline)."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..errors import InputError
from .reconstruct import add_input_options, parse_region, read_input

log = logging.getLogger("slingbag")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ubp",
        help="universal back-projection (baseline reconstruction)",
        description="Reconstruct an acquisition with universal back-projection (Xu & Wang "
        "2005) and write a result file with the volume.  The grid defaults to the file's "
        "truth volume, else a region inferred from the array and the time window.",
    )
    parser.add_argument("data", metavar="DATA", help="acquisition file (any supported format)")
    add_input_options(parser)
    parser.add_argument(
        "-o", "--output", required=True, metavar="UBP.h5", help="result file to write"
    )
    parser.add_argument(
        "--region",
        metavar="x0,x1,y0,y1,z0,z1",
        default=None,
        help="box to reconstruct, metres (write --region=-1e-2,... when it starts with a "
        "minus sign)",
    )
    parser.add_argument(
        "--spacing", type=float, default=None, help="voxel size in metres (default: see above)"
    )
    parser.add_argument(
        "--normalize",
        choices=("weights", "omega0"),
        default="weights",
        help="divide by the per-voxel sum of solid-angle weights (default) or by Omega_0",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from .._version import __version__
    from ..backend import ensure_init
    from ..baselines.ubp import default_grid, infer_geometry, ubp
    from ..core.volume import grid_for_region
    from ..io.native import write_result

    if args.spacing is not None and not (np.isfinite(args.spacing) and args.spacing > 0):
        raise InputError("--spacing", None, "a positive voxel size in metres", got=args.spacing)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise InputError("-o", None, "a file in an existing folder", got=args.output)
    region = parse_region(args.region)
    acq = read_input(args)
    if acq.faces is not None:
        log.info(
            "ubp: sensor faces %s not modelled: UBP back-projects as from points",
            acq.faces.describe(),
        )

    if region is not None:
        spacing = args.spacing
        if spacing is None:
            spacing = default_grid(acq)[1]
        origin, spacing, shape = grid_for_region(region[0], region[1], spacing)
        where = "the --region box"
    else:
        origin, spacing, shape, where = default_grid(acq, args.spacing)
    n_vox = int(np.prod(shape))
    if n_vox > 200_000_000:
        raise InputError("--region/--spacing", None, "a grid of at most 2e8 voxels", got=f"{shape}")
    log.info(
        "ubp: grid %d x %d x %d, spacing %s mm, from %s",
        *shape,
        "/".join(f"{s * 1e3:.4g}" for s in spacing),
        where,
    )
    grid_centre = origin + (np.asarray(shape) - 1) / 2 * spacing
    geom = infer_geometry(acq.positions, grid_centre, normals=acq.normals, areas=acq.areas)
    log.info(
        "ubp: %s array of %d sensors (%s, normals %s), Omega_0 = %d pi, normalised by %s",
        geom.kind,
        acq.n_sensors,
        "closed" if geom.closed else "open",
        "from the file" if acq.normals is not None else "inferred",
        4 if geom.closed else 2,
        "the per-voxel sum of weights" if args.normalize == "weights" else "Omega_0",
    )
    arch = ensure_init()
    t = time.perf_counter()
    volume = ubp(
        acq,
        origin,
        spacing,
        shape,
        normals=geom.normals,
        areas=geom.areas,
        closed=geom.closed,
        normalize=args.normalize,
    )
    seconds = time.perf_counter() - t
    attrs = {
        "method": "ubp",
        "source": os.path.abspath(args.data),
        "array_kind": geom.kind,
        "closed": bool(geom.closed),
        "omega0": float(geom.omega0),
        "normalize": args.normalize,
        "grid_from": where,
        "arch": arch,
        "time_s": float(seconds),
        "software_version": __version__,
    }
    write_result(args.output, volume=volume, attrs=attrs, sensors=acq.positions)
    print(
        f"ubp: {acq.n_sensors} sensors x {acq.n_samples} samples -> "
        f"{shape[0]} x {shape[1]} x {shape[2]} voxels in {seconds:.2f} s ({arch}); "
        f"wrote {args.output}"
    )
    return 0
