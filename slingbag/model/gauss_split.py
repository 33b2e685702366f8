"""The fast exact ``gaussian`` radiator: Gaussian splitting with one FFT convolution per class.

A ball of width ``s`` samples is spread onto its sensor's sample grid with a residual
Gaussian of width ``r = sqrt(s^2 - g^2)`` (a few taps), and every class of balls that shares
a width ``g`` is convolved once, by FFT, with the derivative of a Gaussian of width ``g``
(see :mod:`slingbag.kernels.gauss_split`).  The result is the uncut closed form of the
radiator (docs/method.md), ``p0/(2R) [D exp(-D^2/2a^2) + (R+ct) exp(-(R+ct)^2/2a^2)]``, to ~1e-6.

Classes, residual widths and the FFT length come from the cloud (:func:`plan`); nothing is
a user setting.  The backward pass is the adjoint: one FFT of the signal gradient, one
correlation with each class kernel, then a gather at each ball with its residual Gaussian.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# Below this width (samples) a ball is evaluated directly: splitting needs r g / s near 1
# (the grid sum then equals the convolution integral to 2 exp(-2 pi^2 (rg/s)^2) < 2e-7),
# and with r >= R_LO that holds from s = 2 up.
S_DIRECT = 2.0
R_LO = 1.1
# Residual widths are allowed to grow with the ball (r <= max(r_hi, BETA s)), so a cloud
# of very large balls needs a few dozen classes, not thousands.
BETA = 0.2
KERNEL_SIGMAS = 7.0  # class kernels reach 7 g: the tail dropped is below 7 exp(-24.5)
R_HI_CHOICES = (1.3, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
# Relative costs (ns on one core, measured on the bench case) of a residual tap, of a
# (sensor, ball) pair's set-up and of one real FFT per point and log2 length.
_COST_TAP, _COST_PAIR, _COST_FFT = 0.9, 27.0, 0.5
_BLOCK = 128  # balls per block of the CPU spread's seed / tap phases
_CPU_TASKS = 2048  # CPU kernels' loops are stretched to this many tasks (see spread_rows)


@dataclass(frozen=True)
class Plan:
    """How one cloud is evaluated: ``order`` sorts the balls as direct first, then by class;
    class ``k`` is ``order[bounds[k]:bounds[k + 1]]`` with kernel width ``widths[k]``."""

    order: np.ndarray
    n_direct: int
    bounds: np.ndarray
    widths: np.ndarray
    taps: np.ndarray
    margin: int
    n_grid: int
    n_fft: int
    taps_per_ball: float


def plan(sigma_samples: np.ndarray, n_samples: int, n_sensors: int) -> Plan:
    """Group balls into classes for widths ``sigma_samples`` (sigma fs / c), choosing the
    residual range that minimises an estimate of the cost (taps + FFTs)."""
    from scipy.fft import next_fast_len

    from ..kernels.gauss_split import TAP_SIGMAS

    s = np.asarray(sigma_samples, dtype=np.float64)
    # Balls wider than a quarter of the record would stretch every FFT; few, so direct.
    split = (s >= S_DIRECT) & (s <= max(n_samples / 4.0, 8.0))
    direct_idx = np.flatnonzero(~split)
    split_idx = np.flatnonzero(split)
    s2 = s[split_idx] ** 2
    by_width = np.argsort(s2, kind="stable")
    s2 = s2[by_width]
    best = None
    for r_hi in R_HI_CHOICES if len(s2) else (R_HI_CHOICES[0],):
        bounds, g2 = _classes(s2, r_hi)
        widths = np.sqrt(g2)
        margin = int(np.ceil(KERNEL_SIGMAS * widths.max())) if len(widths) else 0
        n_grid = n_samples + 2 * margin
        n_fft = next_fast_len(n_grid, real=True)
        r = np.sqrt(np.maximum(s2 - np.repeat(g2, np.diff(bounds)), 0.0))
        # Every ball of a class takes the taps its widest residual needs.
        half = np.ceil(TAP_SIGMAS * np.sqrt(np.maximum(s2[bounds[1:] - 1] - g2, 0.0)))
        taps = float(((2 * half + 1) * np.diff(bounds)).sum())
        cost = n_sensors * (
            _COST_TAP * taps
            + _COST_PAIR * len(s2)
            + _COST_FFT * len(widths) * n_fft * np.log2(max(n_fft, 2))
        )
        if best is None or cost < best[0]:
            best = (cost, bounds, widths, half, margin, n_grid, n_fft, taps / max(len(r), 1))
    _, bounds, widths, half, margin, n_grid, n_fft, taps_per_ball = best
    order = np.concatenate([direct_idx, split_idx[by_width]]).astype(np.int64)
    return Plan(order, len(direct_idx), bounds + len(direct_idx), widths, half.astype(np.int64),
                margin, n_grid, n_fft, taps_per_ball)  # fmt: skip


def _classes(s2: np.ndarray, r_hi: float):
    """Greedy classes over sorted squared widths: each class starts at its narrowest ball
    (residual R_LO) and takes every ball whose residual stays within max(r_hi, BETA s)."""
    bounds = [0]
    g2 = []
    i, n = 0, len(s2)
    while i < n:
        g2_k = s2[i] - R_LO**2
        r_max2 = max(r_hi**2, BETA**2 * s2[i])
        j = int(np.searchsorted(s2, g2_k + r_max2, side="right"))
        j = max(j, i + 1)
        g2.append(g2_k)
        bounds.append(j)
        i = j
    return np.asarray(bounds, dtype=np.int64), np.asarray(g2, dtype=np.float64)


def _kernel_spectra(p: Plan) -> np.ndarray:
    """rfft of each class kernel d/dx exp(-x^2 / 2g^2), laid out circularly."""
    from scipy.fft import rfft

    out = np.empty((len(p.widths), p.n_fft // 2 + 1), dtype=np.complex128)
    for k, g in enumerate(p.widths):
        reach = int(np.ceil(KERNEL_SIGMAS * g))
        x = np.arange(-reach, reach + 1, dtype=np.float64)
        circ = np.zeros(p.n_fft)
        circ[x.astype(np.int64) % p.n_fft] = -x / g**2 * np.exp(-0.5 * (x / g) ** 2)
        out[k] = rfft(circ)
    return out


def _cpu_spacing(n_tasks: int) -> int:
    """How far apart a CPU kernel's ``n_tasks`` real tasks are spread in its loop, so that
    the loop is long enough for Taichi to share it between threads."""
    return -(-_CPU_TASKS // max(int(n_tasks), 1))


def _workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _wide(arch: str):
    import taichi as ti

    # Metal has no f64; its arrivals are float32 (about 1e-4 of a small ball's signal).
    return ti.f32 if arch == "metal" else ti.f64


def _on_device(arch: str, *arrays):
    """The arrays as Taichi ndarrays on a GPU backend, so the per-class kernel launches do
    not copy every input to the device again; NumPy arrays as they are on the CPU."""
    if arch == "cpu":
        return arrays
    import taichi as ti

    out = []
    for a in arrays:
        d = ti.ndarray(dtype=ti.i32 if a.dtype == np.int32 else ti.f32, shape=a.shape)
        d.from_numpy(a)
        out.append(d)
    return tuple(out)


def _sorted_inputs(xyz, p0, sigma, p: Plan, step: float):
    """Inputs in the plan's order, and the per-ball constants of the split path."""
    f = np.float32
    sig = np.asarray(sigma[p.order], dtype=np.float64)
    sb = sig[p.n_direct :] / step
    g = np.repeat(p.widths, np.diff(p.bounds))
    r = np.sqrt(np.maximum(sb**2 - g**2, 1e-12))
    split = np.zeros((len(sig), 5), dtype=np.float64)
    split[p.n_direct :, 0] = step * sb**3 / (2.0 * np.sqrt(2.0 * np.pi) * r * g)
    split[p.n_direct :, 1] = 0.5 / r**2
    split[p.n_direct :, 2] = np.exp(-1.0 / r**2)
    split[p.n_direct :, 3] = r
    split[p.n_direct :, 4] = np.exp(-0.5 / r**2)
    return (
        np.ascontiguousarray(xyz[p.order], dtype=f),
        np.ascontiguousarray(p0[p.order], dtype=f),
        np.ascontiguousarray(sig, dtype=f),
        np.ascontiguousarray(split, dtype=f),
    )


def forward(xyz, p0, sigma, sensors, n_samples, fs, c, t0, *, per_row: bool, arch: str):
    """Signals ``(n_sensors, n_samples)`` float32 (arguments as :func:`forward_signals`)."""
    from scipy.fft import irfft, rfft

    from ..kernels import gauss_split as kg

    xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    sigma = np.asarray(sigma, np.float32)
    sensors = np.ascontiguousarray(sensors, dtype=np.float32).reshape(-1, 3)
    n_s, n_t = len(sensors), int(n_samples)
    p = plan(sigma * (fs / c), n_t, n_s)
    xs, ps, ss, sp = _sorted_inputs(xyz, np.asarray(p0, np.float32), sigma, p, c / fs)
    if per_row:
        scratch = (np.zeros((n_s, _BLOCK, 5), np.float32), np.zeros((n_s, _BLOCK), np.int32))
        spacing = _cpu_spacing(n_s)

        def spread(*args):
            kg.spread_rows(*args[:7], *scratch, spacing, *args[7:])
    else:
        spread = kg.spread_pairs
    wide = _wide(arch)
    direct = np.zeros(n_s * n_t, np.float32)
    grid = np.zeros(n_s * p.n_grid, np.float32)
    xs, ps, ss, sp, sensors, direct, grid = _on_device(arch, xs, ps, ss, sp, sensors, direct, grid)

    def consts(taps):
        return (n_t, p.n_grid, p.margin, int(taps), float(fs), float(c), float(t0))

    if p.n_direct:
        spread(xs, ps, ss, sp, sensors, grid, direct, 0, p.n_direct, *consts(0), wide, True)
    if len(p.widths):
        spectra = _kernel_spectra(p).astype(np.complex64)
        acc = np.zeros((n_s, p.n_fft // 2 + 1), np.complex64)
        for k in range(len(p.widths)):
            grid.fill(0.0)
            lo, hi = int(p.bounds[k]), int(p.bounds[k + 1])
            spread(xs, ps, ss, sp, sensors, grid, direct, lo, hi, *consts(p.taps[k]), wide, False)
            rows = grid if arch == "cpu" else grid.to_numpy()
            spec = rfft(rows.reshape(n_s, p.n_grid), n=p.n_fft, axis=1, workers=_workers())
            spec *= spectra[k]
            acc += spec
        out = irfft(acc, n=p.n_fft, axis=1, workers=_workers())[:, p.margin : p.margin + n_t]
    else:
        out = 0.0
    direct = direct if arch == "cpu" else direct.to_numpy()
    return (out + direct.reshape(n_s, n_t)).astype(np.float32)


def backward(xyz, p0, sigma, sensors, grad_signals, fs, c, t0, *, scalars: bool, arch: str) -> dict:
    """Gradients of ``sum(grad_signals * forward(...))`` (as :func:`backward_signals`)."""
    from scipy.fft import irfft, rfft

    from ..kernels import gauss_split as kg

    xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    sigma = np.asarray(sigma, np.float32)
    sensors = np.ascontiguousarray(sensors, dtype=np.float32).reshape(-1, 3)
    G = np.ascontiguousarray(grad_signals, dtype=np.float32)
    n_s, n_t = G.shape
    n = len(sigma)
    p = plan(sigma * (fs / c), n_t, n_s)
    xs, ps, ss, sp = _sorted_inputs(xyz, np.asarray(p0, np.float32), sigma, p, c / fs)
    wide = _wide(arch)
    g_xyz = np.zeros((n, 3), np.float32)
    g_p0 = np.zeros(n, np.float32)
    g_sigma = np.zeros(n, np.float32)
    g_scalar = np.zeros(2, np.float32)

    def consts(taps):
        return (n_t, p.n_grid, p.margin, int(taps), float(fs), float(c), float(t0))

    def stretch(n_balls):
        return _cpu_spacing(n_balls) if arch == "cpu" else 1

    flat = G.reshape(-1)
    dev = _on_device(arch, xs, ps, ss, sp, sensors, flat, g_xyz, g_p0, g_sigma, g_scalar)
    xs, ps, ss, sp, sensors, flat = dev[:6]
    outs = (*dev[6:], wide)
    if p.n_direct:
        dummy = np.zeros(1, np.float32)
        kg.gather(xs, ps, ss, sp, sensors, dummy, flat, 0, p.n_direct, stretch(p.n_direct),
                  *consts(0), *outs, True, bool(scalars))  # fmt: skip
    if len(p.widths):
        spectra = _kernel_spectra(p).astype(np.complex64)
        padded = np.zeros((n_s, p.n_fft), np.float32)
        padded[:, p.margin : p.margin + n_t] = G
        g_hat = rfft(padded, axis=1, workers=_workers())
        del padded
        for k in range(len(p.widths)):
            lo, hi = int(p.bounds[k]), int(p.bounds[k + 1])
            corr = irfft(g_hat * np.conj(spectra[k]), n=p.n_fft, axis=1, workers=_workers())
            corr = np.ascontiguousarray(corr[:, : p.n_grid], dtype=np.float32).reshape(-1)
            kg.gather(xs, ps, ss, sp, sensors, corr, flat, lo, hi, stretch(hi - lo),
                      *consts(p.taps[k]), *outs, False, bool(scalars))  # fmt: skip
    if arch != "cpu":
        g_xyz, g_p0, g_sigma, g_scalar = (d.to_numpy() for d in dev[6:])
    grads = {"xyz": np.empty_like(g_xyz), "p0": np.empty_like(g_p0)}
    grads["xyz"][p.order] = g_xyz
    grads["p0"][p.order] = g_p0
    grads["sigma"] = np.empty_like(g_sigma)
    grads["sigma"][p.order] = g_sigma
    if scalars:
        grads["sound_speed"] = float(g_scalar[0])
        grads["t0"] = float(g_scalar[1])
    return grads
