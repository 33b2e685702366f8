"""``slingbag simulate``: signals a sensor array would record from a phantom."""

from __future__ import annotations

import logging
import os

import numpy as np

from ..core.cloud import MODELS
from ..core.geometry import parse_region
from ..errors import InputError
from .reconstruct import add_element_option

log = logging.getLogger("slingbag")


def _radiator(args):
    from ..model.radiator import RadiatorModel

    k = args.smoothing
    if k is not None and k != "paper":
        try:
            k = float(k)
        except ValueError:
            raise InputError("--smoothing", None, "a number (1/m) or 'paper'", k) from None
        if not k > 0:
            raise InputError("--smoothing", None, "a positive constant in 1/m", k)
    return RadiatorModel(args.model, smoothing=k, algorithm="split")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate an acquisition from a phantom",
        description="Simulate the signals a sensor array records from a phantom and write "
        "them, with the ground truth, to an acquisition HDF5 file.",
    )
    parser.add_argument(
        "phantom", metavar="PHANTOM", help="'vessels' (built-in), a .ply cloud or an .h5 volume"
    )
    parser.add_argument(
        "--array",
        required=True,
        metavar="PRESET|FILE",
        help="sensor array: a preset (planar-576, hemisphere-1024, "
        "planar:NxM:PITCH...) or a file of N x 3 positions in metres",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT.h5", help="acquisition file to write"
    )
    parser.add_argument(
        "--model",
        choices=tuple(MODELS),
        default="gaussian",
        help="radiator model (default gaussian)",
    )
    parser.add_argument(
        "--smoothing",
        default=None,
        metavar="K",
        help="shells: erf smoothing constant in 1/m (default fs/c, one sample's travel); "
        "'paper' for the paper's 1e6",
    )
    parser.add_argument("--fs", type=float, default=40e6, help="sampling rate, Hz (40e6)")
    parser.add_argument("--samples", type=int, default=4096, help="samples per sensor (4096)")
    parser.add_argument("--sound-speed", type=float, default=1500.0, help="m/s (1500)")
    parser.add_argument(
        "--t0", type=float, default=0.0, help="time of sample 0 after the laser pulse, s (0)"
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="white noise std as a fraction of the peak signal (0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of phantom and noise (0)")
    parser.add_argument(
        "--region",
        metavar="x0,x1,y0,y1,z0,z1",
        default=None,
        help="phantom region in metres (vessels only); write --region=-1e-2,... "
        "when it starts with a minus sign",
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=None,
        help="phantom voxel size in metres (vessels only, 1e-4)",
    )
    parser.add_argument(
        "--band-limit",
        metavar="FLO,FHI",
        default=None,
        help="band-pass the signals, Hz (e.g. 0.5e6,4e6)",
    )
    add_element_option(parser, "the sensors' faces, averaged over and written to the file")
    parser.set_defaults(func=run)


def _parse_floats(text: str, option: str, count: int, expected: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(option, None, expected, got=text) from None
    if len(values) != count or not np.isfinite(values).all():
        raise InputError(option, None, expected, got=text)
    return values


def _check_options(args):
    """Reject impossible numbers before any work is done; return the band or None."""
    if not 1e5 <= args.fs <= 1e10:
        raise InputError(
            "--fs",
            None,
            "a sampling rate in [1e5, 1e10] Hz",
            got=f"{args.fs:g}",
            hint="fs is in Hz: 40 MHz is 40e6",
        )
    if not 1 <= args.samples <= 1_000_000:
        raise InputError("--samples", None, "a sample count in [1, 1000000]", got=args.samples)
    if not 300 <= args.sound_speed <= 5000:
        hint = "the unit is m/s: 1.5 km/s is 1500" if 0 < args.sound_speed < 100 else None
        raise InputError(
            "--sound-speed",
            None,
            "a sound speed in [300, 5000] m/s",
            got=f"{args.sound_speed:g}",
            hint=hint,
        )
    if not np.isfinite(args.t0) or abs(args.t0) > 1e-2:
        raise InputError("--t0", None, "a time in seconds within +/-0.01 s", got=args.t0)
    if not np.isfinite(args.noise) or args.noise < 0:
        raise InputError("--noise", None, "a non-negative fraction of the peak", got=args.noise)
    if args.spacing is not None and not (np.isfinite(args.spacing) and args.spacing > 0):
        raise InputError("--spacing", None, "a positive voxel size in metres", got=args.spacing)
    if (args.region is not None or args.spacing is not None) and args.phantom != "vessels":
        raise InputError(
            "--region/--spacing", None, "only with the 'vessels' phantom", got=args.phantom
        )
    if args.band_limit is None:
        return None
    expected = "FLO,FHI in Hz with 0 <= FLO < FHI < fs/2"
    flo, fhi = _parse_floats(args.band_limit, "--band-limit", 2, expected)
    if not 0 <= flo < fhi < args.fs / 2:
        raise InputError("--band-limit", None, expected, got=args.band_limit)
    return (flo or None, fhi)


def _load_inputs(args):
    from ..core.arrays import load_array
    from ..phantoms import load_phantom

    kwargs = {}
    if args.phantom == "vessels":
        kwargs["seed"] = args.seed
        if args.region is not None:
            kwargs["region"] = parse_region(args.region)
        if args.spacing is not None:
            kwargs["spacing"] = args.spacing
    array = _with_element(load_array(args.array), args)
    phantom = load_phantom(args.phantom, **kwargs)
    return phantom, array


def _with_element(array, args):
    """The array with ``--element``'s faces; a disc or rectangle needs its normals."""
    from dataclasses import replace

    from ..core.element import element_for

    if args.element is None:
        return array
    element = element_for(
        args.element, array.normals, len(array), source=args.array, field="normals",
        got="none (the sensors lie on neither a plane nor a sphere)",
    )  # fmt: skip
    return replace(array, element=element)


def _warn_if_window_short(cloud, array, args) -> None:
    """Signals of far balls arrive after the last sample; say so rather than lose them."""
    lo, hi = cloud.bounds()
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    farthest = max(np.linalg.norm(array.positions - c, axis=1).max() for c in corners)
    end = args.t0 + args.samples / args.fs
    if farthest / args.sound_speed > end:
        log.warning(
            "slingbag: warning: the last sample is at %.3g us but waves from the "
            "phantom arrive until %.3g us; use more --samples",
            end * 1e6,
            farthest / args.sound_speed * 1e6,
        )


def run(args) -> int:
    from ..io.native import write_acquisition
    from ..model.radiator import simulate

    band = _check_options(args)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise InputError("-o", None, "a file in an existing folder", got=args.output)
    phantom, array = _load_inputs(args)
    _warn_if_window_short(phantom.cloud, array, args)
    acq = simulate(
        phantom.cloud,
        array,
        model=_radiator(args),
        fs=args.fs,
        n_samples=args.samples,
        sound_speed=args.sound_speed,
        t0=args.t0,
        noise=args.noise,
        seed=args.seed,
        band=band,
    )
    acq.truth_cloud = phantom.cloud
    acq.truth_volume = phantom.volume
    acq.attrs = {
        **(acq.attrs or {}),
        "phantom": str(args.phantom),
        "array": array.name,
        "seed": int(args.seed),
    }
    write_acquisition(args.output, acq)  # atomic: no half-written file on failure
    peak = float(np.abs(acq.signals).max())
    faces = "" if acq.faces is None else f", {acq.faces.describe()} faces"
    print(
        f"simulated {len(phantom.cloud)} balls -> {acq.n_sensors} sensors x "
        f"{acq.n_samples} samples ({args.model}{faces}), peak {peak:.4g}; wrote {args.output}"
    )
    return 0
