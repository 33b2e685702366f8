"""`slingbag reconstruct-series FRAME.h5 [...] -o SERIES.h5`: warm-started frame series."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from .reconstruct import add_element_option, parse_region

log = logging.getLogger("slingbag")


def register(sub):
    p = sub.add_parser(
        "reconstruct-series",
        help="reconstruct a series of frames, each warm-started from the one before",
        description="Reconstruct every frame of FRAMES (files, folders of .h5 files, or "
        "multi-frame files) on one grid: frame 0 cold (--config), every later frame from "
        "its predecessor's cloud with a short fine stage (--warm-config).  Chunks of "
        "consecutive frames run in parallel on Dask workers; finished chunks are kept in "
        "OUT.parts/ until the series is complete, so a rerun resumes.",
    )
    p.add_argument("frames", nargs="+", metavar="FRAME", help="acquisition file(s) or folder")
    p.add_argument("-o", "--output", required=True, help="series HDF5 to write")
    p.add_argument(
        "--config", default="default", help="preset or TOML file of the cold start of frame 0"
    )
    p.add_argument(
        "--warm-config", default="warm", help="preset or TOML file of the warm-started frames"
    )
    p.add_argument("--iterations", type=int, default=None, help="iterations of frame 0")
    p.add_argument(
        "--warm-iterations", type=int, default=None, help="iterations of each warm frame"
    )
    p.add_argument(
        "--region",
        default=None,
        help="x0,x1,y0,y1,z0,z1 in metres (default: inferred once from frame 0)",
    )
    p.add_argument("--spacing", type=float, default=None, help="output voxel size in metres")
    p.add_argument("--seed", type=int, default=None, help="random seed (frame k: seed + k)")
    p.add_argument(
        "--chunk", type=int, default=8, metavar="N", help="consecutive frames per task (8)"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: one per core)"
    )
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="use a running Dask scheduler"
    )
    add_element_option(p, "the sensors' faces of every frame, overriding the files'")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..series import expand_inputs, reconstruct_series

    out = Path(args.output)
    if not out.parent.exists():
        raise InputError(str(out), None, "an output path in an existing folder", "no such folder")
    for name in ("iterations", "warm_iterations", "chunk", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError("--" + name.replace("_", "-"), None, "a positive integer", value)
    frames = expand_inputs(args.frames)
    if args.element is not None:
        frames = [replace(r, element=args.element) for r in frames]
    # Every frame is checked here, before any work starts: a bad one is one line and
    # leaves nothing behind, not a failed chunk an hour in.
    for ref in frames:
        ref.load()
    result = reconstruct_series(
        frames,
        args.config,
        warm_config=args.warm_config,
        region=parse_region(args.region),
        spacing=args.spacing,
        iterations=args.iterations,
        warm_iterations=args.warm_iterations,
        seed=args.seed,
        chunk=args.chunk,
        workers=args.workers,
        scheduler=args.scheduler,
        output=out,
        progress=not args.quiet,
        arch=args.arch,
    )
    log.info(
        "wrote %s: %d frames of %s voxels, %.2f s per frame",
        out,
        result.n_frames,
        "x".join(map(str, result.volumes.shape[1:])),
        float(result.frame_seconds.mean()),
    )
    return 0
