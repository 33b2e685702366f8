"""The exact face average of uniform spheres: a Taichi kernel of the benchmark's own.

It shares nothing with :mod:`slingbag.kernels` (whose face model is a far-field strip
approximation): every sample is the pressure of the uniform sphere averaged over the
whole flat face and over the sampling interval, near field included.

Seen from a source at height ``z`` above the face's plane, with foot point ``F`` in that
plane, the face points at distance ``R`` lie on the circle of radius
``rho = sqrt(R^2 - z^2)`` around ``F``.  The face area between ``R`` and ``R + dR`` is
``R Theta(R) dR``, ``Theta(R)`` the angle of that circle inside the face: for a disc
``2 arccos((rho^2 + d^2 - a^2) / (2 rho d))`` (``d = |F|``, ``a`` its radius), for a
rectangle the measure of the angles whose point lies between both pairs of edges (each
pair allows two arcs symmetric about its axis, four arccos in all).  The sphere's
running integral ``H(u; R) = P (b^2 - (u - R)^2) / (4 R)`` (see :mod:`.exact`) averaged over
the face loses its ``R``:

    <H>(u) = P / (4 A) M(u),    M(u) = int Theta(R) (b^2 - (u - R)^2)_+ dR,

``A`` the face's area, and sample ``n`` is ``(<H>(u_{n+1}) - <H>(u_n)) / du``.  ``M`` is an
integral over ``R`` in ``[u - b, u + b]``, nothing but quadrature stands between it and the
exact face average: no far-field step.

``Theta`` is smooth between its kinks: the face's nearest and farthest distances, the
distances at which the circle touches an edge line or passes a corner (a disc: touches its
rim).  Where the circle touches an edge on the face, ``Theta`` has a square-root edge; at a
corner it only bends.  Each window is cut at the kinks, and on every kink interval the sum
runs over ``t`` with ``R = k0 + (k1 - k0) m(t)``, ``m`` of zero slope at the ends with a
square-root edge (``t^2``, ``1 - (1 - t)^2`` or ``3t^2 - 2t^3``), which turns them smooth:
Gauss-Legendre with 3 points per piece on intervals with smooth ends and 4 on the others
(``FACE_QUADRATURE`` in :mod:`.exact`).  ``tests/test_exact_faces.py`` measures it against
16 points and against a dense grid of point sensors over the face.  The arccos is a
polynomial within 2e-8 rad.  The sphere must lie farther than its radius from the face.
"""

import contextlib
import sys

with contextlib.redirect_stdout(sys.stderr):  # Taichi's banner goes to stderr
    import taichi as ti

nd = ti.types.ndarray
DISC = 1
RECT = 2
#: Kinks of Theta(R) a window is cut at: nearest and farthest distance, a rectangle's four
#: edge lines and four corners (a disc uses three and repeats the nearest).
N_KINKS = 10


@ti.func
def _overlap(p1, p2, q1, q2):
    return ti.max(ti.min(p2, q2) - ti.max(p1, q1), 0.0)


# Abramowitz & Stegun 4.4.46: acos(x) = sqrt(1 - x) sum a_k x^k on [0, 1], error < 2e-8
# rad (libm's acos costs about twice as much here, and the kernel is mostly arccos).
_ACOS = (1.5707963050, -0.2145988016, 0.0889789874, -0.0501743046, 0.0308918810,
         -0.0170881256, 0.0066700901, -0.0012624911)  # fmt: skip


@ti.func
def _acos(x):
    """arccos of x clipped to [-1, 1], within 2e-8 rad."""
    ax = ti.min(ti.abs(x), 1.0)
    poly = ti.cast(0, ti.f64)
    for j in ti.static(range(7, -1, -1)):
        poly = poly * ax + ti.f64(_ACOS[j])
    y = ti.sqrt(1.0 - ax) * poly
    return ti.select(x >= 0.0, y, ti.f64(3.141592653589793) - y)


@ti.func
def _theta_rect(rho, fx, fy, hw, hh, pi):
    """Angle of the circle (radius rho, centre (fx, fy)) inside [-hw, hw] x [-hh, hh]."""
    inv = 1.0 / rho
    # cos(phi) in [(-hw - fx)/rho, (hw - fx)/rho]: |phi| in [a1, a2].
    a1 = _acos((hw - fx) * inv)
    a2 = _acos((-hw - fx) * inv)
    # sin(phi) in [(-hh - fy)/rho, (hh - fy)/rho]: |phi - pi/2| in [b1, b2].
    b1 = _acos((hh - fy) * inv)
    b2 = _acos((-hh - fy) * inv)
    h = 0.5 * pi
    return (
        _overlap(a1, a2, h + b1, h + b2)
        + _overlap(a1, a2, h - b2, h - b1)
        + _overlap(-a2, -a1, h + b1, h + b2)
        + _overlap(-a2, -a1, h - b2, h - b1)
        + _overlap(-a2, -a1, h + b1 - 2.0 * pi, h + b2 - 2.0 * pi)
    )


@ti.func
def _theta_disc(rho, d, a, pi):
    """Angle of the circle (radius rho, centre at distance d) inside the disc of radius a."""
    out = ti.cast(0, ti.f64)
    if rho <= a - d:
        out = 2.0 * pi
    elif rho < a + d and rho > d - a:
        out = 2.0 * _acos((rho * rho + d * d - a * a) / (2.0 * rho * d))
    return out


@ti.func
def _unmap(x, y, ls, rs):
    """The ``t`` in [0, 1] with ``m(t) = x`` (``y = 1 - x``, passed to keep its digits)."""
    t = x
    if ls == 1 and rs == 1:
        t = 0.5 - ti.sin(ti.asin(ti.min(ti.max(1.0 - 2.0 * x, -1.0), 1.0)) / 3.0)
    elif ls == 1:
        t = ti.sqrt(x)
    elif rs == 1:
        t = 1.0 - ti.sqrt(y)
    return t


@ti.func
def _map(t, ls, rs):
    """``m(t)`` and ``m'(t)``: zero slope at an end with a square-root edge."""
    m = t
    dm = ti.cast(1, ti.f64)
    if ls == 1 and rs == 1:
        m = t * t * (3.0 - 2.0 * t)
        dm = 6.0 * t * (1.0 - t)
    elif ls == 1:
        m = t * t
        dm = 2.0 * t
    elif rs == 1:
        m = 1.0 - (1.0 - t) * (1.0 - t)
        dm = 2.0 * (1.0 - t)
    return m, dm


@ti.func
def _piece(a, c, k0, k1, ls, rs, u, b, z, fx, fy, hw, hh, shape, rule: ti.template(), q0, q1, pi):
    """Gauss-Legendre sum of Theta(R) (b^2 - (u - R)^2) over R in [a, c], a part of the
    kink interval [k0, k1] on which Theta is smooth but for square-root edges at the ends
    flagged ``ls``, ``rs``: the sum runs over ``t``, ``R = k0 + (k1 - k0) m(t)``, with
    the nodes and weights in columns ``q0:q1`` of ``rule``."""
    span = k1 - k0
    ta = _unmap(ti.min((a - k0) / span, 1.0), ti.min((k1 - a) / span, 1.0), ls, rs)
    tc = _unmap(ti.min((c - k0) / span, 1.0), ti.min((k1 - c) / span, 1.0), ls, rs)
    acc = ti.cast(0, ti.f64)
    d = ti.sqrt(fx * fx + fy * fy)
    for q in range(q0, q1):
        m, dm = _map(ta + (tc - ta) * rule[0, q], ls, rs)
        r = k0 + span * m
        rho = ti.max(ti.sqrt(ti.max((r - z) * (r + z), 0.0)), 1e-12)
        th = ti.cast(0, ti.f64)
        if shape == DISC:
            th = _theta_disc(rho, d, hw, pi)
        else:
            th = _theta_rect(rho, fx, fy, hw, hh, pi)
        s = u - r
        acc += rule[1, q] * th * (b * b - s * s) * dm
    return acc * span * (tc - ta)


@ti.func
def _rho_kinks(fx, fy, hw, hh, shape):
    """Radii (in the face plane, around F) at which Theta(R) has a kink, and whether
    Theta has a square-root edge there (the circle touches an edge or the rim; through
    a corner Theta only bends)."""
    k = ti.Vector([0.0] * (N_KINKS - 2), dt=ti.f64)
    sq = ti.Vector([0] * (N_KINKS - 2), dt=ti.i32)
    if shape == DISC:
        d = ti.sqrt(fx * fx + fy * fy)
        k[0] = ti.abs(hw - d)
        k[1] = hw + d
        sq[0] = ti.select(d > 0.0, 1, 0)
        sq[1] = sq[0]
        for i in ti.static(range(2, N_KINKS - 2)):
            k[i] = k[0]
            sq[i] = sq[0]
    else:
        k[0] = ti.abs(hw - fx)
        k[1] = ti.abs(hw + fx)
        k[2] = ti.abs(hh - fy)
        k[3] = ti.abs(hh + fy)
        k[4] = ti.sqrt((hw - fx) ** 2 + (hh - fy) ** 2)
        k[5] = ti.sqrt((hw + fx) ** 2 + (hh - fy) ** 2)
        k[6] = ti.sqrt((hw - fx) ** 2 + (hh + fy) ** 2)
        k[7] = ti.sqrt((hw + fx) ** 2 + (hh + fy) ** 2)
        sq[0] = ti.select(ti.abs(fy) < hh, 1, 0)  # the edge x = hw is touched on the face
        sq[1] = sq[0]
        sq[2] = ti.select(ti.abs(fx) < hw, 1, 0)
        sq[3] = sq[2]
    return k, sq


@ti.func
def _sorted_kinks(z, fx, fy, hw, hh, shape):
    """The kinks as distances R, sorted, between the nearest and farthest face distance
    (first and last), with their square-root flags."""
    rk, rsq = _rho_kinks(fx, fy, hw, hh, shape)
    near = ti.cast(0, ti.f64)  # distance in the plane from F to the nearest face point
    far = ti.cast(0, ti.f64)
    near_sq = 0
    far_sq = 0
    if shape == DISC:
        d = ti.sqrt(fx * fx + fy * fy)
        near = ti.max(d - hw, 0.0)
        far = d + hw
        near_sq = ti.select(d > hw, 1, 0)
        far_sq = ti.select(d > 0.0, 1, 0)
    else:
        dx = ti.max(ti.abs(fx) - hw, 0.0)
        dy = ti.max(ti.abs(fy) - hh, 0.0)
        near = ti.sqrt(dx * dx + dy * dy)
        far = ti.sqrt((ti.abs(fx) + hw) ** 2 + (ti.abs(fy) + hh) ** 2)
        near_sq = ti.select((dx > 0.0) != (dy > 0.0), 1, 0)  # an edge is nearest
    rmin = ti.sqrt(z * z + near * near)
    rmax = ti.sqrt(z * z + far * far)
    k = ti.Vector([rmin] * N_KINKS)
    sq = ti.Vector([near_sq] * N_KINKS, dt=ti.i32)
    k[N_KINKS - 1] = rmax
    sq[N_KINKS - 1] = far_sq
    for i in ti.static(range(N_KINKS - 2)):
        k[i + 1] = ti.min(ti.max(ti.sqrt(z * z + rk[i] * rk[i]), rmin), rmax)
        sq[i + 1] = rsq[i]
    for i in ti.static(range(1, N_KINKS)):  # insertion sort, unrolled
        for j in ti.static(range(i, 0, -1)):
            swap = k[j] < k[j - 1]
            a, c, fa, fc = k[j - 1], k[j], sq[j - 1], sq[j]
            k[j - 1] = ti.select(swap, c, a)
            k[j] = ti.select(swap, a, c)
            sq[j - 1] = ti.select(swap, fc, fa)
            sq[j] = ti.select(swap, fa, fc)
    for i in ti.static(range(1, N_KINKS)):  # equal kinks share their flags
        if k[i] == k[i - 1]:
            sq[i] = ti.max(sq[i], sq[i - 1])
    for i in ti.static(range(N_KINKS - 1, 0, -1)):
        if k[i] == k[i - 1]:
            sq[i - 1] = ti.max(sq[i], sq[i - 1])
    return k, sq


@ti.kernel
def face_edges(
    centres: nd(dtype=ti.f64, ndim=2),
    values: nd(dtype=ti.f64, ndim=1),
    table: nd(dtype=ti.f64, ndim=2),
    rule: nd(dtype=ti.f64, ndim=2),
    out: nd(dtype=ti.f64, ndim=2),
    b: ti.f64,
    du: ti.f64,
    u_first: ti.f64,
    shape: ti.i32,
    n_plain: ti.i32,
):
    """Add ``P M(u_e)`` of every (sensor, sphere) pair to ``out[sensor, e]`` (see the
    module), ``u_e = u_first + e du``.

    ``table`` has one row per sensor: position, unit normal, width axis, height axis,
    half-width, half-height (a disc: its radius twice).  ``rule`` is ``(2, n)``:
    Gauss-Legendre nodes on [0, 1] and their weights, the first ``n_plain`` columns for
    kink intervals with smooth ends, the others for those with a square-root edge."""
    pi = ti.acos(ti.cast(-1, ti.f64))
    n_edges = out.shape[1]
    for s, v in ti.ndrange(table.shape[0], centres.shape[0]):
        dx = centres[v, 0] - table[s, 0]
        dy = centres[v, 1] - table[s, 1]
        dz = centres[v, 2] - table[s, 2]
        z = ti.abs(dx * table[s, 3] + dy * table[s, 4] + dz * table[s, 5])
        fx = dx * table[s, 6] + dy * table[s, 7] + dz * table[s, 8]
        fy = dx * table[s, 9] + dy * table[s, 10] + dz * table[s, 11]
        hw = table[s, 12]
        hh = table[s, 13]
        k, sq = _sorted_kinks(z, fx, fy, hw, hh, shape)
        for i in range(N_KINKS - 1):  # each kink interval, the windows that meet it
            k0 = k[i]
            k1 = k[i + 1]
            if k1 > k0:
                ls = sq[i]
                rs = sq[i + 1]
                q0 = ti.select(ls + rs > 0, n_plain, 0)
                q1 = ti.select(ls + rs > 0, rule.shape[1], n_plain)
                first = ti.max((k0 - b - u_first) / du, -1.0)
                last = ti.min((k1 + b - u_first) / du, ti.cast(n_edges, ti.f64))
                e_lo = ti.max(ti.cast(ti.floor(first), ti.i32) + 1, 0)
                e_hi = ti.min(ti.cast(ti.ceil(last), ti.i32) - 1, n_edges - 1)
                for e in range(e_lo, e_hi + 1):
                    u = u_first + e * du
                    a = ti.max(u - b, k0)
                    c = ti.min(u + b, k1)
                    if c > a:
                        m = _piece(
                            a, c, k0, k1, ls, rs, u, b, z, fx, fy, hw, hh, shape, rule, q0, q1, pi
                        )
                        out[s, e] += values[v] * m
