"""The public loss_and_grad is the objective the reconstruction loop minimises."""

import numpy as np
import pytest
from test_reconstruct import REGION, _fast_cfg, _small_case

import slingbag
from slingbag.core.cloud import GaussianCloud
from slingbag.fit.reconstruct import reconstruct


def _settings():
    # A sensor response (which turns L1 on), the loss's low-pass (default) and learned
    # per-sensor gains: every part of the objective.
    cfg = _fast_cfg(16)
    cfg["response"].update(kind="bandpass", centre=2e6, bandwidth=0.8)
    cfg["calibrate"]["params"] = ["gain"]
    cfg["coarse"]["iterations"], cfg["fine"]["iterations"] = 4, 12  # gains move in the fine
    assert cfg["loss"]["lowpass"] > 0 and cfg["loss"]["l1_band_limited"] > 0
    assert cfg["loss"]["lowpass_coarse"] != cfg["loss"]["lowpass"]  # the stages differ
    return cfg


def test_public_loss_is_the_loop_loss(rng, monkeypatch):
    import sys

    R = sys.modules["slingbag.fit.passes"]  # where the loop's sensor model is made
    truth, acq = _small_case(rng)
    assert acq.n_sensors <= 256  # every iteration uses every sensor
    cals = []

    class Recorded(R.Calibration):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            cals.append(self)

    monkeypatch.setattr(R, "Calibration", Recorded)
    seen = {}

    def callback(it, loss, state):
        # The state after iteration `it` is the one iteration it + 1 evaluates.
        seen[it] = (state.xyz.copy(), state.p0.copy(), state.sigma.copy(), cals[-1].gain.copy())

    rec = reconstruct(acq, _settings(), region=REGION, progress=False, seed=2, callback=callback)
    scale = rec.attrs["signal_scale"]
    assert rec.attrs["l1_weight"] > 0
    checked = 0
    for it, (xyz, p0, sigma, gain) in seen.items():
        if it >= len(rec.history["loss"]):
            continue
        cloud = GaussianCloud(xyz, p0.astype(np.float64) * scale, sigma)
        stage = "coarse" if rec.history["stage"][it] == 0 else "fine"
        loss, _ = slingbag.loss_and_grad(
            cloud,
            acq,
            config=rec.config,
            gains=gain,
            l1_weight=rec.attrs["l1_weight"],
            stage=stage,
        )
        assert loss == pytest.approx(rec.history["loss"][it], rel=1e-9), it  # unit conversions only
        checked += 1
    assert checked == len(rec.history["loss"]) - 1 == 15
    # Gains moved, so they were part of what was compared.
    assert np.ptp(seen[15][3]) > 1e-4


def test_public_gradient_is_the_gradient_of_the_public_loss(rng):
    truth, acq = _small_case(rng)
    cfg = _settings()
    sub = np.arange(0, truth.n, 12)  # a few balls, near but not at the truth
    guess = GaussianCloud(truth.xyz[sub] + 3e-5, truth.p0[sub] * 0.02, truth.sigma[sub] * 1.3)
    gains = np.linspace(0.8, 1.2, acq.n_sensors)
    kw = dict(config=cfg, gains=gains, l1_weight=0.05)
    loss, g = slingbag.loss_and_grad(guess, acq, **kw)
    for name, i, h in [("p0", 0, 1e-3), ("p0", 3, 1e-3), ("sigma", 2, 1e-6)]:
        up, dn = guess.copy(), guess.copy()
        getattr(up, name)[i] += h
        getattr(dn, name)[i] -= h
        fd = (
            slingbag.loss_and_grad(up, acq, **kw)[0] - slingbag.loss_and_grad(dn, acq, **kw)[0]
        ) / (2 * h)
        assert g[name][i] == pytest.approx(fd, rel=2e-2), (name, i)
    # The L1 term is there: its weight adds to every p0 gradient.
    g0 = slingbag.loss_and_grad(guess, acq, config=cfg, gains=gains)[1]
    assert np.allclose(g["p0"] - g0["p0"], 0.05)
