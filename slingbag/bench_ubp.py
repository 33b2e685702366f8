"""Timing of universal back-projection (wired into ``slingbag bench ubp``)."""

from __future__ import annotations

import time

import numpy as np


def bench_ubp(
    n_side: int = 24,
    nx: int = 100,
    ny: int = 100,
    nz: int = 30,
    n_samples: int = 2048,
    *,
    repeats: int = 3,
    verbose: bool = True,
) -> dict:
    """Time UBP of an ``n_side x n_side`` planar array onto an ``nx x ny x nz`` grid.

    The signals are random (UBP's cost does not depend on their values); the array has a
    1.5 mm pitch at z = 0 facing +z and the grid is the box over it from 5 mm deep, so
    every voxel reads every sensor inside the time window.  The first call compiles the
    kernel and is timed apart; the figure reported is the best of ``repeats`` later calls.

    Returns
    -------
    dict
        ``arch``, the sizes, ``compile_s`` (first call), ``seconds`` (best warm call),
        ``all_s`` (every warm call) and ``pairs_per_s`` (voxel-sensor pairs per second).
    """
    from .backend import ensure_init
    from .core.acquisition import Acquisition
    from .model.backproject import ubp

    arch = ensure_init()
    pitch, fs, c = 1.5e-3, 40e6, 1500.0
    g = (np.arange(n_side) - (n_side - 1) / 2) * pitch
    xx, yy = np.meshgrid(g, g, indexing="ij")
    positions = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((len(positions), n_samples)).astype(np.float32)
    acq = Acquisition(signals, positions, fs, c, normals=np.tile([0.0, 0.0, 1.0], (xx.size, 1)))
    width = max(n_side - 1, 1) * pitch
    spacing = np.array([width / max(nx - 1, 1), width / max(ny - 1, 1), 0.3e-3])
    origin = np.array([-width / 2, -width / 2, 5e-3])
    shape = (nx, ny, nz)

    t = time.perf_counter()
    ubp(acq, origin, spacing, shape)
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        ubp(acq, origin, spacing, shape)
        times.append(time.perf_counter() - t)
    best = min(times)
    pairs = nx * ny * nz * len(positions)
    result = dict(
        arch=arch,
        n_sensors=len(positions),
        n_samples=n_samples,
        shape=shape,
        compile_s=compile_s,
        seconds=best,
        all_s=times,
        pairs_per_s=pairs / best,
    )
    if verbose:
        print(
            f"ubp [{arch}]: {len(positions)} sensors x {n_samples} samples -> "
            f"{nx} x {ny} x {nz} voxels: {best:.3f} s (best of {len(times)}; first call "
            f"with compilation {compile_s:.3f} s), {pairs / best / 1e6:.1f} M voxel-sensor "
            "pairs/s"
        )
    return result
