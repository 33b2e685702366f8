"""``slingbag view``: a 3-D view of results (volume, cloud of balls, sensors), side by side."""

from __future__ import annotations

import os

from ..errors import InputError


def register(subparsers) -> None:
    from ..report.view import DEFAULT_MODE, MAX_BALLS, MODES

    parser = subparsers.add_parser(
        "view",
        help="3-D view of results, side by side (PyVista)",
        description="Show a result's volume (volume rendering or MIP, colour and opacity "
        "from its histogram), its cloud of balls (spheres sized by sigma, coloured and "
        "faded by p0) and the sensors, framed from the sensors' side.  Several files are "
        "shown side by side with one camera and titles; an acquisition file shows its "
        "truth.  In the window, check boxes and the keys v, c, s, x switch the volume, "
        "balls, sensors and three draggable slice planes on and off.  --screenshot renders "
        "the same layout off-screen to a PNG (no display needed).",
    )
    parser.add_argument(
        "results",
        metavar="RESULT.h5",
        nargs="+",
        help="result files (or acquisitions, for their truth), shown side by side",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULT_MODE,
        help="volume: volume rendering (default); mip: maximum-intensity projection; "
        "cloud: the balls; all: volume rendering and balls",
    )
    parser.add_argument(
        "--slices",
        action="store_true",
        help="start with three orthogonal slice planes shown (drag them in the window)",
    )
    parser.add_argument(
        "--floor",
        type=float,
        default=None,
        metavar="F",
        help="make each volume transparent below this fraction of its peak, in [0, 1) "
        "(default: from the volume's histogram, 0.05-0.1)",
    )
    parser.add_argument(
        "--screenshot", metavar="FILE.png", default=None, help="render off-screen to this PNG"
    )
    parser.add_argument(
        "--max-balls",
        type=int,
        default=MAX_BALLS,
        help=f"draw at most this many balls, the brightest first (default {MAX_BALLS}; 0: all)",
    )
    parser.add_argument(
        "--size",
        metavar="WxH",
        default=None,
        help="window or screenshot size in pixels (1200x900; 640x560 per panel for "
        "several results)",
    )
    parser.set_defaults(func=run)


def _parse_size(text: str) -> tuple[int, int]:
    expected = "WxH in pixels, each in [64, 8192] (e.g. 1200x900)"
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError("--size", None, expected, got=text) from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise InputError("--size", None, expected, got=text)
    return w, h


def run(args) -> int:
    from ..report.view import read_viewable, view

    size = None if args.size is None else _parse_size(args.size)
    if args.floor is not None and not 0.0 <= args.floor < 1.0:
        raise InputError("--floor", None, "a fraction of the peak in [0, 1)", got=args.floor)
    if args.max_balls < 0:
        raise InputError("--max-balls", None, "a count >= 0", got=args.max_balls)
    if args.screenshot is not None:
        folder = os.path.dirname(os.path.abspath(args.screenshot))
        if not os.path.isdir(folder):
            raise InputError(
                "--screenshot", None, "a file in an existing folder", got=args.screenshot
            )
    results = [read_viewable(path) for path in args.results]
    path = view(
        results,
        mode=args.mode,
        screenshot=args.screenshot,
        max_balls=args.max_balls,
        window_size=size,
        slices=args.slices,
        floor=args.floor,
    )
    if path is not None:
        print(f"wrote {path}")
    return 0
