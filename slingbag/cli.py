"""Command-line interface: a thin layer over the public API.

Each subcommand lives in ``slingbag/commands/<name>.py`` with two functions,
``register(subparsers)`` (adds its parser) and ``run(args)`` (does the work, returns an exit
code).  Input problems raise :class:`slingbag.errors.SlingbagError`; they are printed here as
one line and end with exit code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import SlingbagError

# Order is the order of `slingbag --help`.
COMMAND_MODULES = [
    "demo",
    "simulate",
    "reconstruct",
    "reconstruct_series",
    "ubp",
    "mb",
    "metrics",
    "view",
    "export",
    "figures",
    "convert",
    "bench",
    "benchmark",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other input error
        self.exit(2, f"slingbag: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _Parser(
        prog="slingbag",
        description="3D photoacoustic reconstruction with Gaussian balls (SlingBAG).",
    )
    parser.add_argument("--version", action="version", version=f"slingbag {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--arch",
        default=None,
        help="taichi backend: auto (default), cpu, cuda, vulkan, metal; env SLINGBAG_ARCH",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.commands.{name}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.arch:
            from .backend import init

            init(args.arch)
        return int(args.func(args) or 0)
    except SlingbagError as exc:
        if args.debug:
            raise
        print(f"slingbag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slingbag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
