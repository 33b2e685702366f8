"""``slingbag benchmark``: does slingbag work on my array?  The independent benchmark's
phantoms simulated on the user's array and band, reconstructed by UBP and slingbag."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError

log = logging.getLogger("slingbag")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="UBP against slingbag on independent data for your array",
        description="Simulate hard-edged phantoms (vessels, vessels with tumour-like "
        "spheres, spheres alone) on ARRAY with an exact simulator that shares no code with "
        "slingbag's radiator (averaged over your elements' faces with --element), add your "
        "band and noise, reconstruct with UBP and slingbag, "
        "and print a table of SSIM, CNR, time and peak memory (figures and results.json in "
        "--out).  Phantoms sit 15 mm in front of a planar array or at the centre of a "
        "curved one.  Add mb to --methods for the model-based baseline (TV on a voxel "
        "grid): it takes about three times the default preset's time.",
    )
    p.add_argument(
        "--array",
        required=True,
        help="sensor positions: a text/CSV/npy file in metres or a preset "
        "(planar:NxN:PITCH, hemisphere-1024, ...); append @N for N random sensors",
    )
    p.add_argument("--fs", type=float, default=40e6, help="sampling rate, Hz (default 40e6)")
    p.add_argument("--samples", type=int, default=2048, help="samples per sensor (2048)")
    p.add_argument(
        "--response",
        default=None,
        metavar="CENTRE,BW",
        help="transducer band: centre Hz and fractional -6 dB bandwidth, e.g. 2e6,0.54 "
        "(its causal impulse response goes into the data and the model)",
    )
    p.add_argument(
        "--element",
        default=None,
        metavar="SPEC",
        help="your elements' faces, averaged exactly by the simulator and written to the "
        "data (slingbag models them from the file): point, disc:DIAMETER or "
        "rect:WIDTHxHEIGHT in metres (rect:W for a square), e.g. disc:3e-3; faces need "
        "the array's normals (presets, or sensors on a plane or a sphere)",
    )
    p.add_argument("--noise", type=float, default=0.01, help="noise, fraction of peak (0.01)")
    p.add_argument("--lowpass", type=float, default=None, help="anti-alias low-pass, Hz (0.3 fs)")
    p.add_argument("--sound-speed", type=float, default=1500.0, help="m/s (1500)")
    p.add_argument(
        "--methods",
        default="ubp,default",
        # mb is opt-in here: a lab's first run should take minutes, and the model-based
        # solve is ~3 x the default preset on 2 CPU cores (docs/results.md, the benchmark table).
        help="comma list: ubp, mb (model-based baseline, ~3 x the time of default) and "
        "presets (ubp,default)",
    )
    p.add_argument("-o", "--out", default="slingbag-benchmark", help="folder for the report")
    p.add_argument("--cache", default=None, help="folder to keep simulated data in")
    p.set_defaults(func=run)


def _floats(text: str, n: int, name: str, expected: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(name, None, expected, got=text) from None
    if len(values) != n:
        raise InputError(name, None, expected, got=text)
    return values


def _check_element(spec: str | None, array) -> None:
    """Refuse an ``--element`` that does not parse or that the array cannot orient."""
    from ..core.element import element_for

    if spec is not None:
        element_for(
            spec, array.normals, len(array), source="--array", field=None,
            got="none (give a preset, or positions on a plane or a sphere)",
        )  # fmt: skip


def run(args) -> int:
    from ..backend import init
    from ..benchmark import suite
    from ..core.config import preset_names

    response = None
    if args.response:
        response = _floats(args.response, 2, "--response", "CENTRE_HZ,BANDWIDTH, e.g. 2e6,0.54")
        if not (0 < response[0] < args.fs / 2 and 0.05 <= response[1] <= 2):
            raise InputError("--response", None, "0 < centre < fs/2, 0.05 <= bandwidth <= 2")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in ("ubp", "mb") and m not in preset_names() and not Path(m).is_file():
            raise InputError("--methods", None, "ubp, mb or preset names", got=m)
    if not args.fs > 0 or args.samples < 16 or args.noise < 0:
        raise InputError("--fs/--samples/--noise", None, "fs > 0, samples >= 16, noise >= 0")
    array = suite.load_case_array(args.array)  # a bad array fails here, before any work
    _check_element(args.element, array)
    init()
    cases = suite.lab_cases(
        args.array,
        fs=args.fs,
        samples=args.samples,
        response=response,
        noise=args.noise,
        lowpass=args.lowpass,
        sound_speed=args.sound_speed,
        element=args.element,
    )
    results = suite.run_suite(cases, methods, out=args.out, cache=args.cache)
    print(suite.table(results, methods))
    print(f"figures, table.md and results.json in {args.out}/")
    return 0
