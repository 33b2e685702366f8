"""``slingbag mb``: model-based reconstruction on a voxel grid (non-negative least squares
with TV, FISTA), the iterative baseline beside ``ubp`` and ``reconstruct``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import remove_leftovers
from .reconstruct import add_input_options, parse_region, read_input

log = logging.getLogger("slingbag")

#: Without --spacing the grid is the preset's resolution, coarsened to at most this many
#: voxels (about 10 s an iteration with 144 sensors x 2,048 samples on 2 CPU cores).
DEFAULT_MAX_UNKNOWNS = 250_000


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "mb",
        help="model-based reconstruction on a voxel grid (TV-regularised, baseline)",
        description="Reconstruct an acquisition by non-negative least squares with a TV "
        "penalty on a voxel grid (a gaussian ball of sigma = spacing per voxel, slingbag's "
        "radiator and the file's sensor response as the model), solved by FISTA.  The TV "
        "weight follows the discrepancy principle unless --tv is given.  The grid is the "
        "region `reconstruct` infers from the signals at the default preset's resolution "
        "(0.2 mm, coarser where that would exceed 250,000 voxels) unless --region or "
        "--spacing say otherwise.  Writes the result layout of `ubp` plus the loss history.",
    )
    p.add_argument("data", metavar="DATA", help="acquisition file (any supported format)")
    p.add_argument("-o", "--output", required=True, metavar="MB.h5", help="result file to write")
    add_input_options(p)
    p.add_argument(
        "--region",
        metavar="x0,x1,y0,y1,z0,z1",
        default=None,
        help="box to reconstruct, metres (write --region=-1e-2,... when it starts with a "
        "minus sign); default: inferred from the signals",
    )
    p.add_argument("--spacing", type=float, default=None, help="voxel size in metres")
    p.add_argument(
        "--tv",
        type=float,
        default=None,
        help="TV weight relative to max|A^T b| (default: the discrepancy principle)",
    )
    p.add_argument("--iterations", type=int, default=200, help="most iterations (200)")
    p.add_argument(
        "--subsets",
        type=int,
        default=None,
        metavar="K",
        help="ordered subsets: each iteration fits one of K shares of the sensors "
        "(default: shares of about 128 sensors, one up to 192)",
    )
    p.add_argument(
        "--tol", type=float, default=1e-3, help="relative step below which it stops (1e-3)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="write the solver state every N iterations (MB.h5.ckpt.npz)",
    )
    p.add_argument("--resume", action="store_true", help="continue from MB.h5.ckpt.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def default_spacing(lo, hi, res: float, max_unknowns: int = DEFAULT_MAX_UNKNOWNS) -> float:
    """``res``, or the coarser spacing (two significant digits, rounded up) that keeps the
    box under about ``max_unknowns`` voxels: every voxel is an unknown that costs a ball's
    forward and backward per iteration."""
    from ..baselines.ubp import _round_sig

    fit = float(np.prod(np.asarray(hi, float) - lo) / max_unknowns) ** (1 / 3)
    return float(res) if fit <= res else _round_sig(fit)


def _peak_memory() -> int:
    """The process's peak resident memory so far, bytes."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def choose_grid(args, acq):
    """The grid to solve on: ``--region`` or the region inferred from the signals, at
    ``--spacing`` or the preset's resolution made affordable (:func:`default_spacing`).

    Returns
    -------
    origin, spacing, shape
        As :func:`slingbag.core.volume.grid_for_region`.
    where : str
        Where the region came from, for the log and the result file.
    """
    from ..core.config import load_config
    from ..core.volume import grid_for_region
    from ..fit.plan import resolve_region

    cfg = load_config("default")
    res = float(cfg["region"]["res"])
    lo, hi = resolve_region(parse_region(args.region), cfg, acq, res)
    step = args.spacing or default_spacing(lo, hi, res)
    origin, spacing, shape = grid_for_region(lo, hi, step)
    where = "the --region box" if args.region else "the region inferred from the signals"
    n_vox = int(np.prod(shape))
    if n_vox > 50_000_000:
        raise InputError("--region/--spacing", None, "a grid of at most 5e7 voxels", got=shape)
    log.info(
        "model-based: grid %d x %d x %d (%d unknowns), spacing %.4g mm, from %s",
        *shape,
        n_vox,
        spacing[0] * 1e3,
        where,
    )
    return origin, spacing, shape, where


def run(args) -> int:
    from .. import __version__
    from ..backend import ensure_init
    from ..baselines.model_based import model_based_solve
    from ..io.native import write_result

    out = Path(args.output)
    if not out.parent.is_dir():
        raise InputError("-o", None, "a file in an existing folder", got=args.output)
    if args.spacing is not None and not (np.isfinite(args.spacing) and args.spacing > 0):
        raise InputError("--spacing", None, "a positive voxel size in metres", got=args.spacing)
    if args.tv is not None and not (np.isfinite(args.tv) and args.tv >= 0):
        raise InputError("--tv", None, "a non-negative weight", got=args.tv)
    if args.iterations < 1:
        raise InputError("--iterations", None, "a positive integer", got=args.iterations)
    ckpt = out.with_name(out.name + ".ckpt.npz")
    if args.resume and not ckpt.exists():
        raise InputError(str(ckpt), None, "a checkpoint to resume from", "no such file")
    acq = read_input(args)
    if args.subsets is not None and not 1 <= args.subsets <= acq.n_sensors:
        raise InputError(
            "--subsets", None, f"a number of sensor shares from 1 to {acq.n_sensors}", args.subsets
        )
    origin, spacing, shape, where = choose_grid(args, acq)
    arch = ensure_init()
    result = model_based_solve(
        acq,
        origin,
        spacing,
        shape,
        tv=args.tv,
        iterations=args.iterations,
        tol=args.tol,
        subsets=args.subsets,
        progress=not args.quiet,
        checkpoint=ckpt if (args.checkpoint_every or args.resume) else None,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    attrs = dict(result.attrs)
    attrs.update(
        {
            "source": os.path.abspath(args.data),
            "grid_from": where,
            "arch": arch,
            "time_s": float(result.attrs["seconds"]),
            "peak_memory_bytes": _peak_memory(),
            "software_version": __version__,
        }
    )
    write_result(
        out, volume=result.volume, history=result.history, attrs=attrs, sensors=acq.positions
    )
    if ckpt.exists():
        ckpt.unlink()
    remove_leftovers(ckpt)
    print(
        f"mb: {acq.n_sensors} sensors x {acq.n_samples} samples -> "
        f"{shape[0]} x {shape[1]} x {shape[2]} voxels, {result.attrs['iterations']} iterations "
        f"in {attrs['time_s']:.1f} s ({arch}), TV weight {result.attrs['tv_weight']:.3g}, "
        f"peak memory {attrs['peak_memory_bytes'] / 2**30:.2f} GiB; wrote {args.output}"
    )
    return 0
