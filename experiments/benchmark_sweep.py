"""Candidate reconstruction settings on cases of the independent benchmark.

Each candidate is a set of preset overrides; every (case, candidate) pair is run once and
appended to a JSON-lines log, so an interrupted sweep resumes where it stopped.

    python experiments/benchmark_sweep.py --cases "vessels 12x12 12MHz 1%" \
        --candidate base '{}' --candidate l1 '{"loss": {"l1": 0.3}}' --log sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import slingbag
from slingbag.benchmark import suite


def _save(folder: Path, case: str, label: str, volume, truth) -> None:
    """The run's volume and the truth on the truth's grid, as the metrics see them."""
    import numpy as np

    from slingbag.report.metrics import resample

    folder.mkdir(parents=True, exist_ok=True)
    name = "".join(ch if ch.isalnum() else "_" for ch in f"{case}__{label}")
    np.savez_compressed(
        folder / f"{name}.npz",
        volume=resample(volume, truth).astype(np.float32),
        truth=np.asarray(truth.data, np.float32),
        spacing=truth.spacing,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="+", required=True, help="case name fragments")
    p.add_argument("--candidate", nargs=2, action="append", metavar=("LABEL", "JSON"))
    p.add_argument("--preset", default="default")
    p.add_argument("--log", default="experiments/out/sweep.jsonl")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "slingbag" / "benchmark"))
    p.add_argument("--save", help="folder for each run's volume (NPZ, with the truth)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    slingbag.init()
    log_path = Path(args.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["case"], r["label"], r["preset"]))
    for case in suite.select(args.cases):
        acq = suite.case_data(case, args.cache)
        for label, text in args.candidate or [("base", "{}")]:
            if (case.name, label, args.preset) in done:
                continue
            overrides = json.loads(text)
            volume, seconds, extra = suite.run_method(case, acq, args.preset, overrides)
            row = {
                "case": case.name,
                "label": label,
                "preset": args.preset,
                "overrides": overrides,
                **suite.score(volume, acq.truth_volume),
                "seconds": seconds,
                **extra,
            }
            if args.save:
                _save(Path(args.save), case.name, label, volume, acq.truth_volume)
            print(json.dumps(row), flush=True)
            with log_path.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
