"""``slingbag metrics``: score a reconstruction against the ground truth."""

from __future__ import annotations

import json
import math

# Order and labels of the printed table.
ROWS = (
    ("ssim_map_z", "SSIM MAP top (z)"),
    ("ssim_map_y", "SSIM MAP front (y)"),
    ("ssim_map_x", "SSIM MAP side (x)"),
    ("ssim_slice", "SSIM slice"),
    ("snr_db", "SNR (dB)"),
    ("cnr", "CNR"),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="score a result against the ground truth",
        description="Compare a result's volume with the ground truth (SSIM of the maximum "
        "amplitude projections and of a slice, SNR, CNR), on the truth's grid.  A result "
        "with a cloud but no volume is voxelized onto the truth's grid.",
    )
    parser.add_argument("result", metavar="RESULT.h5", help="result file (slingbag or ubp)")
    parser.add_argument(
        "--truth",
        required=True,
        metavar="DATA.h5",
        help="acquisition with truth/volume, or a file with a 'volume' dataset",
    )
    parser.add_argument(
        "--slice-axis", choices=("x", "y", "z"), default="z", help="axis normal to the slice (z)"
    )
    parser.add_argument(
        "--slice-index",
        type=int,
        default=None,
        help="slice for ssim_slice (default: the truth's slice with the largest sum)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _result_volume(path, truth):
    """The result's volume, or its cloud voxelized onto the truth's grid."""
    from ..io.native import read_result

    result = read_result(path)
    if result.volume is not None:
        return result.volume
    from ..core.cloud import MODELS
    from ..model.voxelize import voxelize

    model = str(result.attrs.get("model", "gaussian"))
    return voxelize(
        result.cloud,
        truth.origin,
        truth.spacing,
        truth.shape,
        model=model if model in MODELS else "gaussian",
    )


def format_table(values: dict) -> str:
    """The metrics as an aligned two-column table."""
    width = max(len(label) for _key, label in ROWS)
    lines = [f"{label:<{width}}  {_fmt(values[key])}" for key, label in ROWS]
    axis, index = values.get("slice_axis"), values.get("slice_index")
    if axis is not None:
        lines.append(f"{'slice':<{width}}  {axis} = {index}")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:10.4f}"


def _json_safe(values: dict) -> dict:
    """Non-finite floats as null: JSON has no inf or NaN."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


def run(args) -> int:
    from ..io.native import read_volume
    from ..report.metrics import metrics

    truth = read_volume(args.truth)
    volume = _result_volume(args.result, truth)
    values = metrics(volume, truth, slice_axis=args.slice_axis, slice_index=args.slice_index)
    print(json.dumps(_json_safe(values), indent=2) if args.json else format_table(values))
    return 0
