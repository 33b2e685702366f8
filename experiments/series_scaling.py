"""Frames per minute of a series reconstruction with 1 and with 2 local Dask workers.

The same dynamic phantom series (small frames, a short warm stage) runs on an in-process
``LocalCluster`` of N worker processes; frames per minute counts the whole wall time,
cluster start and frame 0's cold start included, as a user would see it.

Run: ``python experiments/series_scaling.py [--frames 16] [--chunk 4] [--workers 1 2]``
"""

from __future__ import annotations

import argparse
import os
import time

REGION = (-3e-3, 3e-3, -3e-3, 3e-3, 8e-3, 10e-3)


def frames_per_minute(acqs, workers: int, chunk: int) -> tuple[float, float]:
    """Frames per minute of the whole run and mean seconds per frame on a worker.

    Parameters
    ----------
    acqs : list of Acquisition
        The series.
    workers : int
        Local worker processes (one thread each).
    chunk : int
        Frames per task.
    """
    from slingbag.core.config import load_config
    from slingbag.series import reconstruct_series

    t = time.perf_counter()
    result = reconstruct_series(
        acqs,
        load_config("fast"),
        region=REGION,
        iterations=60,
        warm_iterations=30,
        chunk=chunk,
        workers=workers,
        progress=False,
    )
    wall = time.perf_counter() - t
    return 60.0 * len(acqs) / wall, float(result.frame_seconds.mean())


def main(argv=None):
    import slingbag
    from slingbag.model.radiator import simulate
    from slingbag.phantoms.dynamic import dynamic_vessels

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)

    slingbag.init("cpu")
    dyn = dynamic_vessels(args.frames, seed=1, region=REGION, spacing=0.1e-3)
    acqs = [
        simulate(p.cloud, "planar:6x6:2e-3", model="shells", n_samples=768, noise=0.01, seed=k)
        for k, p in enumerate(dyn.frames)
    ]
    print(f"{args.frames} frames, chunks of {args.chunk}, {os.cpu_count()} cores\n")
    print("| workers | frames/min | s/frame on a worker |")
    print("|---:|---:|---:|")
    for n in args.workers:
        fpm, per_frame = frames_per_minute(acqs, n, args.chunk)
        print(f"| {n} | {fpm:.1f} | {per_frame:.2f} |", flush=True)


if __name__ == "__main__":
    main()
