"""Forward and backward kernels of the Gaussian-ball radiator (see docs/method.md).

Two models of one ball's pressure wave at a point sensor a distance ``R`` away, with
``D = R - c t``:

``gaussian`` (model id 0, the default)
    The exact spherical-wave solution for a Gaussian initial field.  The profile is cut at
    ``cut * sigma`` and lowered by its value there, ``f(r) = exp(-r^2/2a^2) - exp(-cut^2/2)``
    for ``r < cut * a``, so it is continuous and compactly supported: the closed form
    ``q = p0/(2R) [D f(|D|) + (R+ct) f(R+ct)]`` is then exact for that profile and is zero
    outside ``|D| < cut * a``.  That window is all a (sensor, ball) pair ever touches.
``shells`` (model id 1, the paper's)
    Ten uniform spheres with erf-smoothed edges (smoothing constant ``k``).  The window is
    ``|D| < 3 a + 4 / k``; beyond it the smoothed steps differ from 0 or 1 by < 1e-8.

Everything is float32 and takes ``ti.types.ndarray`` arguments, so NumPy arrays pass
straight in on the CPU and the same code compiles for cuda/vulkan/metal.  Loops are laid
out per backend:

* forward on the CPU: one thread per sensor row (no atomics, the row stays in L1);
  on a GPU: one thread per (sensor, ball) pair with atomic adds;
* backward: one thread per ball, looping over sensors, so each ball's gradient is summed
  in registers and written once (the sound-speed and t0 gradients are reductions).

The Gaussian's exponential is evaluated by recurrence along the window (two multiplies a
sample instead of one ``exp``), which is exact up to float32 rounding.
"""

import taichi as ti

GAUSSIAN = 0
SHELLS = 1

# Shell radius factors and pressure weights of the paper's ball (weights sum to 1).
SHELL_F = (0.5, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0)
SHELL_W = tuple(w / 55.0 for w in (10, 9, 8, 7, 6, 5, 4, 3, 2, 1))

_INV_SQRT_PI = 0.5641895835477563
# The recurrence ratio exp(D*step/a^2) would overflow float32 for balls much smaller than
# one sample's travel; those few-sample windows use the direct exponential instead.
_RECURRENCE_MIN_SIGMA_STEPS = 0.1
# Rounding of the recurrence ratio compounds quadratically along the window; starting it
# afresh every _RESEED samples keeps the error near float32 rounding (~1e-6).
_RESEED = 16

nd = ti.types.ndarray


@ti.func
def erf32(x):
    """erf with Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7)."""
    ax = ti.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * ax)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    y = 1.0 - poly * ti.exp(-ax * ax)
    return ti.select(x >= 0.0, y, -y)


@ti.func
def half_window(a, cut, inv_k, model: ti.template()):
    w = cut * a
    if ti.static(model == SHELLS):
        w = 3.0 * a + 4.0 * inv_k
    return w


@ti.func
def _step_pair(xp, xm):
    """erf(xp) - erf(xm) for xp >= xm.  Beyond |x| = 4, erf is +/-1 to within 1.5e-8, so
    most samples of a shell (inside it or outside it) need no erf at all."""
    d = 0.0
    if xp > 4.0 and xm < -4.0:
        d = 2.0
    elif xp > -4.0 and xm < 4.0:
        d = erf32(xp) - erf32(xm)
    return d


@ti.func
def shell_profile(D, a, k):
    """h(D) = sum_k w_k D [S(D + f_k a) - S(D - f_k a)], S the erf-smoothed step."""
    h = 0.0
    for j in ti.static(range(10)):
        fa = SHELL_F[j] * a
        h += SHELL_W[j] * _step_pair(k * (D + fa), k * (D - fa))
    return 0.5 * D * h


@ti.func
def shell_partials(D, a, k):
    """(h, dh/dD, dh/da) of :func:`shell_profile`."""
    h0 = 0.0
    dd = 0.0
    da = 0.0
    g = k * _INV_SQRT_PI  # d/dx of (1 + erf(k x)) / 2 is g exp(-k^2 x^2)
    for j in ti.static(range(10)):
        f = SHELL_F[j]
        xp = k * (D + f * a)
        xm = k * (D - f * a)
        h0 += SHELL_W[j] * 0.5 * _step_pair(xp, xm)
        # exp(-x^2) < 1.2e-7 beyond |x| = 4: only samples near an edge carry a derivative.
        if ti.abs(xp) < 4.0 or ti.abs(xm) < 4.0:
            ep = ti.exp(-xp * xp)
            em = ti.exp(-xm * xm)
            dd += SHELL_W[j] * g * (ep - em)
            da += SHELL_W[j] * g * f * (ep + em)
    return D * h0, h0 + D * dd, D * da


@ti.func
def gauss_terms(D, a, cut, gc):
    """For f(r) = exp(-r^2/2a^2) - gc on r < cut a: (r f(r), d(r f)/dr, d(r f)/da) at r=|D|
    carried with D's sign (D f(|D|) is odd in D)."""
    v = 0.0
    dv = 0.0
    va = 0.0
    if ti.abs(D) < cut * a:
        u = D / a
        g = ti.exp(-0.5 * u * u)
        v = D * (g - gc)
        dv = g * (1.0 - u * u) - gc
        va = D * g * u * u / a
    return v, dv, va


@ti.func
def _gauss_seed(D, step, inv2a2):
    """exp(-D^2/2a^2) and the ratio that steps it to D - step."""
    return ti.exp(-D * D * inv2a2), ti.exp((2.0 * D * step - step * step) * inv2a2)


@ti.kernel
def forward_rows(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    out: nd(dtype=ti.f32, ndim=1),
    n_samples: ti.i32,
    n_chunks: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    cut: ti.f32,
    k: ti.f32,
    model: ti.template(),
):
    """The CPU layout: one thread per (sensor, chunk of balls), each adding its balls'
    waves to its own copy of the sensor's row, so no atomics are needed and the row stays
    in cache.  ``out`` is the flattened ``(n_chunks, n_sensors, n_samples)`` array (zeroed
    by the caller, summed over chunks after).

    Chunks exist because Taichi's CPU range-for does not split a short loop (a few hundred
    sensor rows ran on one thread); ``n_chunks`` makes the loop long enough to share.
    """
    n_sensors = sensors.shape[0]
    n_balls = p0.shape[0]
    for task in range(n_sensors * n_chunks):
        s = task // n_chunks
        chunk = task % n_chunks
        row = (chunk * n_sensors + s) * n_samples
        for i in range(chunk * n_balls // n_chunks, (chunk + 1) * n_balls // n_chunks):
            _pair_forward(
                xyz,
                p0,
                sigma,
                sensors,
                out,
                s,
                i,
                row,
                n_samples,
                fs,
                c,
                t0,
                cut,
                k,
                model,
                False,
            )


@ti.kernel
def forward_pairs(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    out: nd(dtype=ti.f32, ndim=1),
    n_samples: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    cut: ti.f32,
    k: ti.f32,
    model: ti.template(),
):
    """As :func:`forward_rows` with one thread per (sensor, ball) pair and atomic adds:
    the GPU layout, where a few hundred sensor rows would leave most of the device idle."""
    for s, i in ti.ndrange(sensors.shape[0], p0.shape[0]):
        _pair_forward(
            xyz,
            p0,
            sigma,
            sensors,
            out,
            s,
            i,
            s * n_samples,
            n_samples,
            fs,
            c,
            t0,
            cut,
            k,
            model,
            True,
        )


@ti.func
def _add(out: ti.template(), idx, val, atomic: ti.template()):
    if ti.static(atomic):
        ti.atomic_add(out[idx], val)
    else:
        # A plain load and store: this thread owns the row (``+=`` would be atomic).
        out[idx] = out[idx] + val


@ti.func
def gauss_window(
    out: ti.template(), row, base, a, coef, n_lo, n_hi, step, cut, gc, atomic: ti.template()
):
    """Add ``coef D f(D)``, ``D = base - n step`` (the outgoing ``gaussian`` wave of a ball
    ``a`` wide), to ``out[row + n]`` for ``n`` in ``n_lo..n_hi``."""
    if a > _RECURRENCE_MIN_SIGMA_STEPS * step:
        inv2a2 = 0.5 / (a * a)
        ratio = ti.exp(-2.0 * step * step * inv2a2)
        start = n_lo
        while start <= n_hi:
            D = base - start * step
            g, r = _gauss_seed(D, step, inv2a2)
            for n in range(row + start, row + ti.min(start + _RESEED, n_hi + 1)):
                _add(out, n, coef * D * (g - gc), atomic)
                D -= step
                g *= r
                r *= ratio
            start += _RESEED
    else:
        for n in range(n_lo, n_hi + 1):
            v, _dv, _va = gauss_terms(base - n * step, a, cut, gc)
            _add(out, row + n, coef * v, atomic)


@ti.func
def gauss_window_sums(
    grad: ti.template(), row, base, a, n_lo, n_hi, step, fs, t0, cut, gc, inv2a2, ratio,
    use_rec, with_scalars: ti.template(),
):  # fmt: skip
    """Over samples ``n_lo..n_hi`` of ``grad``'s row, with ``h = D f(D)`` the outgoing
    ``gaussian`` wave and ``D = base - n step``: the sums of ``G h``, ``G dh/dD``,
    ``G a dh/da`` and (``with_scalars``) ``G t dh/dD``, ``t = t0 + n / fs``.  ``inv2a2``,
    ``ratio`` and ``use_rec`` are the recurrence's constants for ``a`` (see the forward)."""
    s_h = 0.0
    s_hd = 0.0
    s_ha = 0.0
    s_thd = 0.0
    if use_rec:
        start = n_lo
        while start <= n_hi:
            D = base - start * step
            g, r = _gauss_seed(D, step, inv2a2)
            for n in range(start, ti.min(start + _RESEED, n_hi + 1)):
                G = grad[row + n]
                u2 = D * D * 2.0 * inv2a2
                hd = g * (1.0 - u2) - gc
                s_h += G * D * (g - gc)
                s_hd += G * hd
                s_ha += G * D * g * u2
                if ti.static(with_scalars):
                    s_thd += G * (t0 + n / fs) * hd
                D -= step
                g *= r
                r *= ratio
            start += _RESEED
    else:
        for n in range(n_lo, n_hi + 1):
            G = grad[row + n]
            v, dv, va = gauss_terms(base - n * step, a, cut, gc)
            s_h += G * v
            s_hd += G * dv
            s_ha += G * va * a
            if ti.static(with_scalars):
                s_thd += G * (t0 + n / fs) * dv
    return s_h, s_hd, s_ha, s_thd


@ti.func
def _pair_forward(
    xyz: ti.template(),
    p0: ti.template(),
    sigma: ti.template(),
    sensors: ti.template(),
    out: ti.template(),
    s,
    i,
    row,
    n_samples,
    fs,
    c,
    t0,
    cut,
    k,
    model: ti.template(),
    atomic: ti.template(),
):
    step = c / fs  # distance the wave travels in one sample
    dx = sensors[s, 0] - xyz[i, 0]
    dy = sensors[s, 1] - xyz[i, 1]
    dz = sensors[s, 2] - xyz[i, 2]
    R = ti.max(ti.sqrt(dx * dx + dy * dy + dz * dz), 1e-9)
    a = sigma[i]
    hw = half_window(a, cut, 1.0 / k, model)
    base = R - c * t0  # D at sample 0; D_n = base - n * step
    n_lo = ti.max(0, ti.cast(ti.ceil((base - hw) / step), ti.i32))
    n_hi = ti.min(n_samples - 1, ti.cast(ti.floor((base + hw) / step), ti.i32))
    coef = p0[i] / (2.0 * R)
    if ti.static(model == GAUSSIAN):
        gc = ti.exp(-0.5 * cut * cut)
        gauss_window(out, row, base, a, coef, n_lo, n_hi, step, cut, gc, atomic)
        # The incoming-wave term (R + ct) f(R + ct) is non-zero only for a sensor inside
        # the ball's support, at the earliest times.
        e_base = R + c * t0
        if e_base < cut * a:
            n_top = ti.min(n_samples - 1, ti.cast(ti.floor((cut * a - e_base) / step), ti.i32))
            for n in range(0, n_top + 1):
                v, _dv, _va = gauss_terms(e_base + n * step, a, cut, gc)
                _add(out, row + n, coef * v, atomic)
    else:
        for n in range(n_lo, n_hi + 1):
            _add(out, row + n, coef * shell_profile(base - n * step, a, k), atomic)


@ti.kernel
def backward(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    grad_out: nd(dtype=ti.f32, ndim=1),
    n_samples: ti.i32,
    g_xyz: nd(dtype=ti.f32, ndim=2),
    g_p0: nd(dtype=ti.f32, ndim=1),
    g_sigma: nd(dtype=ti.f32, ndim=1),
    g_scalar: nd(dtype=ti.f32, ndim=1),
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    cut: ti.f32,
    k: ti.f32,
    model: ti.template(),
    with_scalars: ti.template(),
):
    """Gradients of ``sum(grad_out * forward(...))`` with respect to every ball's xyz, p0
    and sigma (overwritten), and, when ``with_scalars``, the sound speed and t0 (added to
    ``g_scalar[0]`` and ``g_scalar[1]``)."""
    n_sensors = sensors.shape[0]
    n_balls = p0.shape[0]
    step = c / fs
    for i in range(n_balls):
        a = sigma[i]
        hw = half_window(a, cut, 1.0 / k, model)
        gc = ti.exp(-0.5 * cut * cut)
        inv2a2 = 0.5 / (a * a)
        ratio = ti.exp(-2.0 * step * step * inv2a2)
        use_rec = a > _RECURRENCE_MIN_SIGMA_STEPS * step
        acc_x = 0.0
        acc_y = 0.0
        acc_z = 0.0
        acc_p = 0.0
        acc_a = 0.0
        acc_c = 0.0
        acc_t = 0.0
        for s in range(n_sensors):
            row = s * n_samples
            dx = xyz[i, 0] - sensors[s, 0]
            dy = xyz[i, 1] - sensors[s, 1]
            dz = xyz[i, 2] - sensors[s, 2]
            R = ti.max(ti.sqrt(dx * dx + dy * dy + dz * dz), 1e-9)
            base = R - c * t0
            n_lo = ti.max(0, ti.cast(ti.ceil((base - hw) / step), ti.i32))
            n_hi = ti.min(n_samples - 1, ti.cast(ti.floor((base + hw) / step), ti.i32))
            # Sums over the window of G*h, G*dh/dD, G*dh/da and G*t*dh/dD, where
            # q = p0/(2R) h(D, a) and D = R - c (t0 + n/fs).
            s_h = 0.0
            s_hd = 0.0
            s_ha = 0.0
            s_thd = 0.0
            # Incoming-wave part (gaussian only): E = R + c t, dE/dR = 1, dE/dc = t.
            s_e_hd = 0.0
            s_e_thd = 0.0
            if ti.static(model == GAUSSIAN):
                if n_lo <= n_hi:
                    s_h, s_hd, s_ha, s_thd = gauss_window_sums(
                        grad_out, row, base, a, n_lo, n_hi, step, fs, t0, cut, gc, inv2a2,
                        ratio, use_rec, with_scalars,
                    )  # fmt: skip
                e_base = R + c * t0
                if e_base < cut * a:
                    n_top = ti.min(
                        n_samples - 1, ti.cast(ti.floor((cut * a - e_base) / step), ti.i32)
                    )
                    for n in range(0, n_top + 1):
                        G = grad_out[row + n]
                        v, dv, va = gauss_terms(e_base + n * step, a, cut, gc)
                        s_h += G * v
                        s_e_hd += G * dv
                        s_ha += G * va * a
                        if ti.static(with_scalars):
                            s_e_thd += G * (t0 + n / fs) * dv
                s_ha = s_ha / a  # the sums above carry d/da times a
            else:
                for n in range(n_lo, n_hi + 1):
                    G = grad_out[row + n]
                    h, hd, ha = shell_partials(base - n * step, a, k)
                    s_h += G * h
                    s_hd += G * hd
                    s_ha += G * ha
                    if ti.static(with_scalars):
                        s_thd += G * (t0 + n / fs) * hd
            coef = p0[i] / (2.0 * R)
            acc_p += s_h / (2.0 * R)
            acc_a += coef * s_ha
            # dq/dR = -q/R + coef * (dh/dD * dD/dR + dh/dE * dE/dR), both dR-derivatives 1
            dq_dR = coef * (s_hd + s_e_hd - s_h / R)
            inv_R = 1.0 / R
            acc_x += dq_dR * dx * inv_R
            acc_y += dq_dR * dy * inv_R
            acc_z += dq_dR * dz * inv_R
            if ti.static(with_scalars):
                # dD/dc = -t, dE/dc = +t; dD/dt0 = -c, dE/dt0 = +c
                acc_c += coef * (s_e_thd - s_thd)
                acc_t += coef * c * (s_e_hd - s_hd)
        g_xyz[i, 0] = acc_x
        g_xyz[i, 1] = acc_y
        g_xyz[i, 2] = acc_z
        g_p0[i] = acc_p
        g_sigma[i] = acc_a
        if ti.static(with_scalars):
            ti.atomic_add(g_scalar[0], acc_c)
            ti.atomic_add(g_scalar[1], acc_t)


@ti.kernel
def forward_every_sample(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    out: nd(dtype=ti.f32, ndim=2),
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    cut: ti.f32,
):
    """The ``gaussian`` forward evaluated at every (sensor, sample, ball) triple, as the
    paper's CUDA code does: the baseline the windowed kernel is benchmarked against."""
    gc = ti.exp(-0.5 * cut * cut)
    for s, n in out:
        t = t0 + n / fs
        acc = 0.0
        for i in range(p0.shape[0]):
            dx = sensors[s, 0] - xyz[i, 0]
            dy = sensors[s, 1] - xyz[i, 1]
            dz = sensors[s, 2] - xyz[i, 2]
            R = ti.max(ti.sqrt(dx * dx + dy * dy + dz * dz), 1e-9)
            a = sigma[i]
            v, _dv, _va = gauss_terms(R - c * t, a, cut, gc)
            w, _dw, _wa = gauss_terms(R + c * t, a, cut, gc)
            acc += p0[i] / (2.0 * R) * (v + w)
        out[s, n] = acc
