"""UBP | model-based | slingbag on one scene, with time and peak memory.

The scene of ``sparse_planar.py``: a ``vessels`` phantom (20 x 20 x 6 mm, 12 mm above the
array, 0.1 mm truth grid), a square planar array of ~36 mm aperture with ``--side`` sensors
a side, data from the ``shells`` radiator band-limited to 0.1-12 MHz with 1 % noise.
UBP runs on the truth's grid; model-based on the phantom's box (or with ``--region
inferred`` the region slingbag infers from the signals, which on this scene is 28 x 27 x
14 mm: 1.3 million unknowns at 0.2 mm) at ``--spacing`` (its unknowns are that grid's
voxels); slingbag with the default preset on the region it infers.  Metrics on the
truth's grid (SPEC section 6).

Peak memory is the largest resident-set size above the level before the method started,
sampled every 10 ms in a thread (so a peak shorter than that may be missed).

    python experiments/model_based.py --side 12 --spacing 0.2e-3 --iterations 100
    python experiments/model_based.py --small      # the test suite's tiny scene, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

import slingbag
from slingbag.baselines.model_based import model_based_solve
from slingbag.benchmark.peakmem import measure
from slingbag.core.config import load_config
from slingbag.core.volume import grid_for_region
from slingbag.fit.plan import resolve_region
from slingbag.model.radiator import simulate
from slingbag.phantoms import vessels_phantom
from slingbag.report.metrics import metrics

APERTURE = 36e-3
KEYS = ["ssim_map_z", "ssim_map_y", "ssim_map_x", "ssim_slice", "snr_db", "cnr"]


def scene(args):
    if args.small:
        region = (-2.375e-3, 2.375e-3, -2.375e-3, 2.375e-3, 6.0e-3, 7.75e-3)
        phantom = vessels_phantom(region=region, spacing=0.25e-3, seed=0, n_trunks=2, max_depth=2)
        array = slingbag.load_array("planar:8x8:1.2e-3")
        n_samples = 384
    else:
        phantom = vessels_phantom(seed=0)
        pitch = APERTURE / args.side
        array = slingbag.load_array(f"planar:{args.side}x{args.side}:{pitch:.6g}")
        n_samples = 2048
    acq = simulate(
        phantom.cloud,
        array,
        model="shells",
        n_samples=n_samples,
        noise=0.01,
        band=None if args.small else (0.1e6, 12e6),
        seed=1,
    )
    return phantom, acq


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", type=int, default=12)
    p.add_argument("--spacing", type=float, default=0.2e-3, help="model-based voxel size, m")
    p.add_argument("--iterations", type=int, default=200, help="model-based iterations at most")
    p.add_argument("--tv", type=float, default=None, help="fixed TV weight (default: automatic)")
    p.add_argument(
        "--region",
        choices=("truth", "inferred"),
        default="truth",
        help="model-based grid over the phantom's box (default) or the region slingbag infers",
    )
    p.add_argument("--small", action="store_true", help="the tests' tiny scene")
    p.add_argument("--no-slingbag", action="store_true")
    p.add_argument("--out", default="experiments/out/model_based")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    slingbag.init()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    phantom, acq = scene(args)
    truth = phantom.volume
    if args.small:
        origin, spacing, shape = truth.origin, truth.spacing, truth.shape
    elif args.region == "truth":
        ext = truth.extent()
        origin, spacing, shape = grid_for_region(ext[:, 0], ext[:, 1], args.spacing)
    else:
        cfg = load_config("default")
        lo, hi = resolve_region(None, cfg, acq, float(cfg["region"]["res"]))
        origin, spacing, shape = grid_for_region(lo, hi, args.spacing)
    logging.info("model-based grid %s (%d unknowns)", shape, int(np.prod(shape)))
    rows = {}
    vol, s, m = measure(lambda: slingbag.ubp(acq, truth.origin, truth.spacing, truth.shape))
    rows["UBP"] = {"seconds": s, "peak_bytes": m, **metrics(vol, truth)}
    res, s, m = measure(
        lambda: model_based_solve(
            acq, origin, spacing, shape, tv=args.tv, iterations=args.iterations, progress=True
        )
    )
    rows["model-based"] = {
        "seconds": s,
        "peak_bytes": m,
        "iterations": res.attrs["iterations"],
        "converged": res.attrs["converged"],
        "tv_weight": res.attrs["tv_weight"],
        "unknowns": int(np.prod(shape)),
        **metrics(res.volume, truth),
    }
    if not args.no_slingbag:
        rec, s, m = measure(lambda: slingbag.reconstruct(acq, spacing=truth.spacing[0], seed=0))
        rows["slingbag"] = {
            "seconds": s,
            "peak_bytes": m,
            "balls": int(rec.cloud.n),
            **metrics(rec.volume, truth),
        }
    lines = [
        f"{acq.n_sensors} sensors x {acq.n_samples} samples; model-based grid "
        f"{'x'.join(map(str, shape))} at {spacing[0] * 1e3:.3g} mm",
        "",
        "| method | " + " | ".join(KEYS) + " | time (s) | peak memory (MB) |",
        "|---" * (len(KEYS) + 3) + "|",
    ]
    for name, r in rows.items():
        vals = " | ".join(f"{r[k]:.3f}" for k in KEYS)
        lines.append(f"| {name} | {vals} | {r['seconds']:.1f} | {r['peak_bytes'] / 2**20:.0f} |")
    text = "\n".join(lines)
    print(text)
    tag = "small" if args.small else f"side{args.side}"
    (out / f"results_{tag}.md").write_text(text + "\n")
    (out / f"results_{tag}.json").write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
