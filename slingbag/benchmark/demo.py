"""The end-to-end demo: simulate a vessel phantom, reconstruct it with UBP, the
model-based baseline and SlingBAG.

The data are independent of slingbag's radiator: hard-edged vessels (uniform cylinders)
radiated by the benchmark's exact simulator (:mod:`slingbag.benchmark.exact`), low-passed
at 12 MHz as an acquisition's anti-alias filter would, with 1 % noise.  Everything it
writes goes into one folder.  Each method's time and peak memory (the resident set above
the level at its start, :class:`slingbag.benchmark.peakmem.PeakMemory`) are in the table.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path
from .peakmem import measure

log = logging.getLogger("slingbag")


@dataclass(frozen=True)
class DemoSize:
    """The scene and run length of one demo size."""

    sensors: int  # per side of the square planar array
    pitch: float  # metres
    region: tuple  # phantom box x0, x1, y0, y1, z0, z1 (metres)
    spacing: float  # phantom voxel size (metres)
    n_samples: int
    iterations: int | None  # None: the preset's


SIZES = {
    # 20 x 20 x 6 mm of vessels 12 mm above a 12 x 12 array at 3 mm pitch (the reference scene).
    "default": DemoSize(12, 3e-3, (-10e-3, 10e-3, -10e-3, 10e-3, 12e-3, 18e-3), 0.1e-3, 2048, None),
    # A few seconds' worth, for tests and a first look.
    "tiny": DemoSize(8, 3e-3, (-4e-3, 4e-3, -4e-3, 4e-3, 12e-3, 15e-3), 0.2e-3, 1024, 16),
}
FS = 40e6
SOUND_SPEED = 1500.0
LOWPASS = 12e6
NOISE = 0.01
PRESET = "fast"
#: The model-based baseline's share of the demo: voxel-sensor pairs per iteration (see
#: :func:`slingbag.baselines.model_based.auto_grid`; the grid's spacing follows from the region and
#: the array) and its iterations.  About 0.2 s an iteration on 2 CPU cores.
MB_PAIR_BUDGET = 3e6
MB_ITERATIONS = 60
# Rows of metrics.md: (key of slingbag.report.metrics.metrics, label).
METRIC_ROWS = [
    ("ssim_map_z", "SSIM of the top MAP (z)"),
    ("ssim_map_y", "SSIM of the front MAP (y)"),
    ("ssim_map_x", "SSIM of the side MAP (x)"),
    ("ssim_slice", "SSIM of the slice"),
    ("snr_db", "SNR (dB)"),
    ("cnr", "CNR"),
    ("seconds", "time (s)"),
    ("peak_memory_mib", "peak memory (MiB)"),
]


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes
    ----------
    files : dict of str -> pathlib.Path
        Label -> file written.
    metrics : dict of str -> dict
        ``UBP``, ``model-based`` and ``slingbag`` -> metrics (with ``seconds`` and
        ``peak_memory_mib``).
    seconds : float
        Wall time of the whole demo.
    """

    files: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


def _format(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def metrics_table(results: dict) -> str:
    """A markdown table ``metric | <method> | ...`` of the metrics of each method.

    Parameters
    ----------
    results : dict of str -> dict
        Method -> its metrics (keys as :func:`slingbag.report.metrics.metrics`, plus ``seconds``).
    """
    methods = list(results)
    lines = [
        "| metric | " + " | ".join(methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for key, label in METRIC_ROWS:
        if not any(key in results[m] for m in methods):
            continue
        cells = [_format(results[m][key]) if key in results[m] else "" for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_safe(value):
    """Metrics as JSON: NaN and inf become null (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class Scene:
    """What the demo reconstructs: the phantom, the acquisition simulated from it, the
    phantom's box (rows x, y, z of ``lo, hi``, metres) and the sensors per side."""

    phantom: object
    acq: object
    box: np.ndarray
    n_side: int


@dataclass(frozen=True)
class MethodRun:
    """One method's volume, wall seconds and peak memory above its start (bytes)."""

    volume: object
    seconds: float
    peak: int


def run_demo(
    out_dir="slingbag-demo",
    *,
    size: str = "default",
    sensors: int | None = None,
    seed: int = 0,
    preset: str = PRESET,
    progress: bool = True,
) -> DemoResult:
    """Simulate, reconstruct (UBP, model-based and SlingBAG), measure and draw; write it
    all to a folder.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created if missing.  Receives ``acquisition.h5``, ``ubp.h5``, ``model_based.h5``,
        ``slingbag.h5``, ``slingbag.ply``, ``comparison.png``, ``metrics.md`` and
        ``metrics.json``.
    size : {"default", "tiny"}
        The scene and run length (see :data:`SIZES`).
    sensors : int, optional
        Sensors per side of the square planar array (default 12, or 8 for ``tiny``).
    seed : int
        Seed of the phantom, the noise and the reconstruction.
    preset : str
        Reconstruction preset.
    progress : bool
        Show the reconstruction's progress bar.

    Returns
    -------
    DemoResult
    """
    from ..core.config import load_config

    spec, n_side, out = _check_inputs(size, sensors, out_dir)
    config = load_config(preset)  # fail on a bad preset before any work
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    demo = DemoResult()
    scene = _acquire(demo, out, spec, n_side, seed)
    acq = scene.acq
    runs = {"UBP": _run_ubp(demo, out, acq, scene.phantom.truth)}
    runs["model-based"], mb_grid = _run_model_based(demo, out, acq, scene.box, progress)
    runs["slingbag"] = _run_slingbag(
        demo, out, acq, config, spec, seed=seed, preset=preset, progress=progress
    )
    settings = {
        "size": size,
        "sensors": n_side * n_side,
        "seed": seed,
        "preset": preset,
        "model_based_grid": mb_grid,
    }
    _write_report(demo, out, scene, runs, settings)
    demo.seconds = time.perf_counter() - t_start
    log.info("demo [6/6] metrics and figure written; total %.1f s", demo.seconds)
    return demo


def _check_inputs(size, sensors, out_dir) -> tuple[DemoSize, int, Path]:
    """The size's scene, the sensors per side and the output folder, or an InputError."""
    if size not in SIZES:
        raise InputError("--size", None, "one of " + ", ".join(SIZES), got=size)
    spec = SIZES[size]
    n_side = spec.sensors if sensors is None else int(sensors)
    if not 2 <= n_side <= 64:
        raise InputError("--sensors", None, "2 to 64 sensors per side", got=sensors)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("--out", None, "a folder", got=f"{out} (a file)")
    return spec, n_side, out


# --------------------------------------------------------------------------- the scene


def _acquire(demo: DemoResult, out: Path, spec: DemoSize, n_side: int, seed: int) -> Scene:
    """Simulate the scene's acquisition (the exact hard-edged simulator, then the
    anti-alias low-pass and the noise) and write it as ``OUT/acquisition.h5``."""
    from ..io.native import write_acquisition
    from .acquire import independent_acquisition

    t = time.perf_counter()
    phantom, array, box = _phantom_and_array(spec, n_side, seed)
    acq = independent_acquisition(
        phantom,
        array,
        fs=FS,
        n_samples=spec.n_samples,
        sound_speed=SOUND_SPEED,
        lowpass=LOWPASS,
        noise=NOISE,
        seed=seed + 1,
        attrs={"phantom": "hard-edged vessels", "seed": seed},
    )
    demo.files["acquisition"] = out / "acquisition.h5"
    write_acquisition(demo.files["acquisition"], acq)
    log.info(
        "demo [2/6] simulated %d sensors x %d samples at %g MHz (exact hard-edged model, "
        "%g MHz low-pass, %g %% noise) in %.1f s",
        acq.n_sensors,
        acq.n_samples,
        FS / 1e6,
        LOWPASS / 1e6,
        NOISE * 100,
        time.perf_counter() - t,
    )
    return Scene(phantom, acq, box, n_side)


def _phantom_and_array(spec: DemoSize, n_side: int, seed: int):
    """The vessel phantom, the square planar array and the phantom's box (3 x 2)."""
    from ..core.arrays import planar_grid
    from .phantoms import vessel_tree

    phantom = vessel_tree(seed, spec.region, truth_spacing=spec.spacing)
    box = np.asarray(spec.region).reshape(3, 2)
    array = planar_grid(n_side, n_side, spec.pitch)
    log.info(
        "demo [1/6] phantom: hard-edged vessels %s mm on a %.2g mm grid; array %d x %d at "
        "%.3g mm pitch",
        " x ".join(f"{(hi - lo) * 1e3:g}" for lo, hi in box),
        spec.spacing * 1e3,
        n_side,
        n_side,
        spec.pitch * 1e3,
    )
    return phantom, array, box


# --------------------------------------------------------------------------- the methods


def _run_ubp(demo: DemoResult, out: Path, acq, truth) -> MethodRun:
    """UBP on the truth's grid, written as ``OUT/ubp.h5``."""
    from ..baselines.ubp import ubp

    volume, seconds, peak = measure(lambda: ubp(acq, truth.origin, truth.spacing, truth.shape))
    _save(demo, "ubp", out, acq, seconds, peak, {"method": "ubp"}, volume=volume)
    log.info("demo [3/6] UBP on %s voxels in %.1f s", "x".join(map(str, truth.shape)), seconds)
    return MethodRun(volume, seconds, peak)


def _run_model_based(
    demo: DemoResult, out: Path, acq, box: np.ndarray, progress: bool
) -> tuple[MethodRun, dict]:
    """The model-based baseline, written as ``OUT/model_based.h5``, and its grid (shape,
    spacing and iterations, for metrics.json).

    It reconstructs the box slingbag reconstructs, at the spacing that keeps an iteration
    within the demo's budget for this array.
    """
    from ..baselines.model_based import auto_grid, model_based_solve

    origin, spacing, shape = auto_grid(acq, box[:, 0], box[:, 1], budget=MB_PAIR_BUDGET)
    mb, seconds, peak = measure(
        lambda: model_based_solve(
            acq, origin, spacing, shape, iterations=MB_ITERATIONS, progress=progress
        )
    )
    _save(
        demo, "model_based", out, acq, seconds, peak, mb.attrs,
        volume=mb.volume, history=mb.history,
    )  # fmt: skip
    log.info(
        "demo [4/6] model-based on %s voxels (%.2g mm), %d iterations in %.1f s",
        "x".join(map(str, shape)),
        spacing[0] * 1e3,
        mb.attrs["iterations"],
        seconds,
    )
    grid = {
        "shape": list(shape),
        "spacing": round(float(spacing[0]), 9),
        "iterations": int(mb.attrs["iterations"]),
    }
    return MethodRun(mb.volume, seconds, peak), grid


def _run_slingbag(
    demo: DemoResult, out: Path, acq, config: dict, spec: DemoSize, *, seed, preset, progress
) -> MethodRun:
    """SlingBAG on the phantom's box, written as ``OUT/slingbag.h5`` and ``OUT/slingbag.ply``."""
    from ..fit.reconstruct import reconstruct
    from ..io.ply import write_ply

    log.info("demo [5/6] SlingBAG (preset %s)...", preset)
    rec, seconds, peak = measure(
        lambda: reconstruct(
            acq, config, region=spec.region, iterations=spec.iterations, seed=seed,
            progress=progress,
        )
    )  # fmt: skip
    _save(
        demo, "slingbag", out, acq, seconds, peak, rec.attrs,
        volume=rec.volume, cloud=rec.cloud, history=rec.history,
    )  # fmt: skip
    demo.files["ply"] = out / "slingbag.ply"
    write_ply(demo.files["ply"], rec.cloud)
    log.info("demo [5/6] SlingBAG: %d balls in %.1f s", len(rec.cloud), seconds)
    return MethodRun(rec.volume, seconds, peak)


def _save(demo, name, out, acq, seconds, peak, attrs, **result):
    """Write one method's result as ``OUT/NAME.h5`` with its time, memory and source."""
    from ..io.native import write_result

    demo.files[name] = out / f"{name}.h5"
    extra = {"time_s": seconds, "peak_memory_bytes": peak, "source": str(demo.files["acquisition"])}
    write_result(demo.files[name], attrs={**attrs, **extra}, sensors=acq.positions, **result)


# --------------------------------------------------------------------------- the report


def _scores(runs: dict, truth) -> dict:
    """Method -> its metrics against the truth, its seconds and its peak memory (MiB)."""
    from ..report.metrics import metrics

    mib = 2.0**-20
    return {
        label: {
            **metrics(run.volume, truth),
            "seconds": run.seconds,
            "peak_memory_mib": run.peak * mib,
        }
        for label, run in runs.items()
    }


def _write_report(demo: DemoResult, out: Path, scene: Scene, runs: dict, settings: dict) -> None:
    """Score the methods; write ``comparison.png``, ``metrics.md`` and ``metrics.json``
    (``settings`` heads the latter)."""
    from ..report.figures import comparison_figure

    truth = scene.phantom.truth
    demo.metrics = _scores(runs, truth)
    table = metrics_table(demo.metrics)
    n_side = scene.n_side
    demo.files["comparison"] = comparison_figure(
        {"truth": truth, **{label: run.volume for label, run in runs.items()}},
        out / "comparison.png",
        title=f"hard-edged vessels, {n_side} x {n_side} sensors, exact data, "
        f"{LOWPASS / 1e6:g} MHz, {NOISE * 100:g} % noise",
        metrics=demo.metrics,
    )
    demo.files["metrics_md"] = out / "metrics.md"
    _write_text(demo.files["metrics_md"], table)
    demo.files["metrics_json"] = out / "metrics.json"
    payload = {**settings, "metrics": demo.metrics}
    _write_text(demo.files["metrics_json"], json.dumps(_json_safe(payload), indent=2) + "\n")
