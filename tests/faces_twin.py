"""A plain NumPy twin of :mod:`slingbag.kernels.faces` (float64, no windows, no
recurrences), for the kernel tests."""

import numpy as np

CUT = 3.0
GC = np.exp(-0.5 * CUT**2)


def spread(v, row, shape):
    R0 = np.linalg.norm(v)
    e1, e2 = row[3:6], row[6:9]
    A, B = row[9], row[10]
    u1, u2 = v @ e1 / R0, v @ e2 / R0
    sp = np.hypot(u1, u2)
    if shape == "disc":
        b1, b2 = A * sp, 0.0
    else:
        b1, b2 = sorted([A * abs(u1), B * abs(u2)], reverse=True)
    return R0, u1, u2, sp, b1, b2, b1 + b2, A, B


def _cdf(x, b1, b2, shape):
    if shape == "disc":
        xi = np.clip(x / b1, -1, 1)
        root = np.sqrt(1 - xi * xi)
        return (
            (xi * root + np.arcsin(xi)) / np.pi + 0.5,
            -b1 * 2 / (3 * np.pi) * root**3,
            b1 * b1 * (2 / np.pi * (np.arcsin(xi) / 8 - xi * root * (1 - 2 * xi * xi) / 8) + 1 / 8),
        )
    if b2 < 1e-2 * b1:
        xc = np.clip(x, -b1, b1)
        return (xc + b1) / (2 * b1), (xc**2 - b1**2) / (4 * b1), (xc**3 + b1**3) / (6 * b1)
    # moments of the sum of two uniforms, by numerical quadrature of its density
    t = np.linspace(-b1 - b2, min(x, b1 + b2), 20001)
    dens = (np.clip(b1 + b2 - np.abs(t), 0, None) - np.clip(b1 - b2 - np.abs(t), 0, None)) / (
        4 * b1 * b2
    )
    if x <= -b1 - b2:
        return 0.0, 0.0, 0.0
    return tuple(np.trapezoid(dens * t**j, t) for j in range(3))


def _chord(x, u1, u2, sp, A, B, shape):
    if shape == "disc":
        h = np.sqrt(max(A * A - (x / sp) ** 2, 0.0))
        return -h, h
    # the face points (rho1, rho2) whose projection is x, by sampling the line
    y = np.linspace(-2 * (A + B), 2 * (A + B), 400001)
    rho1 = x * u1 / sp**2 - y * u2 / sp
    rho2 = x * u2 / sp**2 + y * u1 / sp
    inside = (np.abs(rho1) <= A) & (np.abs(rho2) <= B)
    if not inside.any():
        mid = y[np.argmin(np.maximum(np.abs(rho1) - A, np.abs(rho2) - B))]
        return mid, mid
    return y[inside].min(), y[inside].max()


def strip_terms(v, row, sigma, shape, gamma=1.0, max_strips=8):
    R0, u1, u2, sp, b1, b2, total, A, B = spread(v, row, shape)
    m = int(min(max(np.ceil(total / (gamma * sigma)), 1), max_strips))
    if m == 1:
        if shape == "disc":
            s2 = sp * sp
            eg = A * A / 2 * (1 - s2 / 2)
            eg2 = A**4 / 3 * (1 - s2 + 3 * s2 * s2 / 8)
            mean_f, var = eg / (2 * R0), (eg2 - eg * eg) / (4 * R0 * R0) + b1 * b1 / 4
        else:
            w1, w2 = 1 - u1 * u1, 1 - u2 * u2
            mean_f = ((A * A + B * B) / 3 - (b1 * b1 + b2 * b2) / 3) / (2 * R0)
            var_f = (
                w1**2 * 4 * A**4 / 45 + w2**2 * 4 * B**4 / 45 + 4 * u1**2 * u2**2 * A**2 * B**2 / 9
            )
            var = var_f / (4 * R0 * R0) + (b1 * b1 + b2 * b2) / 3
        return [(R0 + mean_f, 1 / (2 * (R0 + mean_f)), var)]
    out = []
    width = 2 * total / m
    for k in range(m):
        xa = -total + k * width
        a = _cdf(xa, b1, b2, shape)
        z = _cdf(xa + width, b1, b2, shape)
        share = z[0] - a[0]
        mean_x = (z[1] - a[1]) / share
        var_x = max((z[2] - a[2]) / share - mean_x**2, 0.0)
        if shape == "rect" and b2 < 1e-2 * b1:
            var_x += b2 * b2 / 3
        lo, hi = _chord(mean_x, u1, u2, sp, A, B, shape)
        ey2 = (lo * lo + lo * hi + hi * hi) / 3
        ey4 = (hi**4 + hi**3 * lo + hi**2 * lo**2 + hi * lo**3 + lo**4) / 5
        mean_f = (mean_x**2 * (1 / sp**2 - 1) + ey2) / (2 * R0)
        var_f = max(ey4 - ey2**2, 0.0) / (4 * R0 * R0)
        reff = R0 - mean_x + mean_f
        out.append((reff, share / (2 * reff), var_x + var_f))
    return out


def signals(xyz, p0, sigma, sensors, table, shape, n_samples, fs, c, t0=0.0, gamma=1.0, cut=CUT):
    t = t0 + np.arange(n_samples) / fs
    out = np.zeros((len(sensors), n_samples))
    for s, pos in enumerate(sensors):
        for i in range(len(p0)):
            for reff, amp, var in strip_terms(xyz[i] - pos, table[s], sigma[i], shape, gamma):
                sk = np.sqrt(sigma[i] ** 2 + var)
                D = reff - c * t
                low = np.exp(-0.5 * cut**2)
                prof = np.where(np.abs(D) < cut * sk, D * (np.exp(-0.5 * (D / sk) ** 2) - low), 0.0)
                out[s] += p0[i] * amp * (sigma[i] / sk) ** 3 * prof
    return out
