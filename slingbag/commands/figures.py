"""``slingbag figures``: PNG figures of a result (MAPs, a slice, the loss history)."""

from __future__ import annotations

import os

from ..errors import InputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figures",
        help="PNG figures of a result: MAPs, a slice, the loss history",
        description="Draw the three maximum amplitude projections, one slice and (for "
        "SlingBAG reconstructions) the loss history of a result file, beside the ground "
        "truth when one is given.",
    )
    parser.add_argument("result", metavar="RESULT.h5", help="result file (ubp or reconstruct)")
    parser.add_argument(
        "--truth",
        metavar="DATA.h5",
        default=None,
        help="ground truth: a simulated acquisition (truth/volume) or a volume file",
    )
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for the PNGs")
    parser.add_argument(
        "--slice-axis", choices=("x", "y", "z"), default="z", help="axis normal to the slice (z)"
    )
    parser.add_argument(
        "--slice-index",
        type=int,
        default=None,
        help="slice index in the result's grid (default: the brightest slice)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..io.native import read_result, read_volume
    from ..report.figures import write_figures

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError("-o", None, "a folder", got=f"{args.out} (a file)")
    result = read_result(args.result)
    truth = read_volume(args.truth) if args.truth else None
    os.makedirs(args.out, exist_ok=True)
    paths = write_figures(
        result, args.out, truth=truth, slice_axis=args.slice_axis, slice_index=args.slice_index
    )
    for path in paths:
        print(f"wrote {path}")
    return 0
