"""Adam with per-parameter learning rates over named arrays of a state object."""

from __future__ import annotations

import numpy as np

BETA1, BETA2 = 0.9, 0.999


class Adam:
    """Adam over the arrays ``getattr(state, name)`` for the names given learning rates.

    Moments are float64 (gradients of a mean-squared misfit can be tiny) and live in
    ``state.moments`` so that density control can carry them over for surviving balls.
    The epsilon is relative: a floor well below each parameter's first RMS gradient.
    """

    def __init__(self):
        self.t = 0
        self.eps = {}

    def step(self, state, grads: dict, lrs: dict):
        self.t += 1
        for name, lr in lrs.items():
            if lr <= 0:
                continue
            g = np.asarray(grads[name], np.float64)
            if name not in self.eps:
                rms = float(np.sqrt(np.mean(g**2))) if g.size else 0.0
                self.eps[name] = 1e-8 * rms if rms > 0 else 1e-30
            m, v = state.moments.get(name, (np.zeros_like(g), np.zeros_like(g)))
            m = BETA1 * m + (1 - BETA1) * g
            v = BETA2 * v + (1 - BETA2) * g * g
            state.moments[name] = (m, v)
            mhat = m / (1 - BETA1**self.t)
            vhat = v / (1 - BETA2**self.t)
            p = getattr(state, name)
            p -= (lr * mhat / (np.sqrt(vhat) + self.eps[name])).astype(p.dtype)
