"""``slingbag convert``: acquisitions between slingbag, IPASC, PATATO and the text layout."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an acquisition between slingbag, IPASC, PATATO and text files",
        description="Read an acquisition in any supported layout (slingbag HDF5, IPASC "
        "HDF5, PATATO HDF5, or the SlingBAG paper's text pair <prefix>_sensor_location.txt "
        "+ <prefix>_sensor_data.txt), recognised by its content, and write it in another. "
        "The output layout comes from --to or the output name: *.ipasc.h5 is IPASC, "
        "*.patato.h5 PATATO, other *.h5/*.hdf5 slingbag, a folder or a prefix the text "
        "layout.",
    )
    parser.add_argument("input", metavar="IN", help="acquisition file, text prefix or folder")
    parser.add_argument("output", metavar="OUT", help="file, text prefix or folder to write")
    parser.add_argument(
        "--to",
        choices=("slingbag", "ipasc", "patato", "text"),
        default=None,
        help="output layout (default: from OUT's name)",
    )
    parser.add_argument("--frame", type=int, default=0, help="frame of a multi-frame file (0)")
    parser.add_argument(
        "--wavelength", type=int, default=0, help="wavelength index of a multispectral file (0)"
    )
    parser.add_argument(
        "--fs",
        type=float,
        default=None,
        metavar="HZ",
        help="sampling rate, replacing the file's (text layout default 40e6)",
    )
    parser.add_argument(
        "--sound-speed",
        type=float,
        default=None,
        metavar="M/S",
        help="sound speed, replacing the file's (text layout default 1500)",
    )
    parser.set_defaults(func=run)


def _same_target(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def run(args) -> int:
    from ..io.formats import load_acquisition, output_format, write_any
    from ..io.text import TEXT_FORMAT, text_prefix

    fmt = output_format(args.output, args.to)
    if fmt == TEXT_FORMAT and args.output.endswith(os.sep) and not os.path.exists(args.output):
        # "OUT/" names a folder for the text pair; make it when its parent exists.
        parent = os.path.dirname(os.path.abspath(args.output.rstrip(os.sep)))
        if os.path.isdir(parent):
            os.mkdir(args.output)
    target = str(text_prefix(args.output)) if fmt == TEXT_FORMAT else args.output
    folder = Path(os.path.abspath(target)).parent
    if not folder.is_dir():
        raise InputError(args.output, None, "a path in an existing folder", got=str(folder))
    if os.path.exists(args.input) and os.path.exists(target) and _same_target(args.input, target):
        raise InputError(args.output, None, "an output other than the input file")
    acq = load_acquisition(
        args.input,
        frame=args.frame,
        wavelength=args.wavelength,
        fs=args.fs,
        sound_speed=args.sound_speed,
    )
    written = write_any(target, acq, fmt)
    extras = [
        name
        for name, value in (("normals", acq.normals), ("areas", acq.areas))
        if value is not None
    ]
    if acq.faces is not None:
        extras.append(f"{acq.faces.describe()} faces")
    listed = " and ".join([", ".join(extras[:-1]), extras[-1]] if len(extras) > 2 else extras)
    print(
        f"convert: {acq.n_sensors} sensors x {acq.n_samples} samples, fs {acq.fs / 1e6:.4g} "
        f"MHz, c {acq.sound_speed:g} m/s"
        + (f", with {listed}" if extras else "")
        + f" -> {fmt}: {', '.join(str(p) for p in written)}"
    )
    return 0
