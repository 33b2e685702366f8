"""The point-cloud-to-voxel shader (see docs/method.md).

Every ball adds its initial-pressure profile to the voxels inside its support, and only to
those: one thread per (ball, x-row of its box) loops over the rest of the voxel box that
bounds its support sphere (clipped to the grid) and adds with atomics, since neighbouring
balls share voxels.  The cost is the number of (ball, voxel-in-support) pairs, not balls
times voxels.  Rows rather than whole balls per thread: on a software Vulkan device
(lavapipe) a single invocation looping over a large ball's whole box stopped part-way.

Profiles (``r`` the distance to the ball's centre, ``a`` its sigma):

``gaussian`` (model id 0)
    ``p0 * (exp(-r^2 / 2a^2) - exp(-cut^2 / 2))`` for ``r < cut * a``: the Gaussian cut at
    ``cut`` sigma and lowered by its value there, the profile the radiator's ``gaussian``
    model propagates.
``shells`` (model id 1)
    ``p0 * sum_k w_k [r < f_k a]``: the paper's staircase of ten uniform spheres, support
    ``3 a`` whatever ``cut`` says.

Ball centres arrive in voxel-index units relative to the grid origin (converted on the host
in float64), so float32 keeps sub-voxel precision however far the grid is from the origin.
Everything is float32 with ``ti.types.ndarray`` arguments, so the same code runs on cpu and
cuda.
"""

import taichi as ti

from .radiator import GAUSSIAN, SHELL_F, SHELL_W, SHELLS

nd = ti.types.ndarray


@ti.func
def support_radius(a, cut, model: ti.template()):
    """Distance beyond which a ball's profile is exactly zero."""
    radius = cut * a
    if ti.static(model == SHELLS):
        radius = 3.0 * a
    return radius


@ti.func
def profile(r2, a, cut, gc, model: ti.template()):
    """The unit-peak profile at squared distance ``r2`` (zero outside the support)."""
    value = 0.0
    if ti.static(model == GAUSSIAN):
        if r2 < cut * cut * a * a:
            value = ti.exp(-0.5 * r2 / (a * a)) - gc
    else:
        for k in ti.static(range(10)):
            fa = SHELL_F[k] * a
            if r2 < fa * fa:
                value += SHELL_W[k]
    return value


@ti.func
def index_range(u, reach, n):
    """First and last voxel index within ``reach`` (voxels) of ``u``, clipped to [0, n-1].

    Clipping in float before the cast keeps a ball far off the grid from overflowing i32;
    an empty range comes back as ``lo > hi``.
    """
    lo = ti.max(ti.ceil(u - reach), 0.0)
    hi = ti.min(ti.floor(u + reach), ti.cast(n - 1, ti.f32))
    lo = ti.min(lo, ti.cast(n, ti.f32))
    hi = ti.max(hi, -1.0)
    return ti.cast(lo, ti.i32), ti.cast(hi, ti.i32)


@ti.kernel
def splat(
    centres: nd(dtype=ti.f32, ndim=2),
    p0: nd(dtype=ti.f32, ndim=1),
    sigma: nd(dtype=ti.f32, ndim=1),
    out: nd(dtype=ti.f32, ndim=3),
    hx: ti.f32,
    hy: ti.f32,
    hz: ti.f32,
    cut: ti.f32,
    rows: ti.i32,
    model: ti.template(),
):
    """Add every ball's profile to ``out`` (the caller zeroes it).

    Parameters
    ----------
    centres : (N, 3) float32
        Ball centres in voxel-index units: ``(xyz - origin) / spacing``.
    p0, sigma : (N,) float32
        Peak pressures and standard deviations (metres).
    out : (nx, ny, nz) float32
        The grid; voxel ``[i, j, k]`` sits at index position ``(i, j, k)``.
    hx, hy, hz : float
        Voxel spacing along each axis (metres).
    cut : float
        Support of the ``gaussian`` model in sigmas (ignored by ``shells``).
    rows : int
        At least the number of x-rows of the widest ball's box (threads per ball).
    model : int, template
        0 for ``gaussian``, 1 for ``shells``.
    """
    nx, ny, nz = out.shape[0], out.shape[1], out.shape[2]
    gc = ti.exp(-0.5 * cut * cut)
    for b, row in ti.ndrange(p0.shape[0], rows):
        a = sigma[b]
        radius = support_radius(a, cut, model)
        ux = centres[b, 0]
        i_lo, i_hi = index_range(ux, radius / hx, nx)
        i = i_lo + row
        if a > 0.0 and i <= i_hi:
            uy = centres[b, 1]
            uz = centres[b, 2]
            j_lo, j_hi = index_range(uy, radius / hy, ny)
            k_lo, k_hi = index_range(uz, radius / hz, nz)
            amp = p0[b]
            dx = (i - ux) * hx
            for j in range(j_lo, j_hi + 1):
                dy = (j - uy) * hy
                dxy2 = dx * dx + dy * dy
                for k in range(k_lo, k_hi + 1):
                    dz = (k - uz) * hz
                    value = profile(dxy2 + dz * dz, a, cut, gc, model)
                    if value != 0.0:
                        out[i, j, k] += amp * value
