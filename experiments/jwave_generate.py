"""Photoacoustic data from j-Wave's pseudo-spectral solver, for an independent benchmark.

The signals come from j-Wave (``pip install jwave``; JAX, runs on the CPU), a k-space
pseudo-spectral time-domain solver equivalent to k-Wave's ``kspaceFirstOrder3D``.  They share
nothing with slingbag's own radiator models: only the truth (a voxel volume) and the sensor
positions come from slingbag, in a separate step run with slingbag's environment.

Four subcommands, run in order (``jwave-env`` a separate virtualenv with ``pip install
jwave h5py scipy``; put the files in ``~/.cache/slingbag/jwave/`` or ``$SLINGBAG_JWAVE_DIR``,
where ``experiments/benchmark.py`` looks for them; j-Wave 0.2.1 with JAX 0.4.38 took
20-26 minutes per 12 x 12 case on 2 shared cores, 1.25 GB)::

    # 1. truth and array, with slingbag's environment (writes an .npz; no signals)
    python experiments/jwave_generate.py truth \\
        --seed 0 --array planar:12x12:3e-3 -o vessels_planar12_truth.npz
    # 2. the simulation, with a j-Wave environment (writes a slingbag acquisition HDF5)
    jwave-env/bin/python experiments/jwave_generate.py simulate vessels_planar12_truth.npz \\
        -o vessels_planar12_jwave.h5
    # 3. physics checks of the written file against a spherical-mean integral of the truth
    jwave-env/bin/python experiments/jwave_generate.py check vessels_planar12_jwave.h5
    # 4. the solver against the analytic N-wave of a uniform sphere
    jwave-env/bin/python experiments/jwave_generate.py sphere

The truth is a hard-edged vessel tree: slingbag's seeded tree (``slingbag.phantoms.grow_tree``,
the branches of ``vessels_phantom``) drawn as binary tubes of amplitude 1 (a voxel is 1 when
its centre lies within a vessel's radius), not slingbag's soft-edged, per-vessel-amplitude
drawing.

The solver's initial pressure is that truth smoothed with a Gaussian (``--sigma``, against the
aliasing of a binary object sampled on the solver's grid) and sampled on the solver's grid by
linear interpolation.  The medium is homogeneous and lossless (``--sound-speed``) with a PML.
With a k-space corrected scheme in a homogeneous medium the time step only has to sample the
signals; sensors are point sensors on grid nodes (the 3 mm pitch is a whole number of
0.15 mm cells).  The pressure recorded every ``--dt`` is low-pass filtered (zero phase,
raised-cosine edge from ``--f-pass`` to ``--f-stop``, below the grid's Nyquist c / (2 dx))
and upsampled to ``--fs`` by zero-padding its spectrum.  After the last arrival from the
phantom the pressure at a sensor in a free 3D field is zero, so the simulation stops there
(``--t-end``, automatic) and the rest of the record is zero; every choice is stored in the
file's attributes (prefix ``jwave_``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time

import numpy as np

SOUND_SPEED = 1500.0
FS = 40e6
N_SAMPLES = 2048


# --------------------------------------------------------------------------- truth (slingbag)


def binary_vessels(seed: int, region, spacing: float):
    """Slingbag's seeded vessel tree drawn as binary tubes of amplitude 1.

    Returns ``(data, origin, spacing3)``: a float32 ``(nx, ny, nz)`` volume of 0/1, voxel
    ``[i, j, k]`` at ``origin + (i, j, k) * spacing3``, on the grid ``vessels_phantom`` uses.
    """
    from slingbag.core.volume import grid_for_region
    from slingbag.phantoms import _region_bounds, grow_tree

    lo, hi = _region_bounds(region)
    origin, spacing3, shape = grid_for_region(lo, hi, spacing)
    data = np.zeros(shape, dtype=np.float32)
    for branch in grow_tree(lo, hi, seed):
        _draw_binary_tube(data, origin, spacing3, branch.points, branch.radius)
    return data, np.asarray(origin, float), np.asarray(spacing3, float)


def _draw_binary_tube(data, origin, spacing, points, radius):
    """Set to 1 every voxel whose centre lies within ``radius`` of the polyline."""
    shape = np.array(data.shape)
    for a, b in itertools.pairwise(points):
        lo = np.floor((np.minimum(a, b) - radius - origin) / spacing).astype(int)
        hi = np.ceil((np.maximum(a, b) + radius - origin) / spacing).astype(int) + 1
        lo, hi = np.clip(lo, 0, shape), np.clip(hi, 0, shape)
        if (hi <= lo).any():
            continue
        axes = [origin[d] + np.arange(lo[d], hi[d]) * spacing[d] for d in range(3)]
        gx, gy, gz = np.meshgrid(*axes, indexing="ij", sparse=True)
        ab = b - a
        length2 = float(ab @ ab)
        px, py, pz = gx - a[0], gy - a[1], gz - a[2]
        t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / max(length2, 1e-30), 0.0, 1.0)
        d2 = (px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2
        box = tuple(slice(lo[d], hi[d]) for d in range(3))
        data[box][d2 <= radius * radius] = 1.0


def cmd_truth(args) -> None:
    import slingbag

    data, origin, spacing = binary_vessels(args.seed, args.region, args.spacing)
    array = slingbag.load_array(args.array)
    extras = {}
    if array.normals is not None:
        extras["normals"] = np.asarray(array.normals, float)
    if array.areas is not None:
        extras["areas"] = np.asarray(array.areas, float)
    np.savez_compressed(
        args.output,
        truth=data,
        origin=origin,
        spacing=spacing,
        positions=np.asarray(array.positions, float),
        array=np.str_(args.array),
        phantom=np.str_(f"slingbag vessel tree seed {args.seed}, binary tubes, amplitude 1"),
        seed=np.int64(args.seed),
        **extras,
    )
    print(
        f"truth {data.shape} at {spacing[0] * 1e3:g} mm, origin {origin * 1e3} mm, "
        f"{int(data.sum())} voxels set; array {args.array}: {len(array.positions)} sensors "
        f"-> {args.output}"
    )


# --------------------------------------------------------------------------- solver grid


def _smooth_size(n: int) -> int:
    """The smallest integer >= n whose prime factors are 2, 3, 5 or 7 (fast FFTs)."""
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def solver_grid(truth_lo, truth_hi, positions, dx, pml, margin):
    """A grid holding the phantom and the sensors outside the PML, sensors on nodes.

    Returns ``(origin, shape)``: node ``[i, j, k]`` at ``origin + (i, j, k) * dx``; the PML
    takes ``pml`` cells on every face and ``margin`` cells separate it from anything.
    """
    lo = np.minimum(truth_lo, positions.min(0))
    hi = np.maximum(truth_hi, positions.max(0))
    anchor = positions[0]
    origin = np.empty(3)
    shape = np.empty(3, dtype=int)
    for d in range(3):
        below = math.ceil((anchor[d] - lo[d]) / dx - 1e-6) + margin + pml
        above = math.ceil((hi[d] - anchor[d]) / dx - 1e-6) + margin + pml
        n = _smooth_size(below + above + 1)
        extra = n - (below + above + 1)
        below += extra // 2  # centre the spare cells
        origin[d] = anchor[d] - below * dx
        shape[d] = n
    return origin, tuple(int(s) for s in shape)


def initial_pressure(truth, t_origin, t_spacing, origin, shape, dx, sigma):
    """The truth smoothed by a Gaussian of std ``sigma`` (m), sampled on the solver grid."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    pad = math.ceil(4 * sigma / t_spacing.min()) + 2
    padded = np.pad(truth.astype(np.float32), pad)
    p_origin = t_origin - pad * t_spacing
    if sigma > 0:
        padded = gaussian_filter(padded, sigma / t_spacing, mode="constant", truncate=4.0)
    p_hi = p_origin + (np.array(padded.shape) - 1) * t_spacing
    # Solver nodes inside the padded truth box.
    i_lo = np.maximum(np.ceil((p_origin - origin) / dx - 1e-9).astype(int), 0)
    i_hi = np.minimum(np.floor((p_hi - origin) / dx + 1e-9).astype(int), np.array(shape) - 1)
    axes = [
        (origin[d] + np.arange(i_lo[d], i_hi[d] + 1) * dx - p_origin[d]) / t_spacing[d]
        for d in range(3)
    ]
    coords = np.meshgrid(*axes, indexing="ij")
    block = map_coordinates(padded, coords, order=1, mode="constant", cval=0.0)
    p0 = np.zeros(shape, dtype=np.float32)
    p0[i_lo[0] : i_hi[0] + 1, i_lo[1] : i_hi[1] + 1, i_lo[2] : i_hi[2] + 1] = block
    return p0, i_lo, i_hi


# --------------------------------------------------------------------------- signals


def lowpass_response(freqs, f_pass, f_stop):
    """1 below ``f_pass``, 0 above ``f_stop``, a raised cosine between (zero phase)."""
    h = np.ones_like(freqs)
    edge = (freqs > f_pass) & (freqs < f_stop)
    h[edge] = 0.5 * (1 + np.cos(np.pi * (freqs[edge] - f_pass) / (f_stop - f_pass)))
    h[freqs >= f_stop] = 0.0
    return h


def to_record(traces, dt, fs, n_samples, f_pass, f_stop, taper):
    """Traces sampled every ``dt`` from t = 0 -> ``(n, n_samples)`` at ``fs``, low-passed.

    ``dt`` must be a whole number ``m`` of sampling periods: the spectrum of the coarse trace
    (zero after its end) is low-passed and zero-padded ``m``-fold.  The last ``taper``
    samples of the simulated window are faded out (the pressure there is already ~0).
    """
    m = round(dt * fs)
    if abs(m - dt * fs) > 1e-6 or n_samples % m:
        raise ValueError(f"dt*fs = {dt * fs:g} must be a whole number dividing {n_samples}")
    n_coarse = n_samples // m
    traces = np.asarray(traces, dtype=np.float64)
    if traces.shape[1] > n_coarse:
        raise ValueError("simulated window longer than the record")
    if taper:
        traces = traces.copy()
        traces[:, -taper:] *= 0.5 * (1 + np.cos(np.pi * np.arange(1, taper + 1) / taper))
    padded = np.zeros((len(traces), n_coarse))
    padded[:, : traces.shape[1]] = traces
    spectrum = np.fft.rfft(padded, axis=1)
    freqs = np.fft.rfftfreq(n_coarse, dt)
    spectrum *= lowpass_response(freqs, f_pass, f_stop)
    if n_coarse % 2 == 0 and m > 1:
        spectrum[:, -1] *= 0.5  # split the coarse Nyquist bin (it is zero after the filter anyway)
    return np.fft.irfft(spectrum, n=n_samples, axis=1) * m


def run_jwave(p0, dx, dt, n_steps, sensor_index, sound_speed, pml):
    """j-Wave's PSTD solver from ``p0`` (u(0) = 0); pressure at the sensor nodes.

    Returns ``(n_sensors, n_steps + 1)``: column ``n`` is time ``n * dt`` (column 0 is p0).
    """
    import jax
    import jax.numpy as jnp
    from jwave import FourierSeries
    from jwave.acoustics import simulate_wave_propagation
    from jwave.acoustics.time_varying import TimeWavePropagationSettings
    from jwave.geometry import Domain, Medium, Sensors, TimeAxis

    domain = Domain(tuple(p0.shape), (dx, dx, dx))
    medium = Medium(domain=domain, sound_speed=float(sound_speed), pml_size=float(pml))
    # t_end a fraction of a step short of n_steps * dt, so Nt = ceil(t_end / dt) = n_steps.
    time_axis = TimeAxis(dt=float(dt), t_end=float((n_steps - 0.5) * dt))
    ix, iy, iz = (np.asarray(sensor_index[:, d]) for d in range(3))
    sensors = Sensors(positions=(ix, iy, iz))
    # smooth_initial=False: p0 is smoothed here, by a Gaussian whose width is recorded.
    settings = TimeWavePropagationSettings(checkpoint=False, smooth_initial=False)
    field = FourierSeries(jnp.asarray(p0)[..., None], domain)

    @jax.jit
    def solve(field):
        return simulate_wave_propagation(
            medium, time_axis, p0=field, sensors=sensors, settings=settings
        )

    ys = np.asarray(solve(field).block_until_ready())  # (n_steps, n_sensors, 1): t = (n+1) dt
    ys = ys.reshape(ys.shape[0], -1).T
    start = p0[ix, iy, iz][:, None]
    return np.concatenate([start, ys], axis=1)


def simulate(truth, t_origin, t_spacing, positions, args, log=print):
    """Run the whole pipeline; returns ``(signals, attrs, p0_block)``."""
    dx, dt, c = args.dx, args.dt, args.sound_speed
    # The grid holds the occupied part of the truth (the rest of its box is empty).
    occupied = np.argwhere(truth > 0) * t_spacing + t_origin
    t_lo, t_hi = occupied.min(0), occupied.max(0)
    # Margin: the Gaussian's reach, and a few cells between the PML and anything.
    margin = math.ceil(3 * args.sigma / dx - 1e-6) + args.margin
    origin, shape = solver_grid(t_lo, t_hi, positions, dx, args.pml, margin)
    index_f = (positions - origin) / dx
    index = np.rint(index_f).astype(int)
    snap = float(np.abs(index_f - index).max() * dx)
    if (index < args.pml).any() or (index >= np.array(shape) - args.pml).any():
        raise ValueError("a sensor falls inside the PML")
    p0, i_lo, i_hi = initial_pressure(truth, t_origin, t_spacing, origin, shape, dx, args.sigma)
    # Stop after the last arrival: the farthest truth voxel, plus the Gaussian's reach.
    far = _farthest(occupied, positions)
    t_end = args.t_end or (far + 4 * args.sigma + 10 * dx) / c
    n_steps = math.ceil(t_end / dt)
    m = round(dt * args.fs)
    n_steps = min(n_steps, args.samples // m - 1)
    cells = int(np.prod(shape))
    log(
        f"grid {shape} = {cells / 1e6:.2f} M cells at {dx * 1e3:g} mm (PML {args.pml}), origin "
        f"{np.round(origin * 1e3, 3)} mm; dt {dt * 1e9:g} ns (CFL {c * dt / dx:.2f}), "
        f"{n_steps} steps to {n_steps * dt * 1e6:.2f} us; sensors snapped by {snap:.2g} m"
    )
    start = time.time()
    traces = run_jwave(p0, dx, dt, n_steps, index, c, args.pml)
    seconds = time.time() - start
    log(f"j-Wave: {seconds:.1f} s")
    taper = max(2, round(0.5e-6 / dt))
    signals = to_record(traces, dt, args.fs, args.samples, args.f_pass, args.f_stop, taper)
    attrs = {
        "jwave_solver": "j-Wave simulate_wave_propagation (k-space PSTD, FourierSeries)",
        "jwave_version": _version("jwave"),
        "jax_version": _version("jax"),
        "jwave_grid_shape": np.asarray(shape, dtype=np.int64),
        "jwave_grid_origin": origin,
        "jwave_grid_spacing": float(dx),
        "jwave_pml_cells": int(args.pml),
        "jwave_dt": float(dt),
        "jwave_cfl": float(c * dt / dx),
        "jwave_steps": int(n_steps),
        "jwave_simulated_until": float(n_steps * dt),
        "jwave_tail": "samples after jwave_simulated_until are zero (free 3D field: no "
        "arrivals after the farthest phantom point's); the last 0.5 us are faded out",
        "jwave_medium": f"homogeneous, lossless, c = {c:g} m/s, rho = 1",
        "jwave_sensors": "point sensors on grid nodes (nearest node; snap distance in "
        "jwave_sensor_snap)",
        "jwave_sensor_snap": snap,
        "jwave_p0_smoothing": f"Gaussian, std {args.sigma:g} m, on the truth grid, then "
        "linear interpolation onto the solver grid; jwave's own smoothing off",
        "jwave_p0_sigma": float(args.sigma),
        "jwave_lowpass": f"zero-phase, raised-cosine from {args.f_pass:g} Hz (1) to "
        f"{args.f_stop:g} Hz (0); grid Nyquist c/(2 dx) = {c / (2 * dx):g} Hz",
        "jwave_band": np.asarray([0.0, 0.5 * (args.f_pass + args.f_stop)]),
        "jwave_resampling": f"from {1 / dt:g} Hz to {args.fs:g} Hz by spectral zero-padding",
        "jwave_run_seconds": float(seconds),
        "simulated_model": "jwave",
        "noise": 0.0,
    }
    p0_block = (
        p0[i_lo[0] : i_hi[0] + 1, i_lo[1] : i_hi[1] + 1, i_lo[2] : i_hi[2] + 1],
        origin + i_lo * dx,
    )
    return signals.astype(np.float32), attrs, p0_block


def _farthest(points, positions):
    """Largest distance between any of ``points`` and any sensor."""
    far = 0.0
    for p in positions:
        far = max(far, float(np.sqrt(((points - p) ** 2).sum(1)).max()))
    return far


def _version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - the version is informative only
        return "unknown"


# --------------------------------------------------------------------------- HDF5


def _text_attr(attrs, key, text):
    """Fixed-length UTF-8 text, as slingbag writes it (checksummed object header)."""
    import h5py

    encoded = text.encode("utf-8")
    attrs.create(
        key,
        np.array(encoded, dtype=f"S{max(1, len(encoded))}"),
        dtype=h5py.string_dtype("utf-8", max(1, len(encoded))),
    )


def write_acquisition(
    path,
    signals,
    positions,
    fs,
    sound_speed,
    t0,
    attrs,
    *,
    normals=None,
    areas=None,
    truth=None,
    p0_block=None,
):
    """Write a slingbag acquisition HDF5 (docs/formats.md), atomically (temp file + rename)."""
    import os

    import h5py

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with h5py.File(tmp, "w", libver=("v110", "latest")) as f:
            for key, value in attrs.items():
                if isinstance(value, str):
                    _text_attr(f.attrs, key, value)
                else:
                    f.attrs[key] = value
            _text_attr(f.attrs, "format", "slingbag-acquisition")
            f.attrs["version"] = 1
            f.attrs["fs"] = float(fs)
            f.attrs["sound_speed"] = float(sound_speed)
            f.attrs["t0"] = float(t0)
            f.create_dataset("signals", data=np.asarray(signals, np.float32))
            f.create_dataset("sensors/positions", data=np.asarray(positions, np.float64))
            if normals is not None:
                f.create_dataset("sensors/normals", data=np.asarray(normals, np.float64))
            if areas is not None:
                f.create_dataset("sensors/areas", data=np.asarray(areas, np.float64))
            for name, item in (("truth/volume", truth), ("jwave/p0", p0_block)):
                if item is None:
                    continue
                data, origin, spacing = item
                ds = f.create_dataset(
                    name,
                    data=np.asarray(data, np.float32),
                    compression="gzip",
                    compression_opts=4,
                    shuffle=True,
                )
                ds.attrs["origin"] = np.asarray(origin, np.float64)
                ds.attrs["spacing"] = np.broadcast_to(np.asarray(spacing, np.float64), (3,))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cmd_simulate(args) -> None:
    z = np.load(args.truth)
    truth, t_origin, t_spacing = z["truth"], z["origin"], z["spacing"]
    positions = z["positions"]
    signals, attrs, p0_block = simulate(truth, t_origin, t_spacing, positions, args)
    attrs["jwave_phantom"] = str(z["phantom"])
    attrs["jwave_array"] = str(z["array"])
    attrs["jwave_command"] = " ".join(sys.argv)
    write_acquisition(
        args.output,
        signals,
        positions,
        args.fs,
        args.sound_speed,
        0.0,
        attrs,
        normals=z.get("normals", None),
        areas=z.get("areas", None),
        truth=(truth, t_origin, t_spacing),
        p0_block=(p0_block[0], p0_block[1], args.dx),
    )
    print(f"wrote {args.output}: signals {signals.shape}, peak {np.abs(signals).max():.4g}")


# --------------------------------------------------------------------------- checks


def spherical_mean_signals(
    truth, t_origin, t_spacing, positions, c, fs, n_samples, sigma, f_pass, f_stop
):
    """Point-sensor signals of the truth by the spherical-mean formula, in NumPy.

    ``p(r, t) = d/dt [ t * mean of p0 over the sphere |r' - r| = c t ]``; with voxels as
    samples, the sphere integral is a histogram of voxel volume over distance.  The
    Gaussian smoothing of p0 becomes (for distances much larger than ``sigma``) a Gaussian
    of std ``sigma / c`` in time; the same low-pass as the data follows.
    """
    idx = np.argwhere(truth > 0)
    values = truth[tuple(idx.T)].astype(np.float64)
    xyz = t_origin + idx * t_spacing
    voxel = float(np.prod(t_spacing))
    up = 8  # histogram bins finer than a sample, so the derivative is accurate
    n_fine = n_samples * up
    dt_f = 1.0 / (fs * up)
    freqs = np.fft.rfftfreq(n_fine, dt_f)
    gauss = np.exp(-0.5 * (2 * np.pi * freqs * sigma / c) ** 2)
    h = lowpass_response(freqs, f_pass, f_stop) * gauss
    out = np.zeros((len(positions), n_samples))
    t = (np.arange(n_fine) + 0.5) * dt_f
    for s, p in enumerate(positions):
        r = np.sqrt(((xyz - p) ** 2).sum(1))
        area = np.bincount(
            np.minimum((r / c / dt_f).astype(int), n_fine - 1),
            weights=values * voxel,
            minlength=n_fine,
        ) / (c * dt_f)
        g = area / (4 * np.pi * c * c * t)  # t * (sphere mean) = integral / (4 pi c^2 t)
        dg = np.gradient(g, dt_f)
        spectrum = np.fft.rfft(dg) * h
        out[s] = np.fft.irfft(spectrum, n=n_fine)[::up]
    return out


def _corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def cmd_check(args) -> None:
    import h5py

    with h5py.File(args.data, "r") as f:
        signals = f["signals"][()].astype(np.float64)
        positions = f["sensors/positions"][()]
        fs, c = float(f.attrs["fs"]), float(f.attrs["sound_speed"])
        truth = f["truth/volume"][()]
        t_origin = f["truth/volume"].attrs["origin"]
        t_spacing = f["truth/volume"].attrs["spacing"]
        sigma = float(f.attrs["jwave_p0_sigma"])
        text = f.attrs["jwave_lowpass"]
        text = text.decode() if isinstance(text, bytes) else str(text)
    f_pass, f_stop = (
        float(v)
        for v in text.split("from ")[1].replace(" Hz (1) to ", " ").split(" Hz (0)")[0].split()
    )
    n = signals.shape[1]
    ref = spherical_mean_signals(
        truth, t_origin, t_spacing, positions, c, fs, n, sigma, f_pass, f_stop
    )
    occupied = np.argwhere(truth > 0) * t_spacing + t_origin
    corr = np.array([_corr(signals[s], ref[s]) for s in range(len(signals))])
    gain = np.array([(signals[s] @ ref[s]) / (ref[s] @ ref[s]) for s in range(len(signals))])
    rel = np.linalg.norm(signals - ref) / np.linalg.norm(ref)
    report = {
        "correlation_min": float(corr.min()),
        "correlation_median": float(np.median(corr)),
        "gain_median": float(np.median(gain)),
        "gain_range": [float(gain.min()), float(gain.max())],
        "relative_l2_difference": float(rel),
        "sensors": [],
    }
    peaks = np.abs(signals).max(1)
    picks = [int(np.argmax(peaks)), int(np.argmin(peaks))]
    picks += [s for s in (0, len(signals) // 2) if s not in picks]
    for s in picks:
        d = np.sqrt(((occupied - positions[s]) ** 2).sum(1))
        threshold = 0.05 * peaks[s]
        onset = int(np.argmax(np.abs(signals[s]) > threshold)) / fs
        onset_ref = int(np.argmax(np.abs(ref[s]) > 0.05 * np.abs(ref[s]).max())) / fs
        report["sensors"].append(
            {
                "sensor": s,
                "position_mm": np.round(positions[s] * 1e3, 2).tolist(),
                "nearest_voxel_mm": round(float(d.min()) * 1e3, 3),
                "d_min_over_c_us": round(float(d.min()) / c * 1e6, 3),
                "onset_5pct_us": round(onset * 1e6, 3),
                "onset_5pct_reference_us": round(onset_ref * 1e6, 3),
                "peak": float(peaks[s]),
                "peak_reference": float(np.abs(ref[s]).max()),
                "correlation": round(float(corr[s]), 4),
            }
        )
    a, b = picks[0], picks[1]
    report["peak_ratio_max_min_sensor"] = float(peaks[a] / peaks[b])
    report["peak_ratio_reference"] = float(np.abs(ref[a]).max() / np.abs(ref[b]).max())
    print(json.dumps(report, indent=1))
    if args.save:
        np.save(args.save, ref.astype(np.float32))


def nwave(t, distance, radius, c, amplitude=1.0):
    """Uniform sphere's pressure at ``distance`` from its centre: ``P (R - c t) / (2 R)``."""
    x = distance - c * t
    return np.where(np.abs(x) < radius, amplitude * x / (2 * distance), 0.0)


def cmd_sphere(args) -> None:
    """A 1 mm sphere on a small grid; the j-Wave trace against the analytic N-wave."""
    h = 0.05e-3  # truth voxel, finer than the solver's cell
    b = args.radius
    n = math.ceil(b / h) + 2
    ax = (np.arange(-n, n + 1)) * h
    gx, gy, gz = np.meshgrid(ax, ax, ax, indexing="ij")
    truth = (gx**2 + gy**2 + gz**2 <= b * b).astype(np.float32)
    centre = np.array([0.0, 0.0, args.distance])
    t_origin = centre - n * h
    t_spacing = np.full(3, h)
    # Sensors: one straight below, one off-axis at the same distance (the same N-wave),
    # 3-4-5 from the first, so both lie on grid nodes when the distance is 5k cells.
    positions = np.array([[0.0, 0.0, 0.0], [0.6 * args.distance, 0.0, 0.2 * args.distance]])
    ns = argparse.Namespace(**vars(args))
    ns.t_end = None
    signals, attrs, _ = simulate(truth, t_origin, t_spacing, positions, ns)
    fs = args.fs
    t = np.arange(args.samples) / fs
    up = 16
    tf = np.arange(args.samples * up) / (fs * up)
    freqs = np.fft.rfftfreq(len(tf), 1 / (fs * up))
    ideal = nwave(tf, args.distance, b, args.sound_speed)
    h_lp = lowpass_response(freqs, args.f_pass, args.f_stop)
    gauss = np.exp(-0.5 * (2 * np.pi * freqs * args.sigma / args.sound_speed) ** 2)
    band = np.fft.irfft(np.fft.rfft(ideal) * h_lp, n=len(tf))[::up]
    band_g = np.fft.irfft(np.fft.rfft(ideal) * h_lp * gauss, n=len(tf))[::up]
    window = np.abs(t - args.distance / args.sound_speed) < 4e-6
    result = {
        "grid": attrs["jwave_grid_shape"].tolist(),
        "dx_m": args.dx,
        "dt_s": args.dt,
        "radius_m": b,
        "distance_m": args.distance,
        "seconds": attrs["jwave_run_seconds"],
    }
    for s in range(2):
        sig = signals[s]
        result[f"sensor{s}"] = {
            "corr_lowpassed_nwave": round(_corr(sig[window], band[window]), 5),
            "corr_lowpassed_smoothed_nwave": round(_corr(sig[window], band_g[window]), 5),
            "peak_jwave": float(np.abs(sig).max()),
            "peak_analytic_lowpassed_smoothed": float(np.abs(band_g).max()),
            "gain_vs_smoothed": float(
                sig[window] @ band_g[window] / (band_g[window] @ band_g[window])
            ),
            "lag_samples_best": int(
                np.argmax(np.correlate(sig[window], band_g[window], "full")) - (window.sum() - 1)
            ),
        }
    print(json.dumps(result, indent=1))
    if args.save:
        np.savez(args.save, t=t, jwave=signals, analytic=band, analytic_smoothed=band_g)


# --------------------------------------------------------------------------- CLI


def _solver_options(p):
    p.add_argument("--dx", type=float, default=0.15e-3, help="solver grid spacing, m (0.15e-3)")
    p.add_argument(
        "--dt",
        type=float,
        default=50e-9,
        help="time step, s; a whole number of 1/fs (50e-9, CFL 0.5: the k-space "
        "scheme is exact in a homogeneous medium)",
    )
    p.add_argument("--pml", type=int, default=12, help="PML thickness in cells (12)")
    p.add_argument(
        "--margin",
        type=int,
        default=3,
        help="cells between the PML and the sensors; the phantom gets 3 sigma more (3)",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=0.1e-3,
        help="std of the Gaussian that smooths p0, m (0.1e-3)",
    )
    p.add_argument(
        "--f-pass", type=float, default=3.25e6, help="low-pass: end of the pass band, Hz"
    )
    p.add_argument(
        "--f-stop",
        type=float,
        default=4.25e6,
        help="low-pass: start of the stop band, Hz (below the grid's c/(2 dx))",
    )
    p.add_argument("--sound-speed", type=float, default=SOUND_SPEED, help="m/s (1500)")
    p.add_argument("--fs", type=float, default=FS, help="output sampling rate, Hz (40e6)")
    p.add_argument("--samples", type=int, default=N_SAMPLES, help="samples per sensor (2048)")
    p.add_argument(
        "--t-end",
        type=float,
        default=None,
        help="simulated time, s (default: last arrival from the phantom)",
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("truth", help="binary vessel truth and array positions (slingbag env)")
    p.add_argument("--seed", type=int, default=0, help="vessel tree seed (0)")
    p.add_argument(
        "--region",
        type=lambda s: [float(v) for v in s.split(",")],
        default=None,
        help="x0,x1,y0,y1,z0,z1 in m (slingbag's default 20 x 20 x 6 mm at 12 mm)",
    )
    p.add_argument("--spacing", type=float, default=0.1e-3, help="truth voxel, m (1e-4)")
    p.add_argument("--array", default="planar:12x12:3e-3", help="slingbag array preset")
    p.add_argument("-o", "--output", required=True, help="the .npz to write")
    p.set_defaults(func=cmd_truth)

    p = sub.add_parser("simulate", help="run j-Wave and write an acquisition HDF5")
    p.add_argument("truth", help=".npz from the truth step")
    p.add_argument("-o", "--output", required=True, help="acquisition HDF5 to write")
    _solver_options(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("check", help="compare a written file with a spherical-mean integral")
    p.add_argument("data", help="acquisition HDF5 written by simulate")
    p.add_argument("--save", help="save the reference signals to this .npy")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("sphere", help="j-Wave against the analytic N-wave of a uniform sphere")
    p.add_argument("--radius", type=float, default=0.5e-3, help="sphere radius, m (0.5e-3)")
    p.add_argument("--distance", type=float, default=6e-3, help="sphere to sensor, m (6e-3)")
    p.add_argument("--save", help="save the traces to this .npz")
    _solver_options(p)
    p.set_defaults(func=cmd_sphere)

    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
