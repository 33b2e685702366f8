"""Calibration by gradient: sound speed, time offset and a band-limited sensor response.

Scene: the ``vessels`` phantom 12 mm above a 12 x 12 planar array (3 mm pitch), data from
the ``shells`` radiator with 1 % noise, 2,048 samples.

A. Data at 1,540 m/s and t0 = 0.3 us.  slingbag given the true values; started from
   1,500 m/s and 0 without calibration; and started there with ``--calibrate`` of the
   sound speed, of t0, and of both (the default two passes; each pass's start and end
   are read from the history).
B. Data convolved with a 2 MHz, 55 % band-pass response.  slingbag without a response in
   its model, with the (known) response in the forward model but no prior, and with it
   and the default L1 penalty on p0 for band-limited data (``loss.l1_band_limited``, a
   prior for what the band-pass cannot see); UBP of the same data for reference; MAPs in
   ``calibration_B.png``.

A3. As A's t0 and joint runs with three passes (``--calibration-passes 3``).

Acal. A's calibrated runs only, then A3.

R. A's calibrated runs with reconstruction seeds 1 and 2: the spread of the learned
   values, against what ``slingbag.fit.timing.expected_errors`` says the array allows.

W. A's t0 and joint runs on a wider array, 24 x 24 sensors at the same 3 mm pitch.

    python experiments/calibration.py [--part A|A3|Acal|R|W|B|all]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

import slingbag
from slingbag.core.arrays import load_array
from slingbag.core.config import load_config
from slingbag.model.radiator import simulate
from slingbag.phantoms import vessels_phantom
from slingbag.report.figures import comparison_figure
from slingbag.report.metrics import metrics


def run(acq, truth, cfg_over, label, rows, volumes=None, seed=None):
    cfg = load_config("default", overrides=cfg_over)
    t = time.perf_counter()
    rec = slingbag.reconstruct(acq, cfg, spacing=truth.spacing[0], progress=False, seed=seed)
    m = metrics(rec.volume, truth)
    if volumes is not None:
        volumes[label] = (rec.volume, m)
    row = {
        "run": label,
        "ssim_map_z": m["ssim_map_z"],
        "cnr": m["cnr"],
        "sound_speed": rec.attrs.get("calibrated_sound_speed", acq.sound_speed),
        "t0_ns": rec.attrs.get("calibrated_t0", acq.t0) * 1e9,
        "seconds": time.perf_counter() - t,
    }
    # What the array lets the calibration resolve (slingbag.fit.timing.expected_errors).
    expect = {
        k[len("calibration_expected_error_") :]: float(v)
        for k, v in rec.attrs.items()
        if k.startswith("calibration_expected_error_")
    }
    if expect:
        row["expected_error"] = expect
    h = rec.history
    if "pass" in h:
        # Each pass's start and end.
        row["passes"] = []
        for k in np.unique(h["pass"]):
            at = np.flatnonzero(h["pass"] == k)
            one = {}
            if "sound_speed" in h:
                one["sound_speed"] = [float(h["sound_speed"][i]) for i in (at[0], at[-1])]
            if "t0" in h:
                one["t0_ns"] = [float(h["t0"][i]) * 1e9 for i in (at[0], at[-1])]
            row["passes"].append(one)
    logging.info("%s", row)
    rows.append(row)


def timing_data(phantom, array):
    """Part A's data on ``array`` (1,540 m/s, t0 = 0.3 us) and the same data labelled with
    the wrong start (1,500 m/s, 0)."""
    acq = simulate(
        phantom.cloud,
        array,
        model="shells",
        n_samples=2048,
        noise=0.01,
        sound_speed=1540.0,
        t0=0.3e-6,
        seed=1,
    )
    return acq, acq.replace(sound_speed=1500.0, t0=0.0)


# What each calibrated run learns, and the true value it is given of the other.
LEARN = {
    "sound speed": (["sound_speed"], {"t0": 0.3e-6}),
    "t0": (["t0"], {"sound_speed": 1540.0}),
    "both": (["sound_speed", "t0"], {}),
}


def calibrate(wrong, truth, rows, which, label, *, passes=None, seed=None, region=None):
    """One calibrated run from the wrong start (``which``: a key of ``LEARN``)."""
    params, given = LEARN[which]
    over = {"calibrate": {"params": params}}
    if passes is not None:
        over["calibrate"]["passes"] = passes
    if region is not None:
        over["region"] = region
    run(wrong.replace(**given), truth, over, label, rows, seed=seed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["A", "A3", "Acal", "R", "W", "B", "all"], default="all")
    p.add_argument("--out", default="experiments/out/calibration")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slingbag.init()
    phantom = vessels_phantom(seed=0)
    truth = phantom.volume
    array = load_array("planar:12x12:3e-3")
    rows = []
    if args.part in ("A", "A3", "Acal", "R", "all"):
        acq, wrong = timing_data(phantom, array)
    if args.part in ("A", "all"):
        run(acq, truth, {}, "A: true c and t0", rows)
        run(wrong, truth, {}, "A: 1500 m/s, t0 = 0, no calibration", rows)
    if args.part in ("A", "Acal", "all"):
        calibrate(wrong, truth, rows, "sound speed", "A: calibrate sound speed (t0 known)")
    pass_counts = {"A": [2], "A3": [3], "Acal": [2, 3], "all": [2, 3]}.get(args.part, [])
    for passes in pass_counts:
        tag = "" if passes == 2 else f", {passes} passes"
        calibrate(wrong, truth, rows, "t0", f"A: calibrate t0 (c known){tag}", passes=passes)
        calibrate(wrong, truth, rows, "both", f"A: calibrate both{tag}", passes=passes)
    if args.part == "R":
        # The calibrated runs again with other reconstruction seeds: the spread of the
        # learned values (Taichi's parallel sums on the CPU differ from run to run too).
        for seed in (1, 2):
            for which in LEARN:
                label = f"R: calibrate {which}, seed {seed}"
                calibrate(wrong, truth, rows, which, label, seed=seed)
    if args.part == "W":
        # A wider aperture: 24 x 24 sensors at the same pitch (69 mm across), which by
        # timing_tradeoff leaves about twice the evidence of a t0 error.
        acq, wrong = timing_data(phantom, load_array("planar:24x24:3e-3"))
        # The region the 12 x 12 runs inferred, so the cloud and the cost stay comparable.
        box = {"bounds": [-13.7e-3, 14.6e-3, -10.7e-3, 15.8e-3, 8.9e-3, 21.6e-3]}
        for which in ("t0", "both"):
            label = f"W: 24 x 24 sensors, calibrate {which}"
            calibrate(wrong, truth, rows, which, label, region=box)
    if args.part in ("B", "all"):
        part_b(phantom, array, rows, out)
    write_tables(rows, out, args.part)


def part_b(phantom, array, rows, out):
    """Part B: data through a band-pass response, reconstructed without and with the
    response in the model (UBP for reference); the MAPs in ``calibration_B.png``."""
    truth = phantom.volume
    acq = simulate(
        phantom.cloud,
        array,
        model="shells",
        n_samples=2048,
        noise=0.01,
        response=(2e6, 0.55),
        seed=1,
    )
    volumes = {"truth": (truth, None)}
    t = time.perf_counter()
    base = slingbag.ubp(acq, truth.origin, truth.spacing, truth.shape)
    m = metrics(base, truth)
    volumes["B: UBP"] = (base, m)
    rows.append(
        {
            "run": "B: UBP (reference)",
            "ssim_map_z": m["ssim_map_z"],
            "cnr": m["cnr"],
            "sound_speed": acq.sound_speed,
            "t0_ns": 0.0,
            "seconds": time.perf_counter() - t,
        }
    )
    run(acq, truth, {}, "B: no response in the model", rows, volumes)
    response = {"kind": "bandpass", "centre": 2e6, "bandwidth": 0.55}
    run(
        acq,
        truth,
        {"response": response, "loss": {"l1_band_limited": 0.0}},
        "B: 2 MHz / 55 % response in the model, no L1",
        rows,
        volumes,
    )
    l1 = load_config()["loss"]["l1_band_limited"]
    run(
        acq,
        truth,
        {"response": response},
        f"B: response in the model (default L1 {l1:g})",
        rows,
        volumes,
    )
    comparison_figure(
        {k: v for k, (v, _) in volumes.items()},
        out / "calibration_B.png",
        "data through a 2 MHz, 55 % band-pass (vessels, 12 x 12 sensors)",
        metrics={k: m for k, (_, m) in volumes.items() if m},
    )


def write_tables(rows, out, part):
    """The rows as ``results_<part>.json`` and as a Markdown table (``results_<part>.md``,
    also printed)."""
    (out / f"results_{part}.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| run | SSIM MAP-z | CNR | sound speed (m/s) | t0 (ns) | passes: start -> end "
        "| time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    units = {"sound_speed": ("m/s", 1), "t0_ns": ("ns", 1)}
    for r in rows:
        steps = []
        for one in r.get("passes", []):
            steps.append(
                "; ".join(
                    f"{a:.{d}f} -> {b:.{d}f} {u}"
                    for key, (u, d) in units.items()
                    if key in one
                    for a, b in [one[key]]
                )
            )
        first = "<br>".join(steps) or "-"
        lines.append(
            f"| {r['run']} | {r['ssim_map_z']:.3f} | {r['cnr']:.1f} | "
            f"{r['sound_speed']:.1f} | {r['t0_ns']:.1f} | {first} | {r['seconds']:.0f} |"
        )
    (out / f"results_{part}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
