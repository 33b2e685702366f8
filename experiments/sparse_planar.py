"""The sparse planar-array study: slingbag against universal back-projection.

A ``vessels`` phantom (20 x 20 x 6 mm, 12 mm above the array, 0.1 mm voxels) is seen by
square planar arrays of the same ~35 mm aperture and 7, 12, 24 or 48 sensors a side
(49, 144, 576, 2,304 sensors).  The data come from the paper's ``shells`` radiator,
band-limited to 0.1-12 MHz with 1 % noise, while slingbag fits its ``gaussian`` model (no
inverse crime); slingbag infers its region from the signals, as a user's run would.

Writes into ``--out`` (default ``experiments/out/sparse_planar``):
``<n>_sensors.png`` (truth | UBP | slingbag, top and front MAPs), ``metrics_vs_sensors.png``,
``results.md`` and ``results.json``.

    python experiments/sparse_planar.py                 # 49, 144, 576
    python experiments/sparse_planar.py --sides 12 24   # the issue's two arrays
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import slingbag
from slingbag.core.arrays import load_array
from slingbag.core.config import load_config
from slingbag.model.radiator import simulate
from slingbag.phantoms import vessels_phantom
from slingbag.report.figures import comparison_figure
from slingbag.report.metrics import metrics

APERTURE = 36e-3
KEYS = ["ssim_map_z", "ssim_map_y", "ssim_map_x", "ssim_slice", "snr_db", "cnr"]


def run_one(side, phantom, cfg, out, seed=0):
    pitch = APERTURE / side
    array = load_array(f"planar:{side}x{side}:{pitch:.6g}")
    t = time.perf_counter()
    acq = simulate(
        phantom.cloud,
        array,
        model="shells",
        n_samples=2048,
        noise=0.01,
        band=(0.1e6, 12e6),
        seed=seed + 1,
    )
    t_sim = time.perf_counter() - t
    truth = phantom.volume
    t = time.perf_counter()
    base = slingbag.ubp(acq, truth.origin, truth.spacing, truth.shape)
    t_ubp = time.perf_counter() - t
    t = time.perf_counter()
    rec = slingbag.reconstruct(acq, cfg, spacing=truth.spacing[0], seed=seed)
    t_rec = time.perf_counter() - t
    m_ubp = metrics(base, truth)
    m_rec = metrics(rec.volume, truth)
    n = side * side
    comparison_figure(
        {"truth": truth, "UBP": base, "slingbag": rec.volume},
        out / f"{n}_sensors.png",
        title=f"{n} sensors ({side} x {side}, {pitch * 1e3:.2f} mm pitch)",
        metrics={"UBP": m_ubp, "slingbag": m_rec},
    )
    row = {
        "sensors": n,
        "pitch_mm": pitch * 1e3,
        "ubp": {k: m_ubp[k] for k in KEYS} | {"seconds": t_ubp},
        "slingbag": {k: m_rec[k] for k in KEYS}
        | {"seconds": t_rec, "balls": int(rec.cloud.n), "iterations": int(rec.attrs["iterations"])},
        "simulate_seconds": t_sim,
    }
    logging.info(
        "%d sensors: UBP %s | slingbag %s",
        n,
        {k: round(v, 3) for k, v in row["ubp"].items()},
        {k: round(v, 3) for k, v in row["slingbag"].items()},
    )
    return row


def table(rows) -> str:
    head = (
        "| sensors | method | SSIM MAP-z | SSIM MAP-y | SSIM MAP-x | SSIM slice | SNR (dB) "
        "| CNR | time (s) |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        for name in ("ubp", "slingbag"):
            m = r[name]
            label = "UBP" if name == "ubp" else "slingbag"
            lines.append(
                f"| {r['sensors']} | {label} | {m['ssim_map_z']:.3f} | {m['ssim_map_y']:.3f} | "
                f"{m['ssim_map_x']:.3f} | {m['ssim_slice']:.3f} | {m['snr_db']:.1f} | "
                f"{m['cnr']:.1f} | {m['seconds']:.0f} |"
            )
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["sensors"] for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, key, label in zip(
        axes,
        ["ssim_map_z", "ssim_slice", "snr_db", "cnr"],
        ["SSIM (MAP, top)", "SSIM (slice)", "SNR (dB)", "CNR"],
        strict=True,
    ):
        for name, style in (("ubp", "o--"), ("slingbag", "s-")):
            ax.plot(n, [r[name][key] for r in rows], style, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("sensors")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[7, 12, 24])
    p.add_argument("--config", default="default")
    p.add_argument("--out", default="experiments/out/sparse_planar")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slingbag.init()
    phantom = vessels_phantom(seed=args.seed)
    cfg = load_config(args.config)
    # Rows already measured for other arrays are kept (re-run an array to replace its row).
    old = out / "results.json"
    done = {r["sensors"]: r for r in json.loads(old.read_text())} if old.exists() else {}
    for side in args.sides:
        done[side * side] = run_one(side, phantom, cfg, out, seed=args.seed)
        rows = [done[k] for k in sorted(done)]
        (out / "results.json").write_text(json.dumps(rows, indent=2))
    md = table(rows)
    (out / "results.md").write_text(md + "\n")
    plot(rows, out / "metrics_vs_sensors.png")
    print(md)


if __name__ == "__main__":
    main()
