"""The independent benchmark: UBP, the model-based baseline and slingbag's presets on
every case of the suite.

No signal comes from slingbag's radiator (see ``slingbag.benchmark``).  Cases that need
``../shared/data`` (the rat liver, the 1,013-sensor sphere) or a wave-solver file
(``experiments/jwave_generate.py``) are skipped when those are missing.  Prints the table
(also written to OUT/table.md with OUT/results.json and one MAP figure per case), with
each run's SSIM, CNR, wall seconds and peak memory (resident set above the level at the
run's start, ``slingbag.benchmark.peakmem``).

    python experiments/benchmark.py                       # everything
    python experiments/benchmark.py --tags core           # the headline cases
    python experiments/benchmark.py --cases "12x12" --methods ubp,default
    python experiments/benchmark.py --methods ubp,mb     # the two baselines only
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import slingbag
from slingbag.benchmark import suite

ROOT = Path(__file__).resolve().parents[1]
# The model-based baseline is in by default: 2-4 minutes a case on 2 CPU cores, about
# three times slingbag's default preset, so the full suite takes about an hour longer,
# and a comparison without the iterative baseline would flatter slingbag.
METHODS = ("ubp", "mb", "default", "fast")


def available(case) -> bool:
    if case.source not in ("exact", "own"):
        return suite.source_path(case.source).exists()
    needs_shared = case.phantom == "rat-liver" or "sphere_1013" in case.array
    return not needs_shared or (ROOT.parent / "shared" / "data").exists()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="*", help="case name fragments (default: all)")
    p.add_argument("--tags", nargs="*", help="case tags, e.g. core noise liver")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list (%(default)s)")
    p.add_argument("--out", default=str(ROOT / "experiments" / "out" / "benchmark"))
    p.add_argument("--resume", action="store_true", help="skip cases OUT already holds")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "slingbag" / "benchmark"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    slingbag.init()
    cases = [c for c in suite.select(args.cases, args.tags) if available(c)]
    methods = args.methods.split(",")
    results = suite.run_suite(cases, methods, out=args.out, cache=args.cache, resume=args.resume)
    print(suite.table(results, methods))


if __name__ == "__main__":
    main()
