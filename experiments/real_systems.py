"""The suite's "real system" family: sensor faces, a tissue layer and attenuation.

For each case: UBP, slingbag's default preset as a user runs it (the file's faces in the
model, the quick sound-speed check), the same with the faces left out of the model (how
slingbag read such files before it modelled faces), and optionally the model-based
baseline.  Prints a Markdown table and writes it, the JSON rows and one MAP figure per case
into ``--out``.

    python experiments/real_systems.py --out results/real [--cases NAME ...] [--mb]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from slingbag.benchmark import suite


def run(case, methods, cache):
    acq = suite.case_data(case, cache)
    rows, volumes = {}, {"truth": acq.truth_volume}
    for method in methods:
        data, preset, overrides = acq, method, None
        if method == "default, faces left out":
            data, preset = acq.replace(element=None), "default"
        if method == "default, --calibrate sound_speed":
            preset, overrides = "default", {"calibrate": {"params": ["sound_speed"]}}
        t = time.perf_counter()
        volume, seconds, extra = suite.run_method(case, data, preset, overrides)
        rows[method] = {**suite.score(volume, acq.truth_volume), "seconds": seconds, **extra}
        volumes[method] = volume
        took = time.perf_counter() - t
        print(
            f"{case.name} | {method}: {rows[method]['ssim_map_z']:.3f} in {took:.0f} s", flush=True
        )
    return rows, volumes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/real")
    p.add_argument("--cases", nargs="*", help="case names (default: every case tagged real)")
    p.add_argument("--mb", action="store_true", help="also the model-based baseline")
    p.add_argument("--cache", default=str(Path.home() / ".cache/slingbag/suite"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cases = suite.select(args.cases, None if args.cases else ["real"])
    methods = ["ubp", "default", "default, faces left out"] + (["mb"] if args.mb else [])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    from slingbag.report.figures import comparison_figure

    for i, case in enumerate(cases):
        methods_here = methods if case.element else [m for m in methods if "faces" not in m]
        if case.layer is not None:
            # what the speed check's warning tells the user to do
            methods_here = methods_here + ["default, --calibrate sound_speed"]
        rows, volumes = run(case, methods_here, args.cache)
        results[case.name] = rows
        comparison_figure(volumes, out / f"real{i:02d}.png", title=case.name, metrics=rows)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        (out / "table.md").write_text(suite.table(results, _methods(results)) + "\n")
    print(suite.table(results, _methods(results)))


def _methods(results: dict) -> list:
    return list(dict.fromkeys(m for rows in results.values() for m in rows))


if __name__ == "__main__":
    main()
