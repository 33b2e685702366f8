"""Kernels of the fast ``gaussian`` radiator: Gaussian splitting (exact form).

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
def _recurrence_seeds(d0, inv2r2, half):
    """exp(-d0^2 / 2r^2) and the ratios e(d0 + 1) / e(d0), e(d0 - 1) / e(d0) (``half`` is
    exp(-1 / 2r^2)).  With |d0| <= 1/2 and r >= 1.1 the exponents are small, so short
    polynomials (Estrin's scheme: little latency) replace calls to exp: the Taylor
    remainders are below 2e-9 and 4e-9."""
    x = -d0 * d0 * inv2r2  # |x| <= 0.104
    x2 = x * x
    e = (1.0 + x) + x2 * ((0.5 + x * (1.0 / 6.0)) + x2 * ((1.0 / 24.0) + x * (1.0 / 120.0)))
    y = d0 * inv2r2  # |y| <= 0.21; exp(2y) = exp(y)^2
    y2 = y * y
    q = (1.0 + y) + y2 * (
        (0.5 + y * (1.0 / 6.0)) + y2 * (((1.0 / 24.0) + y * (1.0 / 120.0)) + y2 * (1.0 / 720.0))
    )
    q = q * q
    return e, half / q, half * q


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
            # fallen (~3 ulps of the peak).
            d0 = ti.cast(mc - m0, ti.f32) - frac
            eu, up, dn = _recurrence_seeds(d0, inv2r2, half)
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


@ti.func
def _seed(xyz: ti.template(), p0: ti.template(), split: ti.template(), sensors: ti.template(),
          s, i, n_grid, margin, taps, fs, c, t0, wide: ti.template()):  # fmt: skip
    """A split ball's taps at a sensor: whether its window lies on the grid, its centre's
    grid index, and the recurrence's start (scaled centre values up and down, ratios)."""
    R, u, m0, frac = _arrival(xyz, sensors, i, s, fs, c, t0, wide)
    amp = p0[i] * split[i, 0] / R
    inv2r2 = split[i, 1]
    kappa = split[i, 2]
    half = split[i, 4]
    mc = m0 + ti.cast(frac >= 0.5, ti.i32)
    ok = mc - taps >= -margin and mc + taps <= n_grid - 1 - margin
    d0 = ti.cast(mc - m0, ti.f32) - frac
    e, up, dn = _recurrence_seeds(d0, inv2r2, half)
    eu = amp * e
    return R, ok, s * n_grid + margin + mc, eu, eu * dn, up, dn * kappa, kappa


@ti.func
def _spread_clipped(xyz: ti.template(), p0: ti.template(), split: ti.template(),
                    sensors: ti.template(), grid: ti.template(), s, i, n_grid, margin, taps,
                    fs, c, t0, wide: ti.template()):  # fmt: skip
    """A split ball whose taps run off the grid's edge (rare): clipped, direct exponentials."""
    R, u, m0, frac = _arrival(xyz, sensors, i, s, fs, c, t0, wide)
    amp = p0[i] * split[i, 0] / R
    inv2r2 = split[i, 1]
    mc = m0 + ti.cast(frac >= 0.5, ti.i32)
    row = s * n_grid + margin
    for m in range(ti.max(-margin, mc - taps), ti.min(n_grid - 1 - margin, mc + taps) + 1):
        d = ti.cast(m - m0, ti.f32) - frac
        grid[row + m] = grid[row + m] + amp * ti.exp(-d * d * inv2r2)


@ti.func
def _spread_seeded(xyz: ti.template(), p0: ti.template(), split: ti.template(),
                   sensors: ti.template(), grid: ti.template(), seeds: ti.template(),
                   centre: ti.template(), s, t, first, n_grid, margin, taps, fs, c, t0,
                   wide: ti.template()):  # fmt: skip
    """One ball's taps from its seeds (entry ``t`` of the block that starts at ``first``)."""
    c0 = centre[s, t]
    if c0 >= 0:
        e = seeds[s, t, 0]
        ed = seeds[s, t, 1]
        up = seeds[s, t, 2]
        dn = seeds[s, t, 3]
        kappa = seeds[s, t, 4]
        grid[c0] = grid[c0] + e
        e *= up
        up *= kappa
        for k in range(taps):
            grid[c0 + 1 + k] = grid[c0 + 1 + k] + e
            grid[c0 - 1 - k] = grid[c0 - 1 - k] + ed
            e *= up
            up *= kappa
            ed *= dn
            dn *= kappa
    else:
        _spread_clipped(xyz, p0, split, sensors, grid, s, first + t, n_grid, margin, taps,
                        fs, c, t0, wide)  # fmt: skip


@ti.func
def _spread_row(xyz: ti.template(), p0: ti.template(), sigma: ti.template(),
                split: ti.template(), sensors: ti.template(), grid: ti.template(),
                direct: ti.template(), seeds: ti.template(), centre: ti.template(), s, lo,
                hi, n_samples, n_grid, margin, taps, fs, c, t0, wide: ti.template()):  # fmt: skip
    """Split balls ``lo:hi`` of one class onto sensor row ``s``, in blocks (see
    :func:`spread_rows`)."""
    block = centre.shape[1]
    for b0 in range((hi - lo + block - 1) // block):
        first = lo + b0 * block
        nb = ti.min(block, hi - first)
        for t in range(nb):
            i = first + t
            R, ok, c0, eu, ed, up, dn, kappa = _seed(
                xyz, p0, split, sensors, s, i, n_grid, margin, taps, fs, c, t0, wide
            )
            centre[s, t] = ti.select(ok, c0, -1)
            seeds[s, t, 0] = eu
            seeds[s, t, 1] = ed
            seeds[s, t, 2] = up
            seeds[s, t, 3] = dn
            seeds[s, t, 4] = kappa
            _incoming_forward(direct, s * n_samples, R, sigma[i], p0[i] / (2.0 * R),
                              n_samples, fs, c, t0, False)  # fmt: skip
        for h in range((nb + 1) // 2):
            ta = 2 * h
            tb = ti.min(ta + 1, nb - 1)  # an odd block's last ball pairs with itself
            ca = centre[s, ta]
            cb = centre[s, tb]
            if ca >= 0 and cb >= 0:
                wb = ti.select(tb > ta, 1.0, 0.0)
                ua = seeds[s, ta, 0]
                da = seeds[s, ta, 1]
                pa = seeds[s, ta, 2]
                qa = seeds[s, ta, 3]
                ka = seeds[s, ta, 4]
                ub = seeds[s, tb, 0] * wb
                db = seeds[s, tb, 1] * wb
                pb = seeds[s, tb, 2]
                qb = seeds[s, tb, 3]
                kb = seeds[s, tb, 4]
                grid[ca] = grid[ca] + ua
                grid[cb] = grid[cb] + ub
                ua *= pa
                pa *= ka
                ub *= pb
                pb *= kb
                for k in range(taps):
                    grid[ca + 1 + k] = grid[ca + 1 + k] + ua
                    grid[ca - 1 - k] = grid[ca - 1 - k] + da
                    grid[cb + 1 + k] = grid[cb + 1 + k] + ub
                    grid[cb - 1 - k] = grid[cb - 1 - k] + db
                    ua *= pa
                    pa *= ka
                    da *= qa
                    qa *= ka
                    ub *= pb
                    pb *= kb
                    db *= qb
                    qb *= kb
            else:
                for b in ti.static(range(2)):
                    if b == 0 or tb > ta:
                        _spread_seeded(
                            xyz, p0, split, sensors, grid, seeds, centre, s, ta + b,
                            first, n_grid, margin, taps, fs, c, t0, wide,
                        )  # fmt: skip


@ti.kernel
def spread_rows(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    split: nd(dtype=ti.f32, ndim=2),
    sensors: nd(dtype=ti.f32, ndim=2),
    grid: nd(dtype=ti.f32, ndim=1),
    direct: nd(dtype=ti.f32, ndim=1),
    seeds: nd(dtype=ti.f32, ndim=3),
    centre: nd(dtype=ti.i32, ndim=2),
    spacing: ti.i32,
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
    incoming wave, of ``direct`` (flattened ``(n_sensors, n_samples)``).

    Split balls go in blocks: first every ball's arrival and recurrence seeds into the
    scratch ``seeds (n_sensors, block, 5)`` / ``centre (n_sensors, block)``, then the
    taps, two balls at a time.  Apart, neither phase waits on the other's latency (a
    ball's short tap loop would otherwise stall on its own square root and seeds).

    Row ``s`` is task ``s * spacing``; the other tasks are empty.  Taichi's CPU range-for
    runs a loop of fewer than about 1,000 iterations on one thread, so a loop over a few
    hundred sensor rows must be stretched for the rows to be shared between cores.
    """
    for task in range(sensors.shape[0] * spacing):
        s = task // spacing
        if task % spacing == 0:
            if ti.static(is_direct):
                for i in range(lo, hi):
                    _spread_pair(
                        xyz, p0, sigma, split, sensors, grid, direct, s, i, n_samples, n_grid,
                        margin, taps, fs, c, t0, wide, is_direct, False,
                    )  # fmt: skip
            else:
                _spread_row(xyz, p0, sigma, split, sensors, grid, direct, seeds, centre, s, lo,
                            hi, n_samples, n_grid, margin, taps, fs, c, t0, wide)  # fmt: skip


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


@ti.func
def _split_sums(corr: ti.template(), row, mc, d0, ok, eu, ed, up, dn, kappa, inv2r2, taps,
                margin, n_grid):  # fmt: skip
    """Sums of ``corr * e``, ``corr * d e`` and ``corr * d^2 e`` over one ball's taps at one
    sensor (``d = m - u``), by the centre-out recurrence, or directly off the grid's edge.
    ``row`` is the grid index of sample 0, ``mc`` the centre sample."""
    J0 = 0.0
    J1 = 0.0
    J2 = 0.0
    if ok:
        c0 = row + mc
        J0 = corr[c0] * eu
        J1 = J0 * d0
        J2 = J1 * d0
        eu *= up
        up *= kappa
        K0 = 0.0  # separate sums per direction: independent add chains
        K1 = 0.0
        K2 = 0.0
        du = d0 + 1.0
        dd = d0 - 1.0
        for k in range(taps):
            He = corr[c0 + 1 + k] * eu
            J0 += He
            J1 += He * du
            J2 += He * du * du
            Hd = corr[c0 - 1 - k] * ed
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
        for m in range(ti.max(-margin, mc - taps), ti.min(n_grid - 1 - margin, mc + taps) + 1):
            d = ti.cast(m - mc, ti.f32) + d0
            He = corr[row + m] * ti.exp(-d * d * inv2r2)
            J0 += He
            J1 += He * d
            J2 += He * d * d
    return J0, J1, J2


@ti.func
def _gather_seed(xyz: ti.template(), split: ti.template(), sensors: ti.template(), i, s,
                 n_grid, margin, taps, fs, c, t0, wide: ti.template()):  # fmt: skip
    R, u, m0, frac = _arrival(xyz, sensors, i, s, fs, c, t0, wide)
    inv2r2 = split[i, 1]
    kappa = split[i, 2]
    half = split[i, 4]
    mc = m0 + ti.cast(frac >= 0.5, ti.i32)
    ok = mc - taps >= -margin and mc + taps <= n_grid - 1 - margin
    d0 = ti.cast(mc - m0, ti.f32) - frac
    eu, up, dn = _recurrence_seeds(d0, inv2r2, half)
    return R, u, s * n_grid + margin, mc, d0, ok, eu, eu * dn, up, dn * kappa


@ti.func
def _split_partials(J0, J1, J2, amp1, p0, r, sb, R, step):
    """(dL/dp0, dL/du, dL/ds, dL/dR at fixed u, dL/dstep in the amplitude) of
    ``L = p0 amp1 J0`` for the residual sums J (amp1 ~ s^3 / (r R), r^2 = s^2 - g^2)."""
    amp = p0 * amp1
    L = amp * J0
    dL_r = amp * (J2 / (r * r * r) - J0 / r)
    return amp1 * J0, amp * J1 / (r * r), 3.0 * L / sb + dL_r * sb / r, -L / R, L / step


@ti.func
def _direct_partials(grad_out: ti.template(), s, R, m0, frac, sb, p0, n_samples, step):
    """As :func:`_split_partials` for the direct path, q = -coef step d e, d = n - u, with
    the arrival u = m0 + frac."""
    reach = DIRECT_SIGMAS * sb
    n_lo = ti.max(0, m0 + ti.cast(ti.ceil(frac - reach), ti.i32))
    n_hi = ti.min(n_samples - 1, m0 + ti.cast(ti.floor(frac + reach), ti.i32))
    inv2s2 = 0.5 / (sb * sb)
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
    C = p0 / (2.0 * R) * step
    L = -C * P0
    return (-step / (2.0 * R) * P0, C * (P1 - P2 * 2.0 * inv2s2), -C * P3 / (sb * sb * sb),
            -L / R, L / step)  # fmt: skip


@ti.func
def _finish(xyz: ti.template(), sensors: ti.template(), grad_out: ti.template(), i, s, R, u,
            a, p0, dL_p, dL_u, dL_sb, dL_R, dL_step, n_samples, fs, c, t0,
            with_scalars: ti.template()):  # fmt: skip
    """One sensor's share of ball i's gradients (xyz, p0, sigma, c, t0) from the outgoing
    wave's partials, plus the incoming wave coef * E exp(-E^2 / 2a^2), E = R + c t
    (dE/dR = 1, dE/dc = t, dE/dt0 = c)."""
    step = c / fs
    sb = a / step
    coef = p0 / (2.0 * R)
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
    dR = (dL_R + dL_u / step + coef * (s_hd - s_h / R)) / R
    g_c = 0.0
    g_t = 0.0
    if ti.static(with_scalars):
        # step = c/fs, s = a fs/c, u = R fs/c - t0 fs
        g_c = (dL_step * step - dL_sb * sb - dL_u * (u + t0 * fs)) / c + coef * s_thd
        g_t = -fs * dL_u + coef * c * s_hd
    return (
        dR * (xyz[i, 0] - sensors[s, 0]),
        dR * (xyz[i, 1] - sensors[s, 1]),
        dR * (xyz[i, 2] - sensors[s, 2]),
        dL_p + s_h / (2.0 * R),
        dL_sb / step + coef * s_ha,
        g_c,
        g_t,
    )


@ti.func
def _gather_ball(xyz: ti.template(), p0: ti.template(), sigma: ti.template(),
                 split: ti.template(), sensors: ti.template(), corr: ti.template(),
                 grad_out: ti.template(), i, n_samples, n_grid, margin, taps, fs, c, t0,
                 wide: ti.template(), is_direct: ti.template(),
                 with_scalars: ti.template()):  # fmt: skip
    """Ball ``i``'s gradients summed over every sensor: (x, y, z, p0, sigma, c, t0)."""
    step = c / fs
    n_sensors = sensors.shape[0]
    a = sigma[i]
    sb = a / step
    r = split[i, 3]
    inv2r2 = split[i, 1]
    kappa = split[i, 2]
    acc = ti.Vector([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # x, y, z, p0, sigma, c, t0
    n_two = 0
    if ti.static(not is_direct):
        # Two sensors at a time: the recurrences and sums of both in one loop.
        n_two = n_sensors // 2
        for h in range(n_two):
            sa = 2 * h
            Ra, ua, rowa, mca, d0a, oka, eua, eda, upa, dna = _gather_seed(
                xyz, split, sensors, i, sa, n_grid, margin, taps, fs, c, t0, wide
            )
            Rb, ub, rowb, mcb, d0b, okb, eub, edb, upb, dnb = _gather_seed(
                xyz, split, sensors, i, sa + 1, n_grid, margin, taps, fs, c, t0, wide
            )
            J0 = ti.Vector([0.0, 0.0])
            J1 = ti.Vector([0.0, 0.0])
            J2 = ti.Vector([0.0, 0.0])
            if oka and okb:
                ca = rowa + mca
                cb = rowb + mcb
                d0 = ti.Vector([d0a, d0b])
                eu = ti.Vector([eua, eub])
                ed = ti.Vector([eda, edb])
                up = ti.Vector([upa, upb])
                dn = ti.Vector([dna, dnb])
                # Moments in the tap offset k about the centre, the taps k and -k
                # taken together: S0 = sum H e, S1 = sum k H e, S2 = sum k^2 H e.
                S0 = ti.Vector([corr[ca], corr[cb]]) * eu
                S1 = ti.Vector([0.0, 0.0])
                S2 = ti.Vector([0.0, 0.0])
                eu *= up
                up *= kappa
                kf = 1.0
                for k in range(taps):
                    hu = ti.Vector([corr[ca + 1 + k], corr[cb + 1 + k]]) * eu
                    hd = ti.Vector([corr[ca - 1 - k], corr[cb - 1 - k]]) * ed
                    sp = hu + hd
                    S0 += sp
                    S1 += (hu - hd) * kf
                    S2 += sp * (kf * kf)
                    kf += 1.0
                    eu *= up
                    up *= kappa
                    ed *= dn
                    dn *= kappa
                # d = k + d0: back to moments in d = m - u.
                J0 = S0
                J1 = S1 + d0 * S0
                J2 = S2 + 2.0 * d0 * S1 + d0 * d0 * S0
            else:
                J0[0], J1[0], J2[0] = _split_sums(
                    corr, rowa, mca, d0a, oka, eua, eda, upa, dna, kappa, inv2r2, taps,
                    margin, n_grid,
                )  # fmt: skip
                J0[1], J1[1], J2[1] = _split_sums(
                    corr, rowb, mcb, d0b, okb, eub, edb, upb, dnb, kappa, inv2r2, taps,
                    margin, n_grid,
                )  # fmt: skip
            for b in ti.static(range(2)):
                Rs = ti.select(b == 0, Ra, Rb)
                us = ti.select(b == 0, ua, ub)
                amp1 = split[i, 0] / Rs
                dl = _split_partials(J0[b], J1[b], J2[b], amp1, p0[i], r, sb, Rs, step)
                acc += ti.Vector(_finish(xyz, sensors, grad_out, i, sa + b, Rs, us, a, p0[i],
                                         *dl, n_samples, fs, c, t0, with_scalars))  # fmt: skip
    for s in range(2 * n_two, n_sensors):
        if ti.static(is_direct):
            R, u, m0, frac = _arrival(xyz, sensors, i, s, fs, c, t0, wide)
            dl = _direct_partials(grad_out, s, R, m0, frac, sb, p0[i], n_samples, step)
            acc += ti.Vector(_finish(xyz, sensors, grad_out, i, s, R, u, a, p0[i], *dl,
                                     n_samples, fs, c, t0, with_scalars))  # fmt: skip
        else:
            R, u, row, mc, d0, ok, eu, ed, up, dn = _gather_seed(
                xyz, split, sensors, i, s, n_grid, margin, taps, fs, c, t0, wide
            )
            J0, J1, J2 = _split_sums(corr, row, mc, d0, ok, eu, ed, up, dn, kappa, inv2r2,
                                     taps, margin, n_grid)  # fmt: skip
            dl = _split_partials(J0, J1, J2, split[i, 0] / R, p0[i], r, sb, R, step)
            acc += ti.Vector(_finish(xyz, sensors, grad_out, i, s, R, u, a, p0[i], *dl,
                                     n_samples, fs, c, t0, with_scalars))  # fmt: skip
    return acc


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
    spacing: ti.i32,
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
    Ball ``lo + t`` is task ``t * spacing``, the other tasks empty: a class of a few
    hundred balls would otherwise run on one CPU thread (see :func:`spread_rows`).
    """
    for task in range((hi - lo) * spacing):
        if task % spacing == 0:
            i = lo + task // spacing
            acc = _gather_ball(xyz, p0, sigma, split, sensors, corr, grad_out, i, n_samples,
                               n_grid, margin, taps, fs, c, t0, wide, is_direct,
                               with_scalars)  # fmt: skip
            g_xyz[i, 0] = acc[0]
            g_xyz[i, 1] = acc[1]
            g_xyz[i, 2] = acc[2]
            g_p0[i] = acc[3]
            g_sigma[i] = acc[4]
            if ti.static(with_scalars):
                ti.atomic_add(g_scalar[0], acc[5])
                ti.atomic_add(g_scalar[1], acc[6])
