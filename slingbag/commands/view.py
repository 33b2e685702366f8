"""``slingbag view``: a 3-D view of a result (volume, cloud of balls, sensors)."""

from __future__ import annotations

import os

from ..errors import InputError


def register(subparsers) -> None:
    from ..view import MAX_BALLS, MODES

    parser = subparsers.add_parser(
        "view",
        help="3-D view of a result (PyVista)",
        description="Show a result's volume (volume rendering or MIP), its cloud of balls "
        "(spheres sized by sigma, coloured by p0) and the sensors.  In the window, check "
        "boxes and the keys v, c, s switch each part on and off.  --screenshot renders "
        "off-screen to a PNG instead (no display needed).",
    )
    parser.add_argument("result", metavar="RESULT.h5", help="result file")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="all",
        help="volume: volume rendering; mip: maximum-intensity projection; cloud: the "
        "balls; all: volume rendering and balls (default)",
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
        default="1200x900",
        help="window or screenshot size in pixels (1200x900)",
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
    from ..h5io import read_result
    from ..view import view

    size = _parse_size(args.size)
    if args.max_balls < 0:
        raise InputError("--max-balls", None, "a count >= 0", got=args.max_balls)
    if args.screenshot is not None:
        folder = os.path.dirname(os.path.abspath(args.screenshot))
        if not os.path.isdir(folder):
            raise InputError(
                "--screenshot", None, "a file in an existing folder", got=args.screenshot
            )
    result = read_result(args.result)
    path = view(
        result,
        mode=args.mode,
        screenshot=args.screenshot,
        max_balls=args.max_balls,
        window_size=size,
    )
    if path is not None:
        print(f"wrote {path}")
    return 0
