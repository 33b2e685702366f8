"""Central differences of a scalar objective, for the kernels' gradient tests."""

import numpy as np


def central(fun, x, h):
    """The gradient of ``fun`` at ``x`` (float64) by central differences of step ``h``."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (fun(xp) - fun(xm)) / (2 * h)
    return g


def radiator_differences(obj, xyz, p0, sigma, c, t0) -> dict:
    """The gradients ``backward_signals`` returns, of ``obj(xyz=, p0=, sigma=, c=, t0=)``,
    by central differences with steps suited to each (metres, seconds, m/s)."""
    return {
        "p0": central(lambda v: obj(p0=v), p0, 1e-4),
        "sigma": central(lambda v: obj(sigma=v), sigma, 1e-8),
        "xyz": central(lambda v: obj(xyz=v), xyz, 1e-8),
        "sound_speed": central(lambda v: obj(c=v[0]), [c], 1e-3)[0],
        "t0": central(lambda v: obj(t0=v[0]), [t0], 1e-12)[0],
    }


def p0_differences(loss, cloud, h=1e-3):
    """The gradient of ``loss(cloud)`` with respect to each ball's p0, by central
    differences (``cloud`` a :class:`~slingbag.GaussianCloud`)."""
    out = np.zeros(len(cloud.p0))
    for i in range(len(cloud.p0)):
        up, dn = cloud.copy(), cloud.copy()
        up.p0[i] += h
        dn.p0[i] -= h
        out[i] = (loss(up) - loss(dn)) / (2 * h)
    return out
