"""Benchmarks that print figures and ratios (never timed tests).

``slingbag bench ubp`` times universal back-projection; ``slingbag bench reconstruct`` a
reconstruction of the vessels phantom on 12 x 12 sensors from slingbag's own ``shells``
simulation (a timing; its SSIM is no evidence of quality).

``slingbag bench forward`` times the radiator on the issue's reference case: 600,000 balls
(sigma 0.1-0.6 mm) in an 80 x 104 x 40 mm region 15 mm above the planar-196 array, 4,096
samples at 40 MHz.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass, replace

import numpy as np


def _peak_rss_gb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _planar_grid(n_side: int, pitch: float) -> np.ndarray:
    g = (np.arange(n_side) - (n_side - 1) / 2) * pitch
    X, Y = np.meshgrid(g, g, indexing="ij")
    return np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], axis=1)


def reference_scene(n_balls=600_000, seed=0):
    """Balls in an 80 x 104 x 40 mm box 15 mm above a 14 x 14, 10 mm pitch array."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([-40e-3, -52e-3, 15e-3], [40e-3, 52e-3, 55e-3], (n_balls, 3))
    p0 = rng.uniform(20, 100, n_balls)
    sigma = rng.uniform(0.1e-3, 0.6e-3, n_balls)
    return xyz.astype(np.float32), p0.astype(np.float32), sigma.astype(np.float32)


def exact_signals(xyz, p0, sigma, sensors, n_samples, fs, c, t0=0.0, chunk=20_000):
    """The radiator's uncut closed form in float64, at a few sensors: the reference
    for the radiators' agreement.  Each ball is summed over +/- 9 sigma (the rest is below
    1e-17 of its peak), so it costs balls x window, not balls x samples."""
    xyz = np.asarray(xyz, np.float64)
    p0 = np.asarray(p0, np.float64)
    sigma = np.asarray(sigma, np.float64)
    step = c / fs
    out = np.zeros((len(sensors), n_samples))
    for k, pos in enumerate(np.asarray(sensors, np.float64)):
        R = np.maximum(np.linalg.norm(xyz - pos, axis=1), 1e-9)
        u = (R - c * t0) / step
        for lo in range(0, len(R), chunk):
            sl = slice(lo, lo + chunk)
            half = int(np.ceil(9 * sigma[sl].max() / step)) + 1
            n = np.floor(u[sl])[:, None] + np.arange(-half, half + 1)[None, :]
            D = R[sl, None] - c * (t0 + n / fs)
            E = R[sl, None] + c * (t0 + n / fs)
            a2 = 2 * sigma[sl, None] ** 2
            q = (
                p0[sl, None]
                / (2 * R[sl, None])
                * (D * np.exp(-(D**2) / a2) + E * np.exp(-(E**2) / a2))
            )
            keep = (n >= 0) & (n < n_samples)
            out[k] += np.bincount(n[keep].astype(np.int64), q[keep], minlength=n_samples)
    return out


@dataclass(frozen=True)
class ForwardCase:
    """What a forward benchmark radiates: the balls (float32), the sensors and the sampling."""

    xyz: np.ndarray
    p0: np.ndarray
    sigma: np.ndarray
    sensors: np.ndarray
    n_samples: int
    fs: float
    c: float

    @property
    def step(self) -> float:
        """The distance sound travels in one sample (metres)."""
        return self.c / self.fs

    def balls(self, n: int) -> ForwardCase:
        """The same case with its first ``n`` balls."""
        return replace(self, xyz=self.xyz[:n], p0=self.p0[:n], sigma=self.sigma[:n])

    def forward(self, model) -> np.ndarray:
        """The sensors' signals from the balls (``model``'s radiator, t0 = 0)."""
        from ..model.radiator import forward_signals

        return forward_signals(
            self.xyz, self.p0, self.sigma, self.sensors, self.n_samples, self.fs, self.c, 0.0,
            model,
        )  # fmt: skip

    def backward(self, signals, model) -> dict:
        """The gradients of ``sum(signals * forward)`` with respect to the balls."""
        from ..model.radiator import backward_signals

        return backward_signals(
            self.xyz, self.p0, self.sigma, self.sensors, signals, self.fs, self.c, 0.0, model
        )


def bench_forward(n_balls=600_000, n_samples=4096, repeats=2, small_balls=2_000,
                  check_sensors=2) -> dict:  # fmt: skip
    """Time forward and forward+backward of both ``gaussian`` algorithms on the reference
    case (``windowed``: the profile cut at 3 sigma; ``split``: the uncut closed form by
    Gaussian splitting and FFTs), their agreement with the float64 closed form at
    ``check_sensors`` sensors, and the windowed kernel against an every-sample evaluation
    on a small case of the same geometry."""
    from ..backend import ensure_init
    from ..model import gauss_split
    from ..model.radiator import RadiatorModel

    arch = ensure_init()
    sensors = _planar_grid(14, 10e-3)
    case = ForwardCase(*reference_scene(n_balls), sensors, n_samples, fs=40e6, c=1500.0)
    rss0 = _peak_rss_gb()
    models = {
        "windowed": RadiatorModel(algorithm="windowed"),
        "split": RadiatorModel(algorithm="split"),
    }
    timing, signals = {}, {}
    for name, model in models.items():
        t_fwd, t_both, signals[name] = _time_forward_backward(case, model, repeats)
        timing[name] = (t_fwd, t_both)
    rss_peak = _peak_rss_gb()

    mean_window = float(np.mean(6 * case.sigma / case.step))
    plan = gauss_split.plan(case.sigma / case.step, n_samples, len(sensors))
    taps = {"windowed": mean_window, "split": plan.taps_per_ball}
    algos = _algorithm_figures(case, timing, signals, taps, check_sensors)
    agree = signals["split"] - signals["windowed"]
    corr = float(np.corrcoef(signals["split"].ravel(), signals["windowed"].ravel())[0, 1])
    t_dense, t_win, small_agree = _against_every_sample(case.balls(small_balls), models["windowed"])
    return {
        "arch": arch,
        "machine": f"{platform.processor() or platform.machine()}, {_cpu_count()} cores",
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "balls": n_balls,
        "sensors": len(sensors),
        "samples": n_samples,
        "mean_window_samples": mean_window,
        "split_classes": len(plan.widths),
        "split_fft_length": plan.n_fft,
        "algorithms": algos,
        "split_vs_windowed_max_rel_diff": float(
            np.abs(agree).max() / np.abs(signals["windowed"]).max()
        ),
        "split_vs_windowed_correlation": corr,
        "checked_sensors": int(check_sensors),
        "forward_speedup": timing["windowed"][0] / timing["split"][0],
        "forward_backward_speedup": timing["windowed"][1] / timing["split"][1],
        "peak_rss_gb": rss_peak,
        "rss_before_gb": rss0,
        "small_balls": small_balls,
        "every_sample_s": t_dense,
        "windowed_small_s": t_win,
        "speedup_vs_every_sample": t_dense / max(t_win, 1e-9),
        "small_case_max_rel_diff": small_agree,
    }


def _time_forward_backward(case: ForwardCase, model, repeats: int):
    """Best seconds of ``repeats`` forward and forward+backward runs of ``model``, and
    the signals of the last forward run.  A run on 8 balls compiles the kernels first."""
    warm_up = case.balls(8)
    warm_up.forward(model)
    warm_up.backward(np.ones((len(case.sensors), case.n_samples), np.float32), model)
    t_fwd, t_both = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        sig = case.forward(model)
        t_fwd.append(time.perf_counter() - t)
        t = time.perf_counter()
        sig = case.forward(model)
        case.backward(sig, model)
        t_both.append(time.perf_counter() - t)
    return min(t_fwd), min(t_both), sig


def _algorithm_figures(case: ForwardCase, timing, signals, taps, check_sensors) -> dict:
    """Algorithm -> its times, its samples per ball-sensor pair, its throughput and its
    largest difference to the float64 closed form at ``check_sensors`` sensors (relative
    to the closed form's peak)."""
    pairs = len(case.sensors) * len(case.xyz)
    picks = np.linspace(0, len(case.sensors) - 1, check_sensors).round().astype(int)
    # The radiators take float32 positions: the reference is exact for those same inputs.
    ref = exact_signals(
        case.xyz, case.p0, case.sigma, case.sensors[picks].astype(np.float32), case.n_samples,
        case.fs, case.c,
    )  # fmt: skip
    scale = np.abs(ref).max()
    algos = {}
    for name, (t_fwd, t_both) in timing.items():
        algos[name] = {
            "forward_s": t_fwd,
            "forward_backward_s": t_both,
            "samples_per_pair": taps[name],
            "sample_evals_per_s": pairs * taps[name] / t_fwd,
            "max_rel_diff_to_exact": float(np.abs(signals[name][picks] - ref).max() / scale),
        }
    return algos


def _against_every_sample(small: ForwardCase, windowed_model) -> tuple[float, float, float]:
    """The every-sample baseline against the windowed kernel on ``small``: the seconds of
    each (after a compiling run) and their largest difference relative to the baseline."""
    from ..kernels import radiator

    dense = np.zeros((len(small.sensors), small.n_samples), np.float32)
    args = (
        small.xyz, small.p0, small.sigma, small.sensors.astype(np.float32), dense, small.fs,
        small.c, 0.0, 3.0,
    )  # fmt: skip
    radiator.forward_every_sample(*args)
    t = time.perf_counter()
    radiator.forward_every_sample(*args)
    t_dense = time.perf_counter() - t
    small.forward(windowed_model)
    t = time.perf_counter()
    windowed = small.forward(windowed_model)
    t_win = time.perf_counter() - t
    return t_dense, t_win, float(np.abs(windowed - dense).max() / np.abs(dense).max())


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def format_forward(res: dict) -> str:
    lines = [
        f"slingbag bench forward on {res['arch']} ({res['machine']},"
        f" load average {res['load_average']:.1f} at the start)",
        f"  case: {res['balls']:,} balls x {res['sensors']} sensors x {res['samples']} samples"
        f" (mean 6-sigma window {res['mean_window_samples']:.0f} samples;"
        f" split: {res['split_classes']} classes, FFT length {res['split_fft_length']})",
        "  algorithm   forward  fwd+bwd  samples/pair  G sample-evals/s  max rel. diff to exact",
    ]
    for name, a in res["algorithms"].items():
        lines.append(
            f"  {name:9s} {a['forward_s']:8.2f} s {a['forward_backward_s']:7.2f} s"
            f" {a['samples_per_pair']:12.1f} {a['sample_evals_per_s'] / 1e9:17.2f}"
            f"  {a['max_rel_diff_to_exact']:.1e}"
        )
    lines += [
        f"  split vs windowed: x{res['forward_speedup']:.2f} forward,"
        f" x{res['forward_backward_speedup']:.2f} forward+backward; they differ by"
        f" {res['split_vs_windowed_max_rel_diff']:.1e} of the peak (correlation"
        f" {res['split_vs_windowed_correlation']:.4f}: the windowed profile is cut at 3 sigma)",
        f"  (differences to the float64 closed form at {res['checked_sensors']} sensors)",
        f"  peak memory (RSS)  {res['peak_rss_gb']:8.2f} GB"
        f"  (of which {res['rss_before_gb']:.2f} GB before the arrays)",
        f"  every-sample S*T*N evaluation, {res['small_balls']:,} balls: "
        f"{res['every_sample_s']:.3f} s vs windowed {res['windowed_small_s']:.4f} s"
        f" -> speed-up x{res['speedup_vs_every_sample']:.0f}"
        f" (max rel. difference {res['small_case_max_rel_diff']:.1e})",
    ]
    return "\n".join(lines)


def bench_reconstruct(side: int = 12, pitch: float = 3e-3, preset: str = "default") -> dict:
    """Time the issue's reconstruction case: the ``vessels`` phantom (20 x 20 x 6 mm, 0.2 mm
    resolution), ``side`` x ``side`` planar sensors, 2,048 samples, ``shells`` data with
    1 % noise; reports the time, the ball count and the peak memory."""
    from ..backend import ensure_init
    from ..core.arrays import load_array
    from ..core.config import load_config
    from ..fit.reconstruct import reconstruct
    from ..model.radiator import simulate
    from ..phantoms import vessels_phantom
    from ..report.metrics import metrics

    arch = ensure_init()
    phantom = vessels_phantom(seed=0)
    acq = simulate(
        phantom.cloud,
        load_array(f"planar:{side}x{side}:{pitch}"),
        model="shells",
        n_samples=2048,
        noise=0.01,
        band=(0.1e6, 12e6),
        seed=1,
    )
    rss0 = _peak_rss_gb()
    t = time.perf_counter()
    rec = reconstruct(acq, load_config(preset), progress=False)
    seconds = time.perf_counter() - t
    m = metrics(rec.volume, phantom.volume)
    return {
        "arch": arch,
        "machine": f"{platform.processor() or platform.machine()}, {_cpu_count()} cores",
        "sensors": side * side,
        "seconds": seconds,
        "iterations": int(rec.attrs["iterations"]),
        "balls_final": int(rec.cloud.n),
        "balls_max": int(np.max(rec.history["balls"])),
        "peak_rss_gb": _peak_rss_gb(),
        "rss_before_gb": rss0,
        "ssim_map_z": m["ssim_map_z"],
    }


def format_reconstruct(res: dict) -> str:
    return "\n".join(
        [
            f"slingbag bench reconstruct on {res['arch']} ({res['machine']})",
            f"  {res['sensors']} sensors x 2048 samples, vessels 20 x 20 x 6 mm at 0.2 mm",
            f"  time               {res['seconds']:8.1f} s  ({res['iterations']} iterations)",
            f"  balls              {res['balls_max']:,} at most, {res['balls_final']:,} at the end",
            f"  peak memory (RSS)  {res['peak_rss_gb']:8.2f} GB  (process total, incl. simulation)",
            f"  SSIM(MAP-z)        {res['ssim_map_z']:8.3f}",
        ]
    )


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
    from ..backend import ensure_init
    from ..baselines.ubp import ubp
    from ..core.acquisition import Acquisition

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


def bench_faces(n_balls=20_000, n_samples=2048, sigma=0.1e-3, repeats=2) -> dict:
    """Forward and forward+backward with sensor faces against point sensors: balls of
    width ``sigma`` in a 20 x 20 x 6 mm slab 15 mm above the 12 x 12, 3 mm pitch array,
    its sensors as points, 2 mm squares and 3 mm discs (default strips)."""
    from ..backend import ensure_init
    from ..core.arrays import planar_grid
    from ..core.element import parse_element
    from ..model.radiator import Faces, RadiatorModel, backward_signals, forward_signals

    arch = ensure_init()
    array = planar_grid(12, 12, 3e-3)
    rng = np.random.default_rng(0)
    xyz = rng.uniform([-10e-3, -10e-3, 12e-3], [10e-3, 10e-3, 18e-3], (n_balls, 3))
    p0 = rng.uniform(0.5, 1.0, n_balls)
    sig = np.full(n_balls, sigma)
    model = RadiatorModel(algorithm="windowed")
    args = (array.positions, n_samples, 40e6, 1500.0, 0.0, model)
    rows = {}
    for spec in ("point", "rect:2e-3", "disc:3e-3"):
        faces = Faces.of(parse_element(spec, len(array)), array.normals)
        forward_signals(xyz[:8], p0[:8], sig[:8], *args, faces)  # compile
        t_fwd, t_both = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            out = forward_signals(xyz, p0, sig, *args, faces)
            t_fwd.append(time.perf_counter() - t)
            backward_signals(
                xyz, p0, sig, array.positions, out, 40e6, 1500.0, 0.0, model, False, faces
            )
            t_both.append(time.perf_counter() - t)
        rows[spec] = {"forward_s": min(t_fwd), "forward_backward_s": min(t_both)}
    for row in rows.values():
        row["forward_vs_point"] = row["forward_s"] / rows["point"]["forward_s"]
        row["forward_backward_vs_point"] = (
            row["forward_backward_s"] / rows["point"]["forward_backward_s"]
        )
    return {
        "arch": arch,
        "machine": f"{platform.processor() or platform.machine()}, {_cpu_count()} cores",
        "balls": n_balls,
        "sensors": len(array),
        "samples": n_samples,
        "sigma_m": sigma,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "faces": rows,
    }


def format_faces(res: dict) -> str:
    """The text report of :func:`bench_faces`."""
    head = (
        f"faces: {res['balls']} balls of {res['sigma_m'] * 1e3:g} mm x {res['sensors']} sensors"
        f" x {res['samples']} samples on {res['arch']} ({res['machine']}, load "
        f"{res['load_average']:.1f})"
    )
    lines = [head]
    for spec, row in res["faces"].items():
        lines.append(
            f"  {spec:10s} forward {row['forward_s']:.2f} s ({row['forward_vs_point']:.1f}x point)"
            f", forward+backward {row['forward_backward_s']:.2f} s "
            f"({row['forward_backward_vs_point']:.1f}x point)"
        )
    return "\n".join(lines)
