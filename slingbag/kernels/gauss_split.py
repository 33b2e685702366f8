"""Kernels of the fast ``gaussian`` radiator: Gaussian splitting (SPEC section 2, exact form).

One ball's outgoing wave at a sensor, in samples (``u`` the arrival sample, ``s`` its
width, ``step = c / fs``), is ``p0 step s^2 / (2R) * d/dn exp(-(n - u)^2 / 2 s^2)``.  With
``s^2 = r^2 + g^2`` a Gaussian of width ``s`` is ``s / (sqrt(2 pi) r g)`` times the
convolution of Gaussians of widths ``r`` and ``g``, so a ball of a class of width ``g`` is
spread onto an (extended) grid of its sensor's samples with only its residual Gaussian
``r`` (a few taps), and the host convolves each class grid once, by FFT, with the
derivative of the class Gaussian.  The sum over integer grid points stands for the
convolution integral to ``2 exp(-2 pi^2 (r g / s)^2)`` (Poisson summation); the host's
plan keeps ``r g / s`` near 1 or above, so that is below 1e-8.

Balls too small to split (and any the plan leaves out) take the ``direct`` path: the exact
wave evaluated at each output sample of its window.  The incoming-wave term
``(R + ct) exp(-(R + ct)^2 / 2a^2)``, non-zero only for a sensor inside a ball at the
earliest times, is always evaluated directly.

Arrival times are computed in ``wide`` precision (f64 where the backend has it): in float32
an arrival near sample 4,000 is only known to 2e-4 samples, a 1e-4 error in the signal of a
ball a few samples wide.

Per-ball constants of the split path come from the host as ``split (N, 5)``: the residual's
amplitude per unit p0 and 1/R, ``step s^3 / (2 sqrt(2 pi) r g)``; ``1 / 2r^2``;
``exp(-1 / r^2)`` (the recurrence's step); ``r``; ``exp(-1 / 2r^2)``.

Layouts as in :mod:`slingbag.kernels.radiator`: the forward spread runs one thread per
sensor row on the CPU and one per (sensor, ball) pair with atomics on a GPU; the backward
gather runs one thread per ball, looping over sensors.
"""

import taichi as ti

nd = ti.types.ndarray

TAP_SIGMAS = 5.5  # taps reach 5.5 r: the tail left out holds 4e-8 of the mass
DIRECT_SIGMAS = 7.0  # direct windows and the incoming wave reach 7 s: exp(-24.5) = 2e-11


@ti.func
def _arrival(xyz: ti.template(), sensors: ti.template(), i, s, fs, c, t0, wide: ti.template()):
    """(R, u, m0, frac): distance, arrival sample ``u = (R - c t0) fs / c`` and its split
    into an integer ``m0`` and a float32 fraction, so taps ``m - u = (m - m0) - frac`` keep
    float32 precision however late the arrival."""
    dx = ti.cast(sensors[s, 0], wide) - ti.cast(xyz[i, 0], wide)
    dy = ti.cast(sensors[s, 1], wide) - ti.cast(xyz[i, 1], wide)
    dz = ti.cast(sensors[s, 2], wide) - ti.cast(xyz[i, 2], wide)
    Rw = ti.max(ti.sqrt(dx * dx + dy * dy + dz * dz), ti.cast(1e-9, wide))
    uw = (Rw - ti.cast(c, wide) * ti.cast(t0, wide)) * ti.cast(fs, wide) / ti.cast(c, wide)
    # Clamp before the cast so a ball far outside the record cannot overflow i32.
    uw = ti.min(ti.max(uw, ti.cast(-1e8, wide)), ti.cast(1e8, wide))
    m0w = ti.floor(uw)
    return ti.cast(Rw, ti.f32), ti.cast(uw, ti.f32), ti.cast(m0w, ti.i32), ti.cast(uw - m0w, ti.f32)


@ti.func
def _exp_near0(x):
    """exp(x) for |x| <= 0.5 by its Taylor polynomial to degree 8 (error < 6e-9), cheaper
    than a call to exp; the recurrence seeds need only arguments this small."""
    y = 1.0 + x * (1.0 / 8.0)
    for k in ti.static(range(7, 0, -1)):
        y = 1.0 + x * ti.static(1.0 / k) * y
    return y


@ti.func
def _add(out: ti.template(), idx, val, atomic: ti.template()):
    if ti.static(atomic):
        ti.atomic_add(out[idx], val)
    else:
        out[idx] = out[idx] + val


@ti.func
def _incoming_forward(
    out: ti.template(), row, R, a, coef, n_samples, fs, c, t0, atomic: ti.template()
):
    """Add ``coef * E exp(-E^2 / 2a^2)``, ``E = R + c t``, for the samples where it lives."""
    step = c / fs
    e_base = R + c * t0
    reach = DIRECT_SIGMAS * a
    if e_base < reach:
        n_top = ti.min(n_samples - 1, ti.cast(ti.floor((reach - e_base) / step), ti.i32))
        for n in range(ti.max(0, ti.cast(ti.ceil(-(reach + e_base) / step), ti.i32)), n_top + 1):
            E = e_base + n * step
            _add(out, row + n, coef * E * ti.exp(-0.5 * E * E / (a * a)), atomic)


@ti.func
def _spread_pair(
    xyz: ti.template(),
    p0: ti.template(),
    sigma: ti.template(),
    split: ti.template(),
    sensors: ti.template(),
    grid: ti.template(),
    direct: ti.template(),
    s,
    i,
    n_samples,
    n_grid,
    margin,
    taps,
    fs,
    c,
    t0,
    wide: ti.template(),
    is_direct: ti.template(),
    atomic: ti.template(),
):
    step = c / fs
    R, u, m0, frac = _arrival(xyz, sensors, i, s, fs, c, t0, wide)
    a = sigma[i]
    sb = a / step
    coef = p0[i] / (2.0 * R)
    if ti.static(is_direct):
        # The exact outgoing wave coef * D exp(-D^2 / 2a^2), D = step (u - n), per sample.
        reach = DIRECT_SIGMAS * sb
        lo = ti.max(0, m0 + ti.cast(ti.ceil(frac - reach), ti.i32))
        hi = ti.min(n_samples - 1, m0 + ti.cast(ti.floor(frac + reach), ti.i32))
        inv2s2 = 0.5 / (sb * sb)
        for n in range(lo, hi + 1):
            d = ti.cast(n - m0, ti.f32) - frac  # n - u
            _add(direct, s * n_samples + n, -coef * step * d * ti.exp(-d * d * inv2s2), atomic)
    else:
        amp = p0[i] * split[i, 0] / R
        inv2r2 = split[i, 1]
        kappa = split[i, 2]
        half = split[i, 4]
        # Grid index j = m + margin holds sample m in [-margin, n_samples - 1 + margin].
        # Every ball of a class takes the same taps, mc - taps .. mc + taps around the
        # sample nearest its centre: loops of one length predict well.
        row = s * n_grid + margin
        mc = m0 + ti.cast(frac >= 0.5, ti.i32)
        if mc - taps >= -margin and mc + taps <= n_grid - 1 - margin:
            # From the centre outwards by recurrence, both directions in one loop (two
            # independent multiply chains); the error grows only where the Gaussian has
            # fallen (~3 ulps of the peak).  |d0| <= 1/2 and r >= R_LO keep the seeds'
            # exponents under 1/2.
            d0 = ti.cast(mc - m0, ti.f32) - frac
            eu = _exp_near0(-d0 * d0 * inv2r2)
            up = half * _exp_near0(-2.0 * d0 * inv2r2)  # e(d + 1) / e(d)
            dn = half * _exp_near0(2.0 * d0 * inv2r2)  # e(d - 1) / e(d)
            ed = eu * dn
            dn *= kappa
            _add(grid, row + mc, amp * eu, atomic)
            eu *= up
            up *= kappa
            for k in range(taps):
                _add(grid, row + mc + 1 + k, amp * eu, atomic)
                _add(grid, row + mc - 1 - k, amp * ed, atomic)
                eu *= up
                up *= kappa
                ed *= dn
                dn *= kappa
        else:  # the window runs off the grid (rare): clipped, direct exponentials
            for m in range(ti.max(-margin, mc - taps), ti.min(n_grid - 1 - margin, mc + taps) + 1):
                d = ti.cast(m - m0, ti.f32) - frac
                _add(grid, row + m, amp * ti.exp(-d * d * inv2r2), atomic)
    _incoming_forward(direct, s * n_samples, R, a, coef, n_samples, fs, c, t0, atomic)


@ti.kernel
def spread_rows(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    split: nd(dtype=ti.f32, ndim=2),
    sensors: nd(dtype=ti.f32, ndim=2),
    grid: nd(dtype=ti.f32, ndim=1),
    direct: nd(dtype=ti.f32, ndim=1),
    lo: ti.i32,
    hi: ti.i32,
    n_samples: ti.i32,
    n_grid: ti.i32,
    margin: ti.i32,
    taps: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    wide: ti.template(),
    is_direct: ti.template(),
):
    """CPU layout: one thread per sensor row adds balls ``lo:hi`` of one class to its row
    of ``grid`` (flattened ``(n_sensors, n_grid)``) and, for the direct path and the
    incoming wave, of ``direct`` (flattened ``(n_sensors, n_samples)``)."""
    ti.loop_config(block_dim=1)
    for s in range(sensors.shape[0]):
        for i in range(lo, hi):
            _spread_pair(
                xyz, p0, sigma, split, sensors, grid, direct, s, i, n_samples, n_grid, margin,
                taps, fs, c, t0, wide, is_direct, False,
            )  # fmt: skip


@ti.kernel
def spread_pairs(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    split: nd(dtype=ti.f32, ndim=2),
    sensors: nd(dtype=ti.f32, ndim=2),
    grid: nd(dtype=ti.f32, ndim=1),
    direct: nd(dtype=ti.f32, ndim=1),
    lo: ti.i32,
    hi: ti.i32,
    n_samples: ti.i32,
    n_grid: ti.i32,
    margin: ti.i32,
    taps: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    wide: ti.template(),
    is_direct: ti.template(),
):
    """As :func:`spread_rows`, one thread per (sensor, ball) pair with atomic adds (GPUs)."""
    for s, k in ti.ndrange(sensors.shape[0], hi - lo):
        _spread_pair(
            xyz, p0, sigma, split, sensors, grid, direct, s, lo + k, n_samples, n_grid, margin,
            taps, fs, c, t0, wide, is_direct, True,
        )  # fmt: skip


@ti.kernel
def gather(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    split: nd(dtype=ti.f32, ndim=2),
    sensors: nd(dtype=ti.f32, ndim=2),
    corr: nd(dtype=ti.f32, ndim=1),
    grad_out: nd(dtype=ti.f32, ndim=1),
    lo: ti.i32,
    hi: ti.i32,
    n_samples: ti.i32,
    n_grid: ti.i32,
    margin: ti.i32,
    taps: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    g_xyz: nd(dtype=ti.f32, ndim=2),
    g_p0: nd(dtype=ti.f32, ndim=1),
    g_sigma: nd(dtype=ti.f32, ndim=1),
    g_scalar: nd(dtype=ti.f32, ndim=1),
    wide: ti.template(),
    is_direct: ti.template(),
    with_scalars: ti.template(),
):
    """The adjoint of the spread for balls ``lo:hi``: gradients of ``sum(grad_out * q)``.

    ``corr`` (flattened ``(n_sensors, n_grid)``) is ``grad_out`` correlated with the class
    kernel (by the host); each ball gathers it with its residual Gaussian and its first two
    moments, which give the amplitude, arrival and width derivatives.  The direct path and
    the incoming wave read ``grad_out`` itself.  Writes rows ``lo:hi`` of ``g_xyz``,
    ``g_p0``, ``g_sigma``; adds the sound-speed and t0 gradients to ``g_scalar[0:2]``.
    """
    step = c / fs
    for i in range(lo, hi):
        a = sigma[i]
        sb = a / step
        r = split[i, 3]
        inv2r2 = split[i, 1]
        kappa = split[i, 2]
        half = split[i, 4]
        inv2s2 = 0.5 / (sb * sb)
        acc_x = 0.0
        acc_y = 0.0
        acc_z = 0.0
        acc_p = 0.0
        acc_a = 0.0
        acc_c = 0.0
        acc_t = 0.0
        for s in range(sensors.shape[0]):
            R, u, m0, frac = _arrival(xyz, sensors, i, s, fs, c, t0, wide)
            coef = p0[i] / (2.0 * R)
            dL_p = 0.0  # d/dp0
            dL_u = 0.0  # d/du (arrival, samples)
            dL_sb = 0.0  # d/ds (width, samples)
            dL_R = 0.0  # d/dR at fixed u
            dL_step = 0.0  # d/dstep at fixed s, u, R (the step in the amplitude)
            if ti.static(is_direct):
                # q = -coef step d e, d = n - u, e = exp(-d^2 / 2s^2)
                reach = DIRECT_SIGMAS * sb
                n_lo = ti.max(0, m0 + ti.cast(ti.ceil(frac - reach), ti.i32))
                n_hi = ti.min(n_samples - 1, m0 + ti.cast(ti.floor(frac + reach), ti.i32))
                P0 = 0.0
                P1 = 0.0
                P2 = 0.0
                P3 = 0.0
                for n in range(n_lo, n_hi + 1):
                    G = grad_out[s * n_samples + n]
                    d = ti.cast(n - m0, ti.f32) - frac
                    Ge = G * ti.exp(-d * d * inv2s2)
                    P0 += Ge * d
                    P1 += Ge
                    P2 += Ge * d * d
                    P3 += Ge * d * d * d
                C = coef * step
                L = -C * P0
                dL_p = -step / (2.0 * R) * P0
                dL_u = C * (P1 - P2 * 2.0 * inv2s2)
                dL_sb = -C * P3 / (sb * sb * sb)
                dL_R = -L / R
                dL_step = L / step
            else:
                amp1 = split[i, 0] / R  # the residual's amplitude per unit p0
                amp = p0[i] * amp1
                row = s * n_grid + margin
                J0 = 0.0
                J1 = 0.0
                J2 = 0.0
                mc = m0 + ti.cast(frac >= 0.5, ti.i32)
                if mc - taps >= -margin and mc + taps <= n_grid - 1 - margin:
                    d0 = ti.cast(mc - m0, ti.f32) - frac
                    eu = _exp_near0(-d0 * d0 * inv2r2)
                    up = half * _exp_near0(-2.0 * d0 * inv2r2)
                    dn = half * _exp_near0(2.0 * d0 * inv2r2)
                    ed = eu * dn
                    dn *= kappa
                    J0 = corr[row + mc] * eu
                    J1 = J0 * d0
                    J2 = J1 * d0
                    eu *= up
                    up *= kappa
                    # Separate sums per direction: independent add chains.
                    K0 = 0.0
                    K1 = 0.0
                    K2 = 0.0
                    du = d0 + 1.0
                    dd = d0 - 1.0
                    for k in range(taps):
                        He = corr[row + mc + 1 + k] * eu
                        J0 += He
                        J1 += He * du
                        J2 += He * du * du
                        Hd = corr[row + mc - 1 - k] * ed
                        K0 += Hd
                        K1 += Hd * dd
                        K2 += Hd * dd * dd
                        du += 1.0
                        dd -= 1.0
                        eu *= up
                        up *= kappa
                        ed *= dn
                        dn *= kappa
                    J0 += K0
                    J1 += K1
                    J2 += K2
                else:
                    m_first = ti.max(-margin, mc - taps)
                    for m in range(m_first, ti.min(n_grid - 1 - margin, mc + taps) + 1):
                        d = ti.cast(m - m0, ti.f32) - frac
                        He = corr[row + m] * ti.exp(-d * d * inv2r2)
                        J0 += He
                        J1 += He * d
                        J2 += He * d * d
                L = amp * J0
                dL_p = amp1 * J0
                dL_u = amp * J1 / (r * r)  # d e / du = (m - u) / r^2 e
                dL_r = amp * (J2 / (r * r * r) - J0 / r)
                dL_sb = 3.0 * L / sb + dL_r * sb / r
                dL_R = -L / R
                dL_step = L / step
            # The incoming wave coef * E exp(-E^2 / 2a^2), E = R + c t: dE/dR = 1,
            # dE/dc = t, dE/dt0 = c.
            e_base = R + c * t0
            reach_e = DIRECT_SIGMAS * a
            s_h = 0.0
            s_hd = 0.0
            s_ha = 0.0
            s_thd = 0.0
            if e_base < reach_e:
                n_top = ti.min(n_samples - 1, ti.cast(ti.floor((reach_e - e_base) / step), ti.i32))
                n_first = ti.max(0, ti.cast(ti.ceil(-(reach_e + e_base) / step), ti.i32))
                for n in range(n_first, n_top + 1):
                    G = grad_out[s * n_samples + n]
                    E = e_base + n * step
                    w2 = E * E / (a * a)
                    ex = ti.exp(-0.5 * w2)
                    hd = ex * (1.0 - w2)
                    s_h += G * E * ex
                    s_hd += G * hd
                    s_ha += G * E * ex * w2 / a
                    if ti.static(with_scalars):
                        s_thd += G * (t0 + n / fs) * hd
            acc_p += dL_p + s_h / (2.0 * R)
            acc_a += dL_sb / step + coef * s_ha
            dR = dL_R + dL_u / step + coef * (s_hd - s_h / R)
            inv_R = 1.0 / R
            acc_x += dR * (xyz[i, 0] - sensors[s, 0]) * inv_R
            acc_y += dR * (xyz[i, 1] - sensors[s, 1]) * inv_R
            acc_z += dR * (xyz[i, 2] - sensors[s, 2]) * inv_R
            if ti.static(with_scalars):
                # step = c/fs, s = a fs/c, u = R fs/c - t0 fs
                acc_c += (dL_step * step - dL_sb * sb - dL_u * (u + t0 * fs)) / c
                acc_c += coef * s_thd
                acc_t += -fs * dL_u + coef * c * s_hd
        g_xyz[i, 0] = acc_x
        g_xyz[i, 1] = acc_y
        g_xyz[i, 2] = acc_z
        g_p0[i] = acc_p
        g_sigma[i] = acc_a
        if ti.static(with_scalars):
            ti.atomic_add(g_scalar[0], acc_c)
            ti.atomic_add(g_scalar[1], acc_t)
