"""Fingerprints of what slingbag computes on a fixed set of small scenes.

Moving or splitting code must not change a single bit of what it computes.  Run this before
and after such a change and compare the printed hashes: every scene's outputs (clouds,
volumes, loss histories) are hashed byte for byte.  Only the public API and the command
line are called, so the script runs unchanged on both sides of a move.

    TI_CPU_MAX_NUM_THREADS=1 python experiments/cloud_hashes.py > before.txt
    ... change ...
    TI_CPU_MAX_NUM_THREADS=1 python experiments/cloud_hashes.py | diff before.txt -

``--only fits baselines series demo`` runs some of the groups (all by default).

One thread: Taichi's parallel sums are reduced in whatever order the threads finish, which
changes the last bits of a loss from run to run.  About 3 minutes on one core.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

import slingbag

REGION = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 8.6e-3]


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def cloud_digest(cloud) -> str:
    return digest(cloud.xyz, cloud.sigma, cloud.p0)


def scene(name: str, value: str) -> None:
    print(f"{name:28s} {value}", flush=True)


def small_config(preset: str, iterations: int, **overrides) -> dict:
    over = {"coarse": {"iterations": iterations // 2}, "fine": {"iterations": iterations // 2}}
    for section, values in overrides.items():
        over.setdefault(section, {}).update(values)
    return slingbag.load_config(preset, overrides=over)


def fits(acq, band_acq) -> None:
    def run(name, acquisition, cfg, **kw):
        rec = slingbag.reconstruct(acquisition, cfg, region=REGION, progress=False, seed=3, **kw)
        scene(name, f"{cloud_digest(rec.cloud)} {digest(rec.volume.data, rec.history['loss'])}")
        return rec

    run("default", acq, small_config("default", 60))
    base = run("fast", acq, small_config("fast", 40))
    run("warm start", acq, small_config("warm", 20), init_cloud=base.cloud)
    run(
        "response+L1",
        band_acq,
        small_config("fast", 40, response={"kind": "bandpass", "centre": 5e6, "bandwidth": 0.7}),
    )
    wrong = acq.replace(sound_speed=1530.0)
    run(
        "sound speed + t0",
        wrong,
        small_config("fast", 40, calibrate={"params": ["sound_speed", "t0"]}),
    )
    run(
        "gain + response",
        band_acq,
        small_config(
            "fast",
            40,
            calibrate={"params": ["gain", "response"]},
            response={"kind": "bandpass", "centre": 5e6, "bandwidth": 0.7},
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "run.ckpt.npz"
        cfg = small_config("fast", 40)

        class Stop(Exception):
            pass

        def stop(it, loss, state):
            if it == 23:
                raise Stop

        try:
            slingbag.reconstruct(
                acq,
                cfg,
                region=REGION,
                progress=False,
                seed=3,
                checkpoint=ckpt,
                checkpoint_every=5,
                callback=stop,
            )
        except Stop:
            pass
        run("resumed", acq, cfg, checkpoint=ckpt, checkpoint_every=5, resume=True)


def baselines(acq) -> None:
    origin, spacing, shape = (-3e-3, -3e-3, 6e-3), 0.2e-3, (31, 31, 14)
    scene("ubp", digest(slingbag.ubp(acq, origin, spacing, shape).data))
    for subsets in (1, 2):
        vol = slingbag.model_based(acq, origin, spacing, shape, iterations=30, subsets=subsets)
        scene(f"model-based, {subsets} share(s)", digest(vol.data))


def series() -> None:
    region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
    dyn = slingbag.dynamic_vessels(3, seed=3, region=region, spacing=0.2e-3)
    frames = [
        slingbag.simulate(
            p.cloud, "planar:4x4:2e-3", model="shells", n_samples=256, noise=0.01, seed=k
        )
        for k, p in enumerate(dyn.frames)
    ]
    cfg = slingbag.load_config("fast", overrides={"init": {"balls": 300}})
    res = slingbag.reconstruct_series(
        frames,
        cfg,
        region=region,
        progress=False,
        iterations=20,
        warm_iterations=10,
        chunk=2,
        seed=5,
        workers=1,
    )
    scene("series (3 frames)", digest(res.volumes, *[c.p0 for c in res.clouds]))


def demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "slingbag",
                "demo",
                "--size",
                "tiny",
                "--out",
                tmp,
                "--no-progress",
            ],
            check=True,
            capture_output=True,
        )
        parts = []
        for name in ("slingbag.h5", "ubp.h5", "model_based.h5"):
            with h5py.File(Path(tmp) / name, "r") as f:
                f.visititems(
                    lambda k, v: (
                        parts.append(v[()])
                        if isinstance(v, h5py.Dataset) and "time" not in k and "seconds" not in k
                        else None
                    )
                )
        scene("demo --size tiny", digest(*[np.asarray(p) for p in parts]))


def main() -> None:
    groups = sys.argv[sys.argv.index("--only") + 1 :] if "--only" in sys.argv else None
    os.environ.setdefault("SLINGBAG_ARCH", "cpu")
    slingbag.init(os.environ["SLINGBAG_ARCH"])
    phantom = slingbag.vessels_phantom(region=REGION, spacing=0.2e-3, seed=2)
    acq = slingbag.simulate(
        phantom.cloud, "planar:6x6:2e-3", model="shells", n_samples=512, noise=0.01, seed=1
    )
    band = slingbag.simulate(
        phantom.cloud,
        "planar:6x6:2e-3",
        model="shells",
        n_samples=512,
        noise=0.01,
        seed=1,
        response=(5e6, 0.7),
    )
    for name, run in (
        ("fits", lambda: fits(acq, band)),
        ("baselines", lambda: baselines(acq)),
        ("series", series),
        ("demo", demo),
    ):
        if groups is None or name in groups:
            run()


if __name__ == "__main__":
    main()
