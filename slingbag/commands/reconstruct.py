"""`slingbag reconstruct DATA.h5 -o RECON.h5`: SlingBAG reconstruction of one frame."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from ..io.atomic import remove_leftovers

log = logging.getLogger("slingbag")


def register(sub):
    p = sub.add_parser(
        "reconstruct",
        help="fit a cloud of Gaussian balls to one frame of signals",
        description="Reconstruct the initial pressure of DATA with SlingBAG and write the "
        "cloud, the voxel volume and the loss history to OUT (plus OUT's .ply beside it).",
    )
    p.add_argument("data", help="acquisition file (HDF5, IPASC, PATATO or the text layout)")
    p.add_argument("-o", "--output", required=True, help="result HDF5 to write")
    p.add_argument(
        "--config", default="default", help="preset name (default, fast, paper) or a TOML file"
    )
    p.add_argument("--iterations", type=int, default=None, help="total iterations")
    p.add_argument(
        "--region",
        default=None,
        help="x0,x1,y0,y1,z0,z1 in metres, e.g. --region=-1e-2,1e-2,-1e-2,1e-2,0.012,0.018 "
        "(default: inferred from the signals)",
    )
    p.add_argument("--spacing", type=float, default=None, help="output voxel size in metres")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    add_input_options(p)
    p.add_argument(
        "--calibrate",
        default=None,
        metavar="LIST",
        help="learn acquisition parameters too: comma list of sound_speed, t0, gain, response",
    )
    p.add_argument(
        "--calibration-passes",
        type=int,
        default=None,
        metavar="N",
        help="with sound_speed or t0: reconstructions in turn, each from a fresh cloud at "
        "the values the last learned (preset default 2)",
    )
    p.add_argument(
        "--response",
        default=None,
        metavar="SPEC",
        help="sensor response in the model: 'file' (sensors/impulse_response; used by "
        "default when the file has one), 'none', or 'CENTRE_HZ,FRACTIONAL_BW' for a "
        "band-pass, e.g. 2e6,0.55",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="write the optimiser state every N iterations (OUT.ckpt.npz)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT.ckpt.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_region(text):
    """``--region`` as ``(lo, hi)``, or None when not given (see
    :func:`slingbag.core.geometry.parse_region`)."""
    from ..core.geometry import parse_region as parse

    return None if text is None else parse(text)


def add_input_options(p):
    """Options every command that reads an acquisition shares."""
    p.add_argument("--frame", type=int, default=0, help="frame of a multi-frame file")
    p.add_argument("--wavelength", type=int, default=0, help="wavelength of a multi-λ file")
    p.add_argument("--fs", type=float, default=None, help="override the sampling rate (Hz)")
    p.add_argument("--sound-speed", type=float, default=None, help="override c (m/s)")
    add_element_option(p, "override the sensors' faces the file records")


def add_element_option(p, what: str):
    """``--element point|disc:D|rect:WxH`` (metres), the same face for every sensor."""
    p.add_argument(
        "--element",
        default=None,
        metavar="SPEC",
        help=f"{what}: point, disc:DIAMETER or rect:WIDTHxHEIGHT in metres, e.g. disc:3e-3 "
        "(disc and rect need sensor normals)",
    )


def read_input(args):
    """The acquisition named by ``args.data`` in any supported format, with ``--element``
    replacing its sensors' faces."""
    from ..io.formats import load_acquisition

    return load_acquisition(
        args.data,
        frame=args.frame,
        wavelength=args.wavelength,
        fs=args.fs,
        sound_speed=args.sound_speed,
        element=args.element,
    )


def _overrides(args) -> dict:
    over = {}
    if args.calibrate:
        over["calibrate"] = {"params": [p.strip() for p in args.calibrate.split(",") if p]}
    if args.calibration_passes is not None:
        over.setdefault("calibrate", {})["passes"] = args.calibration_passes
    if args.response:
        if args.response in ("file", "none"):
            over["response"] = {"kind": args.response}
        else:
            try:
                centre, bw = (float(v) for v in args.response.split(","))
            except ValueError:
                raise InputError(
                    "--response", None, "'file', 'none' or CENTRE_HZ,FRACTIONAL_BW", args.response
                ) from None
            over["response"] = {"kind": "bandpass", "centre": centre, "bandwidth": bw}
    return over


def run(args) -> int:
    from ..core.config import load_config
    from ..fit.reconstruct import reconstruct
    from ..io.native import write_result
    from ..io.ply import write_ply

    out = Path(args.output)
    if not out.parent.exists():
        raise InputError(str(out), None, "an output path in an existing folder", "no such folder")
    if args.iterations is not None and args.iterations < 1:
        raise InputError("--iterations", None, "a positive integer", args.iterations)
    cfg = load_config(args.config, overrides=_overrides(args))
    acq = read_input(args)
    ckpt = out.with_name(out.name + ".ckpt.npz")
    if args.resume and not ckpt.exists():
        raise InputError(str(ckpt), None, "a checkpoint to resume from", "no such file")
    rec = reconstruct(
        acq,
        cfg,
        region=parse_region(args.region),
        spacing=args.spacing,
        iterations=args.iterations,
        seed=args.seed,
        progress=not args.quiet,
        checkpoint=ckpt if (args.checkpoint_every or args.resume) else None,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    attrs = dict(rec.attrs)
    attrs["source"] = str(args.data)
    write_result(
        out,
        volume=rec.volume,
        cloud=rec.cloud,
        history=rec.history,
        attrs=attrs,
        sensors=acq.positions,
    )
    ply = out.with_suffix(".ply")
    write_ply(ply, rec.cloud)
    if ckpt.exists():
        ckpt.unlink()
    remove_leftovers(ckpt)  # a run killed while checkpointing leaves a temporary file
    log.info(
        "wrote %s (%d balls, volume %s) and %s",
        out,
        rec.cloud.n,
        "x".join(map(str, rec.volume.shape)),
        ply,
    )
    return 0
