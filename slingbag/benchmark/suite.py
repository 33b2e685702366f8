"""The independent benchmark: cases, their data, and UBP, the model-based baseline and
slingbag on each.

No case's signals come from slingbag's radiator: :mod:`slingbag.benchmark.exact` radiates
hard-edged voxel phantoms (:mod:`slingbag.benchmark.phantoms`), and
:mod:`slingbag.benchmark.conditions` adds the band limits, transducer response, noise and
channel faults of real systems.  Wave-solver data (j-Wave, made by
``experiments/jwave_generate.py``) enter as files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.acquisition import Acquisition, SensorArray
from ..errors import InputError
from . import conditions, phantoms
from .exact import simulate_voxels

log = logging.getLogger("slingbag")

METHODS = ("ubp", "default", "fast")  # also "mb": the model-based baseline
SCORES = ("ssim_map_z", "ssim_map_y", "ssim_map_x", "ssim_slice", "cnr")
# Bump when the simulator, the phantoms or the conditions change: cached data are keyed on it.
DATA_VERSION = 1
# The planar scenes' slab centre above the array, metres.
PLANAR_DEPTH = 15e-3


@dataclass(frozen=True)
class Case:
    """One benchmark scene: a phantom, an array and what the acquisition does to it.

    ``array`` is anything :func:`slingbag.load_array` reads, optionally followed by
    ``@N`` for a random N-sensor subset (seeded by ``seed``).  ``phantom`` names an entry of
    :data:`PHANTOMS`.  ``file_sound_speed`` is what the file claims when it differs from
    the truth (calibration cases).  ``response`` is a transducer's (centre Hz, fractional
    -6 dB bandwidth); its impulse response goes into the file, and the reconstruction
    fits through it as it does any file that holds one (``response.kind = "auto"``).  ``source``
    is ``"exact"`` (:mod:`slingbag.benchmark.exact`), ``"jwave:NAME.h5"`` (a wave-solver
    file, see :func:`source_path`) or ``"own"`` (slingbag's own ``shells`` radiator, for
    comparison only, never as evidence).

    The real-system fields (SPEC section 9) stay None for ideal point sensors in water:
    ``element`` is the sensors' face, a :func:`slingbag.core.element.parse_element` spec
    (``"rect:2e-3"``, ``"disc:3e-3"``), averaged exactly by the simulator and written to
    the file; ``layer`` is ``(depth, tissue_speed)``, water at ``sound_speed`` up to
    ``depth`` metres in front of the array and tissue beyond (the file still says
    ``sound_speed``); ``attenuation`` is ``a0`` of a power law ``a0 f`` in dB/cm/MHz, with
    its minimum phase; ``depth`` moves a planar scene's centre from :data:`PLANAR_DEPTH`.
    """

    name: str
    phantom: str
    array: str
    noise: float = 0.01
    lowpass: float | None = 12e6
    response: tuple | None = None
    faults: bool = False
    fs: float = 40e6
    samples: int = 2048
    sound_speed: float = 1500.0
    file_sound_speed: float | None = None
    calibrate: tuple = ()
    source: str = "exact"
    seed: int = 0
    tags: tuple = field(default_factory=tuple)
    element: str | None = None
    layer: tuple | None = None
    attenuation: float | None = None
    depth: float | None = None


#: Fields added with the real-system cases: left out of the cache key while None, so that
#: the data cached before them keep their keys.
_OPTIONAL_FIELDS = ("element", "layer", "attenuation", "depth")
#: Where an attenuating case without a transducer response has its sound speed, Hz.
ATTENUATION_REFERENCE = 5e6


def _box(centre, size) -> np.ndarray:
    """``x0, x1, y0, y1, z0, z1`` of a box of ``size`` around ``centre``."""
    half = np.asarray(size) / 2
    return np.ravel(np.column_stack([centre - half, centre + half]))


def _placed(centre, spheres) -> list:
    """Spheres ``(dx, dy, dz, diameter)`` given relative to ``centre``."""
    return [(centre[0] + x, centre[1] + y, centre[2] + z, d) for x, y, z, d in spheres]


def _vessels(seed, size=(20e-3, 20e-3, 6e-3), **kw):
    def make(centre):
        return phantoms.vessel_tree(seed, _box(centre, size), **kw)

    return make


def _spheres_only(centre):
    c = np.asarray(centre)
    spheres = [
        (-5e-3, 3e-3, 0.0, 4e-3),
        (4e-3, -4e-3, -1e-3, 2.5e-3),
        (3e-3, 6e-3, 1e-3, 1.5e-3),
        (-3e-3, -6e-3, 0.5e-3, 1e-3),
    ]
    return phantoms.sphere_set(_placed(c, spheres), _box(c, (20e-3, 20e-3, 6e-3)), name="spheres")


def _vessels_with_spheres(centre):
    c = np.asarray(centre)
    spheres = [(-5e-3, 3e-3, 0.0, 3e-3), (4e-3, -4e-3, -0.5e-3, 2e-3), (2e-3, 6e-3, 1e-3, 1.2e-3)]
    return _vessels(3, spheres=_placed(c, spheres), name="vessels+spheres")(c)


def _rat_liver(centre):
    from ..io.ply import read_ply

    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "rat_liver_phantom.ply"
    if not path.exists():
        raise InputError(str(path), None, "the rat-liver PLY (../shared/data beside the clone)")
    cloud = read_ply(path)
    mid = 0.5 * (cloud.xyz.min(axis=0) + cloud.xyz.max(axis=0))
    cloud.xyz = cloud.xyz - mid + np.asarray(centre)
    return phantoms.cloud_phantom(cloud, name="rat-liver")


# name -> factory(centre) -> HardPhantom
PHANTOMS = {
    "vessels": _vessels(0),
    "vessels-deep": _vessels(1, size=(20e-3, 20e-3, 8e-3)),
    "vessels-thin": _vessels(2, trunk_radius=(0.2e-3, 0.3e-3), min_radius=0.1e-3),
    "vessels-thick": _vessels(4, trunk_radius=(0.6e-3, 0.8e-3), min_radius=0.25e-3),
    "vessels+spheres": _vessels_with_spheres,
    "spheres": _spheres_only,
    "rat-liver": _rat_liver,
    "small vessels": _vessels(5, size=(12e-3, 12e-3, 4e-3)),
}

SPHERE = str(Path(__file__).resolve().parents[3] / "shared" / "data" / "sphere_1013_sensors.txt")

# The full suite (experiments/benchmark.py); tags pick subsets.
SUITE = [
    Case("vessels 12x12 12MHz 1%", "vessels", "planar:12x12:3e-3", tags=("core",)),
    Case(
        "vessels 12x12 12MHz 1%, slingbag's own simulator",
        "vessels",
        "planar:12x12:3e-3",
        source="own",
        tags=("own",),
    ),
    Case("vessels 12x12 12MHz 0%", "vessels", "planar:12x12:3e-3", noise=0.0, tags=("noise",)),
    Case("vessels 12x12 12MHz 5%", "vessels", "planar:12x12:3e-3", noise=0.05, tags=("noise",)),
    Case("vessels 24x24 12MHz 1%", "vessels", "planar:24x24:3e-3", tags=("core",)),
    Case("vessels 7x7 12MHz 1%", "vessels", "planar:7x7:5e-3"),
    Case("deep vessels 16x16 6MHz 1%", "vessels-deep", "planar:16x16:2e-3", lowpass=6e6),
    Case("thin vessels 12x12 1.5mm", "vessels-thin", "planar:12x12:1.5e-3"),
    Case("thick vessels 16x16 3mm", "vessels-thick", "planar:16x16:3e-3", lowpass=6e6),
    Case(
        "vessels+spheres 16x16 faults 2%",
        "vessels+spheres",
        "planar:16x16:2e-3",
        noise=0.02,
        faults=True,
        tags=("core",),
    ),
    Case("spheres 12x12 12MHz 1%", "spheres", "planar:12x12:3e-3"),
    Case(
        "vessels 12x12 c 1540 (file 1500)",
        "vessels",
        "planar:12x12:3e-3",
        sound_speed=1540.0,
        file_sound_speed=1500.0,
        calibrate=("sound_speed",),
        tags=("calibration",),
    ),
    Case(
        "vessels 12x12 j-Wave 3.75MHz 1%",
        "vessels",
        "planar:12x12:3e-3",
        lowpass=None,
        source="jwave:vessels_planar12_jwave.h5",
        tags=("core", "jwave"),
    ),
    Case(
        "vessels seed 1 12x12 j-Wave 3.75MHz 1%",
        "vessels",
        "planar:12x12:3e-3",
        lowpass=None,
        source="jwave:vessels_seed1_planar12_jwave.h5",
        tags=("jwave",),
    ),
    Case("rat liver sphere-1013", "rat-liver", SPHERE, samples=4096, tags=("liver",)),
    Case("rat liver sphere-1013@128", "rat-liver", SPHERE + "@128", samples=4096, tags=("liver",)),
    Case(
        "rat liver sphere-1013 2MHz band-pass",
        "rat-liver",
        SPHERE,
        samples=4096,
        lowpass=None,
        response=(2e6, 0.54),
        tags=("liver",),
    ),
    Case(
        "vessels hemisphere-1024@256",
        "vessels-thin",
        "hemisphere-1024@256",
        samples=4096,
        lowpass=6e6,
    ),
]


def _hemisphere_2mhz(phantom: str, faces: bool) -> Case:
    """A phantom on 256 of the 1,024-sensor hemisphere through a 2.25 MHz / 60 % band,
    with 3 mm disc faces or (the twin to compare with) point sensors."""
    return Case(
        f"{phantom} hemisphere-1024@256 {'3mm discs' if faces else 'points'} 2.25MHz",
        phantom,
        "hemisphere-1024@256",
        samples=4096,
        lowpass=None,
        response=(2.25e6, 0.6),
        element="disc:3e-3" if faces else None,
        tags=("real",),
    )


def _deep_5mhz(attenuation: float | None) -> Case:
    """Vessels 35 mm in front of a 16 x 16 array at 2 mm pitch through a 5 MHz / 70 %
    band, with soft tissue's attenuation or (the twin) without."""
    what = f"{attenuation:g}dB/cm/MHz" if attenuation else "no attenuation"
    return Case(
        f"deep vessels 16x16 35mm 5MHz {what}",
        "vessels",
        "planar:16x16:2e-3",
        lowpass=None,
        response=(5e6, 0.7),
        attenuation=attenuation,
        depth=35e-3,
        tags=("real",),
    )


# What real systems add (SPEC section 9), tagged "real": elements of finite size (their
# point-sensor twins are "vessels 12x12 12MHz 1%", "spheres 12x12 12MHz 1%" and the
# hemisphere "points" cases), tissue whose sound speed the file does not know, and
# attenuation (its twin without).  Too slow for the test suite: the 12 x 12 face cases take
# about 3-4 min each to simulate on 2 cores.
REAL_SUITE = [
    Case(
        "vessels 12x12 2mm squares 12MHz 1%",
        "vessels",
        "planar:12x12:3e-3",
        element="rect:2e-3",
        tags=("real",),
    ),
    Case(
        "spheres 12x12 2mm squares",
        "spheres",
        "planar:12x12:3e-3",
        element="rect:2e-3",
        tags=("real",),
    ),
    _hemisphere_2mhz("vessels", True),
    _hemisphere_2mhz("vessels", False),
    _hemisphere_2mhz("spheres", True),
    _hemisphere_2mhz("spheres", False),
    Case(
        "vessels 12x12 tissue layer 1560 (file 1500)",
        "vessels",
        "planar:12x12:3e-3",
        layer=(8e-3, 1560.0),
        tags=("real",),
    ),
    _deep_5mhz(0.5),
    _deep_5mhz(None),
]
SUITE += REAL_SUITE


# Small cases for the test suite (minutes on 2 cores, with the `fast` preset): a
# regression on independent data fails CI.
CI_SUITE = [
    Case("ci vessels 8x8 12MHz 1%", "small vessels", "planar:8x8:2e-3", samples=1024),
    Case(
        "ci vessels 8x8 faults 2%",
        "small vessels",
        "planar:8x8:2e-3",
        samples=1024,
        noise=0.02,
        faults=True,
    ),
    Case(
        "ci vessels 8x8 4MHz band-pass",
        "small vessels",
        "planar:8x8:2e-3",
        samples=1024,
        lowpass=None,
        response=(4e6, 0.6),
    ),
]


def load_case_array(spec: str, seed: int = 0) -> SensorArray:
    """An array by :func:`slingbag.load_array` spec, ``@N`` for a seeded random subset."""
    from ..core.arrays import load_array

    base, _, count = spec.partition("@")
    array = load_array(base)
    if not count:
        return array
    n = int(count)
    if not 0 < n <= len(array):
        raise InputError(spec, None, f"a subset of 1..{len(array)} sensors", got=n)
    pick = np.sort(np.random.default_rng(seed + 7).choice(len(array), n, replace=False))
    take = lambda a: None if a is None else a[pick]  # noqa: E731
    return SensorArray(array.positions[pick], take(array.normals), take(array.areas))


def phantom_centre(array: SensorArray, depth: float | None = None) -> np.ndarray:
    """Where a scene sits for this array: ``depth`` (:data:`PLANAR_DEPTH`, 15 mm) in front
    of a planar array's centre, at the centre of a spherical one."""
    from ..core.arrays import fit_sphere
    from ..core.geometry import fit_plane

    pos = array.positions
    plane = fit_plane(pos)
    if plane.rms < 1e-3 * max(np.ptp(pos, axis=0).max(), 1e-9):  # region.py's test
        normal = plane.normal
        normal = normal if normal[np.argmax(np.abs(normal))] > 0 else -normal
        return plane.centroid + (depth or PLANAR_DEPTH) * normal
    centre, _, _ = fit_sphere(pos)
    return plane.centroid if centre is None else np.asarray(centre, np.float64)


def _source_signals(case: Case, array: SensorArray | None):
    """The case's noise-free pressure at the sensors, its truth and its array: from the
    exact simulator, or from a wave-solver file (``source="jwave:NAME.h5"``)."""
    if case.source not in ("exact", "own"):
        from ..io.native import read_acquisition

        acq = read_acquisition(source_path(case.source))
        attrs = {"simulated_by": acq.attrs.get("simulated_model", case.source)}
        return acq.signals.astype(np.float64), acq.truth_volume, acq.array, attrs
    array = array if array is not None else load_case_array(case.array, case.seed)
    phantom = PHANTOMS[case.phantom](phantom_centre(array, case.depth))
    if case.source == "own":
        # For comparison only: the same truth through slingbag's own `shells` radiator,
        # one ball per truth voxel, as slingbag's earlier own-data figures were made.
        from ..model.radiator import simulate
        from ..phantoms import CLOUD_THRESHOLD, volume_to_cloud

        truth = phantom.truth
        cloud = volume_to_cloud(truth, CLOUD_THRESHOLD * float(truth.data.max()))
        own = simulate(
            cloud,
            array,
            "shells",
            fs=case.fs,
            n_samples=case.samples,
            sound_speed=case.sound_speed,
        )
        attrs = {"simulated_by": "slingbag's own shells radiator (comparison only)"}
        return own.signals.astype(np.float64), truth, array, attrs
    array = _with_element(array, case.element)
    start = time.perf_counter()
    sig = simulate_voxels(
        phantom.fine.data,
        phantom.fine.origin,
        phantom.fine.spacing,
        array.positions,
        fs=case.fs,
        n_samples=case.samples,
        sound_speed=case.sound_speed,
        element=array.element,
        normals=array.normals,
        layer=case.layer,
        attenuation=case.attenuation,
        reference_frequency=case.response[0] if case.response else ATTENUATION_REFERENCE,
    )
    log.info("%s: simulated in %.0f s", case.name, time.perf_counter() - start)
    return sig, phantom.truth, array, _real_attrs(case, array)


def _with_element(array: SensorArray, spec: str | None) -> SensorArray:
    """The array with the faces of ``spec`` (None or ``point``: as it is)."""
    from ..core.element import element_for

    element = None if not spec else element_for(
        spec, array.normals, len(array), source="element", field=None, option="element",
        got="none (give a preset, or sensors on a plane or sphere)",
    )  # fmt: skip
    if element is None:
        return array
    return SensorArray(array.positions, array.normals, array.areas, array.name, element)


def _real_attrs(case: Case, array: SensorArray) -> dict:
    """What the file says about how its data were made (root attributes)."""
    attrs = {"simulated_by": "slingbag.benchmark.exact (uniform sphere per voxel)"}
    if array.element is not None:
        attrs["simulated_faces"] = f"{array.element.describe()}, exact face average"
    if case.layer is not None:
        depth, speed = case.layer
        attrs["tissue_layer"] = (
            f"water at {case.sound_speed:g} m/s for {depth * 1e3:g} mm, then tissue at "
            f"{speed:g} m/s (refracted rays)"
        )
    if case.attenuation:
        ref = case.response[0] if case.response else ATTENUATION_REFERENCE
        attrs["attenuation"] = (
            f"{case.attenuation:g} dB/cm/MHz, minimum phase, phase velocity "
            f"{case.sound_speed:g} m/s at {ref:g} Hz"
        )
    return attrs


def source_path(source: str) -> Path:
    """A wave-solver file: ``jwave:NAME`` lives in ``$SLINGBAG_JWAVE_DIR`` (default
    ``~/.cache/slingbag/jwave``, where ``experiments/jwave_generate.py`` writes)."""
    import os

    if source.startswith("jwave:"):
        folder = os.environ.get("SLINGBAG_JWAVE_DIR") or Path.home() / ".cache/slingbag/jwave"
        return Path(folder) / source.partition(":")[2]
    return Path(source)


def simulate_case(case: Case, array: SensorArray | None = None):
    """The case's acquisition, with the truth volume attached and the file's (possibly
    wrong) sound speed: independent signals, then the case's band, response, noise and
    channel faults."""
    rng = np.random.default_rng(case.seed + 1)
    sig, truth, array, attrs = _source_signals(case, array)
    fs = case.fs
    kernel = None
    if case.lowpass:
        sig = conditions.lowpass(sig, fs, case.lowpass)
        attrs["lowpass_hz"] = case.lowpass
    if case.response is not None:
        kernel = conditions.transducer_response(fs, *case.response)
        sig = conditions.apply_response(sig, kernel)
        attrs["transducer"] = f"{case.response[0]:g} Hz, {case.response[1]:g} bandwidth"
    sig = conditions.add_noise(sig, case.noise, rng)
    if case.faults:
        sig, info = conditions.channel_faults(sig, rng)
        attrs["dead_channels"] = info["dead"]
    attrs["noise"] = case.noise
    return Acquisition(
        signals=sig.astype(np.float32),
        positions=array.positions,
        fs=fs,
        sound_speed=case.file_sound_speed or case.sound_speed,
        normals=array.normals,
        areas=array.areas,
        truth_volume=truth,
        attrs=attrs,
        impulse_response=kernel,
        element=array.element,
    )


def _case_key(case: Case) -> str:
    fields = {k: v for k, v in asdict(case).items() if not (k in _OPTIONAL_FIELDS and v is None)}
    text = json.dumps([DATA_VERSION, fields], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def case_data(case: Case, cache: Path | None):
    """The case's acquisition, from ``cache`` when it was simulated before."""
    from ..io.native import read_acquisition, write_acquisition

    path = None if cache is None else Path(cache) / f"{_case_key(case)}.h5"
    if path is not None and path.exists():
        return read_acquisition(path)
    acq = simulate_case(case)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_acquisition(path, acq)
    return acq


def _config_for(case: Case, preset: str, acq: Acquisition, overrides: dict | None):
    from ..core.config import load_config

    cfg = load_config(preset, overrides=overrides or None)
    if case.calibrate:
        cfg["calibrate"]["params"] = list(case.calibrate)
    return cfg


def run_method(case: Case, acq: Acquisition, method: str, overrides=None, progress=False):
    """Reconstruct ``acq`` with ``method`` ("ubp", "mb" or a preset name); the volume, its
    seconds and the extra numbers worth reporting, among them ``peak_memory_bytes``: the
    largest resident set above the level at the method's start (:class:`PeakMemory`)."""
    from .peakmem import PeakMemory

    with PeakMemory() as mem:
        volume, seconds, extra = _run_method(case, acq, method, overrides, progress)
    extra["peak_memory_bytes"] = mem.bytes
    return volume, seconds, extra


def _run_method(case: Case, acq: Acquisition, method: str, overrides=None, progress=False):
    from ..baselines.ubp import ubp
    from ..fit.reconstruct import reconstruct

    truth = acq.truth_volume
    start = time.perf_counter()
    extra = {}
    if method in ("ubp", "mb"):
        # The baselines see the data slingbag fits: offsets removed, dead channels out.
        from ..core.conditioning import clean_acquisition

        clean = clean_acquisition(acq)
        if method == "ubp":
            volume = ubp(clean, truth.origin, truth.spacing, truth.shape)
        else:
            volume, info = _model_based_on_truth_box(clean, truth)
            extra.update(info)
    else:
        cfg = _config_for(case, method, acq, overrides)
        rec = reconstruct(acq, cfg, progress=progress)
        volume = rec.volume
        extra["balls"] = len(rec.cloud)
        extra["region_holds"] = truth_inside(truth, rec.attrs["region_lo"], rec.attrs["region_hi"])
        if "calibrated_sound_speed" in rec.attrs:
            extra["sound_speed"] = float(rec.attrs["calibrated_sound_speed"])
        history = rec.history.get("data_loss", rec.history.get("loss"))
        if history is not None and len(history):
            extra["final_loss"] = float(np.asarray(history)[-1])
    return volume, time.perf_counter() - start, extra


def _model_based_on_truth_box(acq, truth):
    """The model-based baseline on the truth's box (the box UBP gets), its grid chosen
    from the data by :func:`slingbag.baselines.model_based.auto_grid`, with the file's response when
    it has one and the data-chosen TV weight; the volume and what to report of the run."""
    from ..baselines.model_based import MB_ITERATIONS, auto_grid, model_based_solve

    lo = truth.origin
    hi = truth.origin + (np.asarray(truth.shape) - 1) * truth.spacing
    origin, spacing, shape = auto_grid(acq, lo, hi)
    res = model_based_solve(acq, origin, spacing, shape, iterations=MB_ITERATIONS)
    info = {
        "unknowns": int(np.prod(shape)),
        "mb_spacing": float(spacing[0]),
        "iterations": int(res.attrs["iterations"]),
        "tv_weight": float(res.attrs["tv_weight"]),
        "system_matrix_bytes": float(res.attrs["system_matrix_bytes"]),
    }
    return res.volume, info


def truth_inside(truth, lo, hi) -> float:
    """Share of the truth's total p0 inside the box ``[lo, hi]``."""
    data = np.clip(np.asarray(truth.data, np.float64), 0, None)
    inside = np.ones(data.shape, bool)
    for d, axis in enumerate(truth.axes()):
        ok = (axis >= lo[d]) & (axis <= hi[d])
        shape = [1, 1, 1]
        shape[d] = -1
        inside &= ok.reshape(shape)
    return float(data[inside].sum() / max(data.sum(), 1e-300))


def score(volume, truth) -> dict:
    from ..report.metrics import metrics

    m = metrics(volume, truth)
    return {k: float(m[k]) for k in SCORES}


def run_case(case: Case, methods=METHODS, *, cache=None, overrides=None, on_done=None):
    """Every method on one case.

    Returns
    -------
    rows : dict
        ``{method: {scores..., "seconds": s, ...}}``.
    volumes : dict
        ``{"truth": Volume, method: Volume, ...}``.
    """
    from ..errors import SlingbagError

    acq = case_data(case, cache)
    rows, volumes = {}, {"truth": acq.truth_volume}
    for method in methods:
        try:
            volume, seconds, extra = run_method(case, acq, method, overrides)
        except SlingbagError as exc:  # one failed run is a result, not the end of the suite
            rows[method] = {"error": str(exc)}
            log.warning("%s | %s failed: %s", case.name, method, exc)
            if on_done is not None:
                on_done()
            continue
        rows[method] = {**score(volume, acq.truth_volume), "seconds": seconds, **extra}
        volumes[method] = volume
        log.info(
            "%s | %s: SSIM(MAP-z) %.3f in %.0f s",
            case.name,
            method,
            rows[method]["ssim_map_z"],
            seconds,
        )
        if rows[method].get("region_holds", 1.0) < 0.99:
            log.warning(
                "%s | %s: the inferred region holds only %.0f %% of the object",
                case.name,
                method,
                100 * rows[method]["region_holds"],
            )
        if on_done is not None:
            on_done()
    return rows, volumes


def select(names=None, tags=None, suite=SUITE) -> list:
    """Cases of ``suite`` named exactly as one of ``names``, or whose name contains one of
    the other ``names``, or that carry one of ``tags``."""
    if not names and not tags:
        return list(suite)
    exact = {n.lower() for n in names or ()} & {c.name.lower() for c in suite}
    out = []
    for case in suite:
        if case.name.lower() in exact:
            out.append(case)
        elif names and any(n.lower() in case.name.lower() for n in names if n.lower() not in exact):
            out.append(case)
        elif tags and set(tags) & set(case.tags):
            out.append(case)
    return out


def _mb(n_bytes) -> str:
    return "" if n_bytes is None else f"{n_bytes / 2**20:.0f}"


def table(results: dict, methods=METHODS) -> str:
    """Markdown table: one row per case and method, then the mean over cases.  Memory is
    each run's peak resident set above the level at its start, MiB (``run_method``)."""
    head = "| case | method | SSIM MAP-z | MAP-y | MAP-x | slice | CNR | time (s) | memory (MiB) |"
    lines = [head, "|" + "---|" * 9]
    for name, rows in results.items():
        for method in methods:
            if method in rows and "error" in rows[method]:
                lines.append(f"| {name} | {method} | failed: {rows[method]['error'][:60]} ||||||")
            elif method in rows:
                r = rows[method]
                lines.append(
                    f"| {name} | {method} | {r['ssim_map_z']:.3f} | {r['ssim_map_y']:.3f} | "
                    f"{r['ssim_map_x']:.3f} | {r['ssim_slice']:.3f} | {r['cnr']:.1f} | "
                    f"{r['seconds']:.0f} | {_mb(r.get('peak_memory_bytes'))} |"
                )
    for method in methods:
        got = [rows[method] for rows in results.values() if "ssim_map_z" in rows.get(method, {})]
        if got:
            mean = {k: float(np.mean([g[k] for g in got])) for k in (*SCORES, "seconds")}
            mems = [g["peak_memory_bytes"] for g in got if "peak_memory_bytes" in g]
            lines.append(
                f"| **mean of {len(got)}** | {method} | {mean['ssim_map_z']:.3f} | "
                f"{mean['ssim_map_y']:.3f} | {mean['ssim_map_x']:.3f} | "
                f"{mean['ssim_slice']:.3f} | {mean['cnr']:.1f} | {mean['seconds']:.0f} | "
                f"{_mb(max(mems)) + ' (max)' if mems else ''} |"
            )
    return "\n".join(lines)


LAB_PHANTOMS = ("vessels", "vessels+spheres", "spheres")


def lab_cases(
    array: str,
    *,
    fs: float = 40e6,
    samples: int = 2048,
    response=None,
    noise: float = 0.01,
    lowpass: float | None = None,
    sound_speed: float = 1500.0,
    phantoms_=LAB_PHANTOMS,
    element: str | None = None,
) -> list:
    """The suite's phantoms on a lab's own array and band (``slingbag benchmark``), with
    its elements' faces (``element``, a :func:`slingbag.core.element.parse_element` spec;
    None for point sensors)."""
    if element is not None and element.strip() == "point":
        element = None
    faces = f" {element}" if element else ""
    if lowpass is None and response is None:
        lowpass = 0.3 * fs  # an anti-alias filter a little below Nyquist
    return [
        Case(
            f"{name} on {Path(array.partition('@')[0]).name}{faces}",
            name,
            array,
            noise=noise,
            lowpass=lowpass,
            response=tuple(response) if response is not None else None,
            fs=fs,
            samples=samples,
            sound_speed=sound_speed,
            element=element,
        )
        for name in phantoms_
    ]


def run_suite(
    cases, methods=METHODS, *, out=None, cache=None, overrides=None, progress=True, resume=False
):
    """Run ``methods`` on ``cases``; write ``table.md``, ``results.json`` and one MAP
    figure per case into ``out`` (atomically, after every case); return
    ``{case: {method: row}}``.  With ``resume``, cases that ``out/results.json`` already
    holds for every method are not run again."""
    from tqdm.auto import tqdm

    from ..io.atomic import atomic_path

    out = Path(out) if out is not None else None
    results = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if resume and (out / "results.json").exists():
            results = json.loads((out / "results.json").read_text())
    bar = tqdm(total=len(cases) * len(methods), disable=not progress, unit="run")
    for i, case in enumerate(cases):
        bar.set_description(case.name[:40])
        done = results.get(case.name, {})
        if all(m in done and "error" not in done[m] for m in methods):
            bar.update(len(methods))
            continue
        rows, volumes = run_case(
            case, methods, cache=cache, overrides=overrides, on_done=lambda: bar.update(1)
        )
        results[case.name] = rows
        if out is not None:
            from ..report.figures import comparison_figure

            comparison_figure(volumes, out / f"case{i:02d}.png", title=case.name, metrics=rows)
            for name, text in (
                ("table.md", table(results, methods) + "\n"),
                ("results.json", json.dumps(results, indent=1)),
            ):
                with atomic_path(out / name) as tmp:
                    Path(tmp).write_text(text)
    bar.close()
    return results
