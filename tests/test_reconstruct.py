"""Density control, configuration and small end-to-end reconstructions."""

import numpy as np
import pytest

from slingbag.core.cloud import GaussianCloud, profile_integral_factor
from slingbag.core.config import load_config
from slingbag.errors import InputError, ReconstructionError
from slingbag.fit.density import DensityStrategy, duplicate, prune_mask, split
from slingbag.fit.reconstruct import reconstruct
from slingbag.fit.state import CloudState
from slingbag.model.radiator import simulate
from slingbag.model.voxelize import voxelize

RES = 0.2e-3


def test_prune_removes_exactly_the_right_balls():
    xyz = np.array([[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [0.2, 0.2, 2.0], [0.1, 0.1, 0.1]])
    p0 = np.array([1.0, 0.05, 1.0, 1.0, 1.0])  # ball 1 too faint
    sigma = np.array([1.0, 1.0, 0.1, 1.0, 1.0])  # ball 2 too small
    keep = prune_mask(p0, sigma, xyz, p0_min=0.1, sigma_min=0.5, lo=np.zeros(3), hi=np.ones(3))
    # ball 3 is outside the box (z = 2)
    assert keep.tolist() == [True, False, False, False, True]


def test_split_conserves_the_field_integral(rng):
    xyz = rng.uniform(-1e-3, 1e-3, (5, 3))
    p0 = rng.uniform(1, 2, 5)
    sigma = rng.uniform(0.8e-3, 1.2e-3, 5)
    grad = rng.standard_normal((5, 3))
    new = split(xyz, p0, sigma, grad, rng)
    assert len(new["p0"]) == 10
    assert np.allclose(new["sigma"], np.concatenate([sigma, sigma]) / 2)
    # Offsets lie along the gradient.
    d = new["xyz"][:5] - xyz
    cos = np.sum(d * grad, axis=1) / np.linalg.norm(d, axis=1) / np.linalg.norm(grad, axis=1)
    assert np.allclose(cos, 1.0)
    # The splatted field's integral is kept to within a few per cent.
    spacing = 0.05e-3
    origin = np.full(3, -5e-3)
    shape = (200, 200, 200)
    before = voxelize(GaussianCloud(xyz, p0, sigma), origin, spacing, shape).data.sum()
    after = voxelize(
        GaussianCloud(new["xyz"], new["p0"], new["sigma"]), origin, spacing, shape
    ).data.sum()
    analytic = profile_integral_factor() * np.sum(p0 * sigma**3) / spacing**3
    assert before == pytest.approx(analytic, rel=0.01)
    assert after == pytest.approx(before, rel=0.03)


def test_duplicate_moves_down_the_gradient(rng):
    xyz = rng.uniform(-1e-3, 1e-3, (4, 3))
    grad = rng.standard_normal((4, 3))
    p0 = np.ones(4)
    half, new = duplicate(xyz, p0, np.full(4, 1e-4), grad, step=2e-4, rng=rng)
    d = new["xyz"] - xyz
    assert np.allclose(np.linalg.norm(d, axis=1), 2e-4)
    assert np.all(np.sum(d * grad, axis=1) < 0)  # opposite the gradient: downhill
    assert np.allclose(half + new["p0"], p0)


def test_strategy_keeps_moments_of_survivors_and_zeroes_new(rng):
    cfg = load_config()
    n = 6
    state = CloudState(
        rng.uniform(0, 1e-3, (n, 3)).astype(np.float32),
        np.array([1, 1, 0.001, 1, 1, 1], np.float32),
        np.array([1, 1, 1, 1, 4, 1], np.float32) * RES,  # ball 4 is split
    )
    state.moments["p0"] = (np.arange(n, dtype=float), np.arange(n, dtype=float) + 10)
    strat = DensityStrategy.from_config(cfg, RES)
    grads = {"xyz": rng.standard_normal((n, 3)).astype(np.float32)}
    lo, hi = np.zeros(3, np.float32), np.full(3, 1e-3, np.float32)
    counts = strat.step_post_backward(state, grads, strat.every, "coarse", rng, lo, hi)
    assert counts["pruned"] == 1 and counts["split"] == 1
    assert state.n == 6  # 6 - 1 pruned - 1 split + 2 halves
    m, v = state.moments["p0"]
    assert m.tolist() == [0, 1, 3, 5, 0, 0]
    assert v.tolist() == [10, 11, 13, 15, 0, 0]


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[coarse]\nlr_p00 = 1\n")
    with pytest.raises(InputError, match="coarse.lr_p00"):
        load_config(bad)
    bad.write_text("[fine]\ndecay = 2.0\n")
    with pytest.raises(InputError, match="fine.decay"):
        load_config(bad)
    bad.write_text("[init]\nmethod = 'magic'\n")
    with pytest.raises(InputError, match="init.method"):
        load_config(bad)
    with pytest.raises(InputError, match="preset"):
        load_config("no-such-preset")
    assert load_config("paper")["init"]["balls"] == 600000


def _small_case(rng, model="shells"):
    """A few tubes of balls 6-8 mm above a 7 x 7 array, data from another model."""
    t = np.linspace(0, 1, 60)
    xyz = np.concatenate(
        [
            np.stack([-2e-3 + 4e-3 * t, 0.5e-3 * np.sin(6 * t), 7e-3 + 0 * t], 1),
            np.stack([1e-3 * np.cos(4 * t), -2e-3 + 4e-3 * t, 7.5e-3 + 0 * t], 1),
        ]
    )
    truth = GaussianCloud(xyz, np.ones(len(xyz)), np.full(len(xyz), 0.12e-3))
    g = (np.arange(7) - 3) * 1.5e-3
    X, Y = np.meshgrid(g, g)
    sensors = np.stack([X.ravel(), Y.ravel(), 0 * X.ravel()], 1)
    acq = simulate(truth, sensors, model=model, n_samples=768, noise=0.01, seed=3)
    return truth, acq


def _fast_cfg(iterations=60):
    cfg = load_config("fast")
    cfg["init"]["balls"] = 800
    cfg["coarse"]["iterations"] = iterations // 2
    cfg["fine"]["iterations"] = iterations - iterations // 2
    return cfg


REGION = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 8.6e-3]


def test_reconstruction_error_falls(rng):
    from slingbag.report.metrics import metrics

    truth, acq = _small_case(rng)
    cfg = _fast_cfg(80)
    # The loss history is then the data misfit alone, in one band (the defaults add an L1
    # term and fit the coarse stage through a wider low-pass).
    cfg["loss"]["l1"], cfg["loss"]["lowpass_coarse"] = 0.0, 0.0
    rec = reconstruct(acq, cfg, region=REGION, progress=False, seed=0)
    loss = rec.history["loss"]
    assert loss[-1] < 0.25 * loss[0]
    tv = voxelize(truth, rec.volume.origin, rec.volume.spacing, rec.volume.shape)
    m = metrics(rec.volume, tv)
    assert m["ssim_map_z"] > 0.5
    assert rec.cloud.n > 0 and np.all(rec.cloud.p0 > 0)
    # p0 comes back in the units of the signals (not the internal scale).
    assert 0.1 < np.percentile(rec.cloud.p0, 90) < 10


def test_signal_scale_is_undone(rng):
    truth, acq = _small_case(rng)
    a = reconstruct(acq, _fast_cfg(10), region=REGION, progress=False, seed=1)
    b = reconstruct(
        acq.replace(signals=acq.signals * 1000),
        _fast_cfg(10),
        region=REGION,
        progress=False,
        seed=1,
    )
    assert np.allclose(b.cloud.p0, 1000 * a.cloud.p0, rtol=1e-3)
    # The two runs round their float32 signals differently and Adam carries that on: the
    # balls agree to ~10 nm here, 1/20,000 of the region's resolution; an unscaled run
    # would differ at the resolution's scale.
    assert np.allclose(b.cloud.xyz, a.cloud.xyz, rtol=0, atol=1e-7)


def test_checkpoint_resume_reaches_the_same_result(rng, tmp_path):
    truth, acq = _small_case(rng)
    cfg = _fast_cfg(30)
    full = reconstruct(acq, cfg, region=REGION, progress=False, seed=4)
    ckpt = tmp_path / "run.ckpt.npz"

    class Stop(Exception):
        pass

    def stop_at(it, loss, state):
        if it == 17:
            raise Stop

    with pytest.raises(Stop):
        reconstruct(
            acq,
            cfg,
            region=REGION,
            progress=False,
            seed=4,
            checkpoint=ckpt,
            checkpoint_every=5,
            callback=stop_at,
        )
    assert ckpt.exists()
    resumed = reconstruct(
        acq,
        cfg,
        region=REGION,
        progress=False,
        seed=4,
        checkpoint=ckpt,
        checkpoint_every=5,
        resume=True,
    )
    assert np.array_equal(resumed.cloud.xyz, full.cloud.xyz)
    assert np.array_equal(resumed.cloud.p0, full.cloud.p0)
    assert np.allclose(resumed.history["loss"], full.history["loss"])


def test_nan_in_gradients_is_survived(rng, monkeypatch):
    import sys

    R = sys.modules["slingbag.fit.objective"]  # where the loop's gradients come from

    truth, acq = _small_case(rng)
    real = R.backward_signals
    calls = {"n": 0}

    def poisoned(*args, **kw):
        g = real(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 12:
            g["p0"][:] = np.nan
        return g

    monkeypatch.setattr(R, "backward_signals", poisoned)
    rec = reconstruct(acq, _fast_cfg(30), region=REGION, progress=False, seed=0)
    assert np.all(np.isfinite(rec.cloud.p0)) and rec.cloud.n > 0
    assert np.all(np.isfinite(rec.history["loss"]))


def test_density_step_that_blows_up_the_loss_is_undone(rng, monkeypatch, caplog):
    import logging

    import slingbag.fit.density as S

    truth, acq = _small_case(rng)
    real = S.split

    def wild(*args, **kw):  # children 1e4 times too bright: the loss explodes
        new = real(*args, **kw)
        new["p0"] = new["p0"] * 1e4
        return new

    monkeypatch.setattr(S, "split", wild)
    cfg = _fast_cfg(60)
    cfg["init"]["sigma"] = [1.0, 2.0]
    cfg["density"]["split_sigma"] = 1.0  # most initial balls (1-2 res) are split
    # The loss history compared below is then the data misfit alone, in one band.
    cfg["loss"]["l1"], cfg["loss"]["lowpass_coarse"] = 0.0, 0.0
    with caplog.at_level(logging.INFO, logger="slingbag"):
        rec = reconstruct(acq, cfg, region=REGION, progress=False, seed=0)
    assert "was undone" in caplog.text
    # Every iteration ran (rolling back to just after the split would only repeat the
    # explosion until the retries ran out) and the cloud is not the exploded one.
    assert len(rec.history["loss"]) == 60
    assert rec.history["loss"][-1] < 0.5 * rec.history["loss"][0]
    assert np.percentile(rec.cloud.p0, 90) < 10
    # No density step after the last iteration (its balls would never be fitted).
    assert "it   60 " not in caplog.text and "it   45 " in caplog.text


def test_cloud_pruned_to_nothing_is_a_clear_error(rng):
    truth, acq = _small_case(rng)
    cfg = _fast_cfg(30)
    cfg["density"]["prune_sigma"] = 1000.0  # every ball is "too small"
    with pytest.raises(ReconstructionError, match="pruned"):
        reconstruct(acq, cfg, region=REGION, progress=False, seed=0)


def test_memory_estimate_refuses_runs_that_cannot_fit(rng, monkeypatch):
    import psutil

    truth, acq = _small_case(rng)
    cfg = _fast_cfg(4)

    class Tiny:
        available = 1 << 20  # 1 MiB free

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny)
    with pytest.raises(ReconstructionError, match="GiB"):
        reconstruct(acq, cfg, region=REGION, progress=False)


def test_region_outside_the_time_window_is_refused(rng):
    truth, acq = _small_case(rng)
    far = [-3e-3, 3e-3, -3e-3, 3e-3, 0.5, 0.6]  # 0.5 m away: no sample reaches it
    with pytest.raises(InputError, match="time window"):
        reconstruct(acq, _fast_cfg(4), region=far, progress=False)


def test_density_step_at_the_stage_switch_is_undone_with_the_defaults(rng, monkeypatch, caplog):
    """The coarse stage ends with a density step and the fine stage compares through
    another low-pass: the divergence guard must still catch that step blowing up."""
    import logging

    import slingbag.fit.density as S

    truth, acq = _small_case(rng)
    real = S.split

    def wild(*args, **kw):
        new = real(*args, **kw)
        new["p0"] = new["p0"] * 1e4
        return new

    monkeypatch.setattr(S, "split", wild)
    cfg = _fast_cfg(60)  # coarse ends at iteration 30, a density step (every 15)
    cfg["init"]["sigma"] = [1.0, 2.0]  # most of them split at 1 res
    cfg["density"]["split_sigma"] = 1.0
    assert cfg["loss"]["l1"] > 0 and cfg["loss"]["lowpass_coarse"] != cfg["loss"]["lowpass"]
    with caplog.at_level(logging.INFO, logger="slingbag"):
        rec = reconstruct(acq, cfg, region=REGION, progress=False, seed=0)
    assert "the density step at iteration 30 was undone" in caplog.text
    assert rec.cloud.n > 0 and np.percentile(rec.cloud.p0, 90) < 10
