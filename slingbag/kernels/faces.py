"""The ``gaussian`` radiator seen by sensors with faces (discs and rectangles).

A flat element records the pressure averaged over its face.  Seen from a ball at
``v = ball - centre`` (distance ``R0``, unit direction ``u``), a face point ``rho`` lies at

    R(rho) ~ R0 - x + F,    x = rho . u,    F = (|rho|^2 - x^2) / (2 R0),

so in the far field the face spreads the arrival over the projection ``x``, whose density is
a trapezoid (a rectangle: two boxcars of half-widths ``A |u.e1|`` and ``B |u.e2|``) or a
semicircle (a disc of radius ``a``: half-width ``a sin(theta)``), and the near-field term
``F`` delays each part of it.

The face is cut into ``m`` strips of equal width across ``x``: ``m`` is the spread over
``gamma`` ball widths, at most ``max_strips``.  Each strip radiates as one Gaussian ball
term: at the strip's mean path ``R0 - mean(x) + mean(F | x)``, with the strip's share of the
face, the amplitude of that path, and the width widened by the variance of the strip's
arrival (its spread in ``x`` and in ``F`` along its chord):

    q = p0 sum_k a_k (sigma / s_k)^3 phi_{s_k}(Reff_k - c t),   s_k^2 = sigma^2 + var_k,

with ``phi_s(D) = D (exp(-D^2/2s^2) - exp(-cut^2/2))`` the cut Gaussian profile of
:mod:`slingbag.kernels.radiator`: a Gaussian profile convolved with a Gaussian spread of
variance ``var`` is the same profile, ``sqrt(sigma^2 + var)`` wide and ``(sigma/s)^3`` as
high.  The strip statistics are closed forms (moments of the trapezoid or the semicircle
between the strip's edges; the chord through the strip's mean).

The backward pass sums each strip's window analytically; how a strip's path, share and
variance move with the ball (a small geometric function of ``v``) is differentiated by
central differences of that function, with the strip count held fixed.

The face table (one row per sensor, float32): normal (3), width axis e1 (3), height axis
e2 = normal x e1 (3), half-width A, half-height B (a disc: radius, radius).
"""

import taichi as ti

from .radiator import _RECURRENCE_MIN_SIGMA_STEPS, gauss_window, gauss_window_sums

DISC = 1
RECT = 2
# Below this ratio of its two half-widths a rectangle's spread is one boxcar, the smaller
# half-width entering as variance (the trapezoid's closed form loses precision there).
_THIN = 1e-2
# Central-difference step of the strip geometry, metres: far above float32 rounding of
# millimetre-scale offsets, far below the millimetres over which they change.
_GEOM_STEP = 1e-5
# The trapezoid's density is sum_i SIGN_i ramp(x - (B1_i b1 + B2_i b2)) / (4 b1 b2).
_KINK_B1 = (-1.0, -1.0, 1.0, 1.0)
_KINK_B2 = (-1.0, 1.0, -1.0, 1.0)
_KINK_SIGN = (1.0, -1.0, -1.0, 1.0)

nd = ti.types.ndarray
vec3 = ti.types.vector(3, ti.f32)
vec9 = ti.types.vector(9, ti.f32)


@ti.func
def _q_moments(x, c):
    """(Q0, Q1, Q2) = integrals of t^j (t - c) for t from c to x (zero for x <= c)."""
    d = ti.max(x - c, 0.0)
    d2 = d * d
    return (
        d2 / 2.0,
        c * d2 / 2.0 + d2 * d / 3.0,
        c * c * d2 / 2.0 + 2.0 * c * d2 * d / 3.0 + d2 * d2 / 4.0,
    )


@ti.func
def _trapezoid_cdf(x, b1, b2):
    """(C0, C1, C2): the trapezoid's cumulative moments E[X^j 1{X <= x}], X the sum of
    two uniforms on [-b1, b1] and [-b2, b2]."""
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    norm = 1.0 / (4.0 * b1 * b2)
    for i in ti.static(range(4)):
        q0, q1, q2 = _q_moments(x, _KINK_B1[i] * b1 + _KINK_B2[i] * b2)
        c0 += _KINK_SIGN[i] * q0
        c1 += _KINK_SIGN[i] * q1
        c2 += _KINK_SIGN[i] * q2
    return c0 * norm, c1 * norm, c2 * norm


@ti.func
def _uniform_cdf(x, b):
    xc = ti.min(ti.max(x, -b), b)
    return (
        (xc + b) / (2.0 * b),
        (xc * xc - b * b) / (4.0 * b),
        (xc * xc * xc + b * b * b) / (6.0 * b),
    )


# Abramowitz & Stegun 4.4.46: asin(x) = pi/2 - sqrt(1 - x) sum a_k x^k on [0, 1], error
# < 2e-8.  GPU drivers' own asin can be far coarser (lavapipe's moved disc faces by 0.3 %).
_ASIN = (1.5707963050, -0.2145988016, 0.0889789874, -0.0501743046, 0.0308918810,
         -0.0170881256, 0.0066700901, -0.0012624911)  # fmt: skip


@ti.func
def _asin(x):
    ax = ti.abs(x)
    poly = 0.0
    for j in ti.static(range(7, -1, -1)):
        poly = poly * ax + _ASIN[j]
    y = 1.5707963267948966 - ti.sqrt(ti.max(1.0 - ax, 0.0)) * poly
    return ti.select(x >= 0.0, y, -y)


@ti.func
def _semicircle_cdf(x, b):
    xi = ti.min(ti.max(x / b, -1.0), 1.0)
    root = ti.sqrt(ti.max(1.0 - xi * xi, 0.0))
    asn = _asin(xi)
    inv_pi = 0.3183098861837907
    c0 = (xi * root + asn) * inv_pi + 0.5
    c1 = -b * (2.0 / 3.0) * inv_pi * root * root * root
    c2 = b * b * (2.0 * inv_pi * (asn / 8.0 - xi * root * (1.0 - 2.0 * xi * xi) / 8.0) + 0.125)
    return c0, c1, c2


@ti.func
def _cdf(x, b1, b2, shape: ti.template()):
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    if ti.static(shape == DISC):
        c0, c1, c2 = _semicircle_cdf(x, b1)
    else:
        if b2 < _THIN * b1:
            c0, c1, c2 = _uniform_cdf(x, b1)
        else:
            c0, c1, c2 = _trapezoid_cdf(x, b1, b2)
    return c0, c1, c2


@ti.func
def _chord(x, u1, u2, sp, A, B, shape: ti.template()):
    """(lo, hi) of the coordinate ``y`` across the projection direction along the face's
    chord at projection ``x``."""
    lo = 0.0
    hi = 0.0
    if ti.static(shape == DISC):
        t = x / sp
        hi = ti.sqrt(ti.max(A * A - t * t, 0.0))
        lo = -hi
    else:
        lo = -1e30
        hi = 1e30
        # rho1 = x u1 / sp^2 - y u2 / sp, rho2 = x u2 / sp^2 + y u1 / sp
        p1 = x * u1 / (sp * sp)
        p2 = x * u2 / (sp * sp)
        d1 = -u2 / sp
        d2 = u1 / sp
        if ti.abs(d1) > 1e-6:
            ya = (-A - p1) / d1
            yb = (A - p1) / d1
            lo = ti.max(lo, ti.min(ya, yb))
            hi = ti.min(hi, ti.max(ya, yb))
        if ti.abs(d2) > 1e-6:
            ya = (-B - p2) / d2
            yb = (B - p2) / d2
            lo = ti.max(lo, ti.min(ya, yb))
            hi = ti.min(hi, ti.max(ya, yb))
        if hi < lo:
            mid = 0.5 * (lo + hi)
            lo = mid
            hi = mid
    return lo, hi


@ti.func
def _spread(v, face: ti.template(), s, shape: ti.template()):
    """The spread of sensor ``s``'s face seen from ball offset ``v``, as a vector
    (R0, u1, u2, sp, b1, b2, b_total, A, B): distance, the direction's components along
    the face's axes and in the face, the two half-widths of the projection (a disc: b2 = 0),
    their sum, and the face's half-extents."""
    R0 = ti.max(v.norm(), 1e-9)
    e1 = vec3(face[s, 3], face[s, 4], face[s, 5])
    e2 = vec3(face[s, 6], face[s, 7], face[s, 8])
    u1 = v.dot(e1) / R0
    u2 = v.dot(e2) / R0
    sp = ti.sqrt(u1 * u1 + u2 * u2)
    A = face[s, 9]
    B = face[s, 10]
    b1 = 0.0
    b2 = 0.0
    total = 0.0
    if ti.static(shape == DISC):
        b1 = A * sp
        total = b1
    else:
        b1 = A * ti.abs(u1)
        b2 = B * ti.abs(u2)
        if b2 > b1:
            swap = b1
            b1 = b2
            b2 = swap
        total = b1 + b2
    return vec9(R0, u1, u2, sp, b1, b2, total, A, B)


@ti.func
def n_strips(sp, sigma, gamma, max_strips):
    """How many strips a face of spread ``sp`` is cut into for a ball ``sigma`` wide."""
    m = ti.cast(ti.ceil(sp[6] / (gamma * sigma)), ti.i32)
    return ti.min(ti.max(m, 1), max_strips)


@ti.func
def _whole_face(R0, u1, u2, sp, A, B, b1, b2, shape: ti.template()):
    """(mean F, var of arrival) of the whole face: the one-strip term."""
    mean_f = 0.0
    var = 0.0
    inv = 1.0 / (2.0 * R0)
    if ti.static(shape == DISC):
        s2 = sp * sp
        eg = 0.5 * A * A * (1.0 - 0.5 * s2)
        eg2 = A * A * A * A / 3.0 * (1.0 - s2 + 0.375 * s2 * s2)
        mean_f = eg * inv
        var = (eg2 - eg * eg) * inv * inv + 0.25 * b1 * b1
    else:
        a2 = A * A
        bb2 = B * B
        w1 = 1.0 - u1 * u1
        w2 = 1.0 - u2 * u2
        mean_f = ((a2 + bb2) / 3.0 - (b1 * b1 + b2 * b2) / 3.0) * inv
        var_f = w1 * w1 * 4.0 * a2 * a2 / 45.0 + w2 * w2 * 4.0 * bb2 * bb2 / 45.0
        var_f += 4.0 * u1 * u1 * u2 * u2 * a2 * bb2 / 9.0
        var = var_f * inv * inv + (b1 * b1 + b2 * b2) / 3.0
    return mean_f, var


@ti.func
def strip_term(spread, k, m, below, shape: ti.template()):
    """Strip ``k`` of ``m`` of a face of :func:`_spread` ``spread``: (effective path
    Reff, amplitude a = share / (2 Reff), arrival variance var, the cumulative moments at
    the strip's far edge).  ``below`` holds the cumulative moments at its near edge (the
    previous strip's far edge; zero for the first), so each edge is evaluated once."""
    R0 = spread[0]
    u1 = spread[1]
    u2 = spread[2]
    sp = spread[3]
    b1 = spread[4]
    b2 = spread[5]
    total = spread[6]
    A = spread[7]
    B = spread[8]
    reff = R0
    share = 1.0
    var = 0.0
    above = vec3(0.0, 0.0, 0.0)
    if m == 1:
        mean_f, var1 = _whole_face(R0, u1, u2, sp, A, B, b1, b2, shape)
        reff = R0 + mean_f
        var = var1
    else:
        width = 2.0 * total / m
        z0, z1, z2 = _cdf(-total + (k + 1) * width, b1, b2, shape)
        above = vec3(z0, z1, z2)
        share = ti.max(z0 - below[0], 1e-12)
        mean_x = (z1 - below[1]) / share
        var_x = ti.max((z2 - below[2]) / share - mean_x * mean_x, 0.0)
        if ti.static(shape == RECT):
            if b2 < _THIN * b1:
                var_x += b2 * b2 / 3.0
        lo, hi = _chord(mean_x, u1, u2, sp, A, B, shape)
        ey2 = (lo * lo + lo * hi + hi * hi) / 3.0
        ey4 = (hi**4 + hi**3 * lo + hi * hi * lo * lo + hi * lo**3 + lo**4) / 5.0
        inv = 1.0 / (2.0 * R0)
        mean_f = (mean_x * mean_x * (1.0 / (sp * sp) - 1.0) + ey2) * inv
        var_f = ti.max(ey4 - ey2 * ey2, 0.0) * inv * inv
        reff = R0 - mean_x + mean_f
        var = var_x + var_f
    return reff, share / (2.0 * reff), var, above


@ti.func
def _window_add(
    out: ti.template(), row, reff, amp, s, n_samples, step, c, t0, cut, atomic: ti.template()
):
    """Add ``amp phi_s(reff - c t)`` over its window to ``out[row + n]``."""
    base = reff - c * t0
    hw = cut * s
    n_lo = ti.max(0, ti.cast(ti.ceil((base - hw) / step), ti.i32))
    n_hi = ti.min(n_samples - 1, ti.cast(ti.floor((base + hw) / step), ti.i32))
    gauss_window(out, row, base, s, amp, n_lo, n_hi, step, cut, ti.exp(-0.5 * cut * cut), atomic)


@ti.func
def _pair_forward(
    xyz: ti.template(),
    p0: ti.template(),
    sigma: ti.template(),
    sensors: ti.template(),
    face: ti.template(),
    out: ti.template(),
    s,
    i,
    row,
    n_samples,
    fs,
    c,
    t0,
    cut,
    gamma,
    max_strips,
    shape: ti.template(),
    atomic: ti.template(),
):
    v = vec3(xyz[i, 0] - sensors[s, 0], xyz[i, 1] - sensors[s, 1], xyz[i, 2] - sensors[s, 2])
    a = sigma[i]
    spread = _spread(v, face, s, shape)
    m = n_strips(spread, a, gamma, max_strips)
    below = vec3(0.0, 0.0, 0.0)
    for k in range(m):
        reff, amp, var, above = strip_term(spread, k, m, below, shape)
        below = above
        sk = ti.sqrt(a * a + var)
        ratio = a / sk
        _window_add(
            out, row, reff, p0[i] * amp * ratio * ratio * ratio, sk, n_samples, c / fs, c, t0,
            cut, atomic,
        )  # fmt: skip


@ti.kernel
def forward_rows(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    face: nd(dtype=ti.f32, ndim=2),
    out: nd(dtype=ti.f32, ndim=1),
    n_samples: ti.i32,
    n_chunks: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    cut: ti.f32,
    gamma: ti.f32,
    max_strips: ti.i32,
    shape: ti.template(),
):
    """The CPU layout of :func:`slingbag.kernels.radiator.forward_rows`, with faces."""
    n_sensors = sensors.shape[0]
    n_balls = p0.shape[0]
    for task in range(n_sensors * n_chunks):
        s = task // n_chunks
        chunk = task % n_chunks
        row = (chunk * n_sensors + s) * n_samples
        for i in range(chunk * n_balls // n_chunks, (chunk + 1) * n_balls // n_chunks):
            _pair_forward(
                xyz, p0, sigma, sensors, face, out, s, i, row, n_samples, fs, c, t0, cut,
                gamma, max_strips, shape, False,
            )  # fmt: skip


@ti.kernel
def forward_pairs(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    face: nd(dtype=ti.f32, ndim=2),
    out: nd(dtype=ti.f32, ndim=1),
    n_samples: ti.i32,
    fs: ti.f32,
    c: ti.f32,
    t0: ti.f32,
    cut: ti.f32,
    gamma: ti.f32,
    max_strips: ti.i32,
    shape: ti.template(),
):
    """The GPU layout (one thread per pair, atomic adds), with faces."""
    for s, i in ti.ndrange(sensors.shape[0], p0.shape[0]):
        _pair_forward(
            xyz, p0, sigma, sensors, face, out, s, i, s * n_samples, n_samples, fs, c, t0,
            cut, gamma, max_strips, shape, True,
        )  # fmt: skip


@ti.func
def _window_sums(
    grad: ti.template(), row, reff, s, n_samples, fs, c, t0, cut, with_scalars: ti.template()
):
    """Over the window of ``phi_s(reff - c t)``: sums of G phi, G dphi/dD, G dphi/ds and
    (``with_scalars``) G t dphi/dD, with G = grad[row + n]."""
    step = c / fs
    base = reff - c * t0
    hw = cut * s
    n_lo = ti.max(0, ti.cast(ti.ceil((base - hw) / step), ti.i32))
    n_hi = ti.min(n_samples - 1, ti.cast(ti.floor((base + hw) / step), ti.i32))
    inv2a2 = 0.5 / (s * s)
    s_h, s_d, s_sa, s_td = gauss_window_sums(
        grad, row, base, s, n_lo, n_hi, step, fs, t0, cut, ti.exp(-0.5 * cut * cut), inv2a2,
        ti.exp(-2.0 * step * step * inv2a2), s > _RECURRENCE_MIN_SIGMA_STEPS * step, with_scalars,
    )  # fmt: skip
    return s_h, s_d, s_sa / s, s_td


@ti.kernel
def backward(
    xyz: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    sensors: nd(dtype=ti.f32, ndim=2),
    face: nd(dtype=ti.f32, ndim=2),
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
    gamma: ti.f32,
    max_strips: ti.i32,
    shape: ti.template(),
    with_scalars: ti.template(),
    with_positions: ti.template(),
):
    """Gradients of ``sum(grad_out * forward(...))``, as
    :func:`slingbag.kernels.radiator.backward` (one thread per ball).  Without
    ``with_positions`` the position gradients are left at zero (the model-based operator's
    adjoint needs the amplitudes' alone) and the strip geometry is not differentiated."""
    for i in range(p0.shape[0]):
        a = sigma[i]
        acc = vec3(0.0, 0.0, 0.0)
        acc_p = 0.0
        acc_a = 0.0
        acc_c = 0.0
        acc_t = 0.0
        for s in range(sensors.shape[0]):
            v = vec3(
                xyz[i, 0] - sensors[s, 0], xyz[i, 1] - sensors[s, 1], xyz[i, 2] - sensors[s, 2]
            )
            spread = _spread(v, face, s, shape)
            h = _GEOM_STEP
            moved_x = spread
            moved_y = spread
            moved_z = spread
            if ti.static(with_positions):
                moved_x = _spread(v + vec3(h, 0.0, 0.0), face, s, shape)
                moved_y = _spread(v + vec3(0.0, h, 0.0), face, s, shape)
                moved_z = _spread(v + vec3(0.0, 0.0, h), face, s, shape)
            m = n_strips(spread, a, gamma, max_strips)
            below = vec3(0.0, 0.0, 0.0)
            below_x = vec3(0.0, 0.0, 0.0)
            below_y = vec3(0.0, 0.0, 0.0)
            below_z = vec3(0.0, 0.0, 0.0)
            for k in range(m):
                reff, amp, var, above = strip_term(spread, k, m, below, shape)
                below = above
                sk = ti.sqrt(a * a + var)
                r = a / sk
                r3 = r * r * r
                s_h, s_d, s_s, s_td = _window_sums(
                    grad_out, s * n_samples, reff, sk, n_samples, fs, c, t0, cut, with_scalars
                )
                g_sk = p0[i] * amp * r3 * (s_s - 3.0 * s_h / sk)
                acc_p += amp * r3 * s_h
                acc_a += p0[i] * amp * 3.0 * r3 / a * s_h + g_sk * a / sk
                g_reff = p0[i] * amp * r3 * s_d
                g_amp = p0[i] * r3 * s_h
                g_var = g_sk / (2.0 * sk)
                if ti.static(with_scalars):
                    acc_c += -p0[i] * amp * r3 * s_td
                    acc_t += -p0[i] * amp * r3 * c * s_d
                if ti.static(with_positions):
                    rx, ax, vx, below_x = strip_term(moved_x, k, m, below_x, shape)
                    ry, ay, vy, below_y = strip_term(moved_y, k, m, below_y, shape)
                    rz, az, vz, below_z = strip_term(moved_z, k, m, below_z, shape)
                    acc[0] += (g_reff * (rx - reff) + g_amp * (ax - amp) + g_var * (vx - var)) / h
                    acc[1] += (g_reff * (ry - reff) + g_amp * (ay - amp) + g_var * (vy - var)) / h
                    acc[2] += (g_reff * (rz - reff) + g_amp * (az - amp) + g_var * (vz - var)) / h
        for d in ti.static(range(3)):
            g_xyz[i, d] = acc[d]
        g_p0[i] = acc_p
        g_sigma[i] = acc_a
        if ti.static(with_scalars):
            ti.atomic_add(g_scalar[0], acc_c)
            ti.atomic_add(g_scalar[1], acc_t)
