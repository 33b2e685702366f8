"""Sensor responses and the calibration of sound speed, t0, gains and response."""

import sys

import numpy as np
import pytest

from slingbag.core.arrays import load_array
from slingbag.core.cloud import GaussianCloud
from slingbag.core.config import load_config
from slingbag.errors import InputError
from slingbag.fit.reconstruct import reconstruct
from slingbag.fit.state import Box
from slingbag.model.radiator import simulate
from slingbag.model.response import (
    SensorResponse,
    apply_response,
    correlate_response,
    response_parameter_gradients,
)

FS = 40e6


@pytest.mark.parametrize(
    "resp",
    [
        SensorResponse(FS, centre=2e6, bandwidth=0.55),
        SensorResponse(FS, kernel=np.array([0.0, 1.0, 0.5, -0.3, 0.1])),
    ],
)
def test_correlation_is_the_adjoint_of_convolution(rng, resp):
    x = rng.standard_normal((3, 300))
    y = rng.standard_normal((3, 300))
    lhs = np.sum(apply_response(x, resp).astype(np.float64) * y)
    rhs = np.sum(x * correlate_response(y, resp).astype(np.float64))
    assert lhs == pytest.approx(rhs, rel=1e-5)


def test_bandpass_has_unit_gain_at_its_centre():
    resp = SensorResponse(FS, centre=2e6, bandwidth=0.55)
    taps = resp.taps()
    t = (np.arange(len(taps)) - resp.offset) / FS
    gain = abs(np.sum(taps * np.exp(-2j * np.pi * 2e6 * t)))
    assert gain == pytest.approx(1.0, rel=1e-3)
    # -6 dB (half amplitude) at the band edges of a 55 % fractional bandwidth
    edge = abs(np.sum(taps * np.exp(-2j * np.pi * 2e6 * (1 + 0.275) * t)))
    assert edge == pytest.approx(0.5, abs=0.03)


def test_band_centre_ignores_a_noise_floor(rng):
    resp = SensorResponse(FS, centre=2e6, bandwidth=0.55)
    assert resp.band_centre() == pytest.approx(2e6, rel=0.01)
    # A measured response: a 400-sample record with a 2 % white-noise floor.  Its plain
    # spectral centroid moves by some 5 %, the band's centre stays.
    taps = resp.taps()
    record = np.zeros(400)
    record[: len(taps)] = taps
    record += 0.02 * np.abs(taps).max() * rng.standard_normal(400)
    measured = SensorResponse(FS, kernel=record, kernel_offset=resp.offset)
    assert measured.band_centre() == pytest.approx(2e6, rel=0.01)
    # Twice the frequency, half the largest visible ball.
    high = SensorResponse(FS, centre=4e6, bandwidth=0.55)
    ratio = resp.largest_visible_sigma(1500.0) / high.largest_visible_sigma(1500.0)
    assert ratio == pytest.approx(2.0, rel=0.02)


def test_response_parameter_gradients_match_finite_differences(rng):
    raw = rng.standard_normal((2, 400))
    g = rng.standard_normal((2, 400))

    def obj(c, b):
        return float(np.sum(g * apply_response(raw, SensorResponse(FS, centre=c, bandwidth=b))))

    grads = response_parameter_gradients(raw, g, SensorResponse(FS, centre=2e6, bandwidth=0.55))
    fd_c = (obj(2e6 + 50.0, 0.55) - obj(2e6 - 50.0, 0.55)) / 100.0
    fd_b = (obj(2e6, 0.55 + 1e-5) - obj(2e6, 0.55 - 1e-5)) / 2e-5
    assert grads["centre"] == pytest.approx(fd_c, rel=2e-3)
    assert grads["bandwidth"] == pytest.approx(fd_b, rel=2e-3)


def test_bad_response_settings_are_rejected(tmp_path):
    with pytest.raises(InputError, match="response.centre"):
        SensorResponse(FS, centre=30e6, bandwidth=0.5)
    bad = tmp_path / "c.toml"
    bad.write_text('[calibrate]\nparams = ["sound_speed", "colour"]\n')
    with pytest.raises(InputError, match="calibrate.params"):
        load_config(bad)


def _scene():
    t = np.linspace(0, 1, 40)
    xyz = np.concatenate(
        [
            np.stack([-2e-3 + 4e-3 * t, 0 * t, 7e-3 + 0 * t], 1),
            np.stack([0 * t, -2e-3 + 4e-3 * t, 8e-3 + 0 * t], 1),
        ]
    )
    cloud = GaussianCloud(xyz, np.ones(len(xyz)), np.full(len(xyz), 0.15e-3))
    g = (np.arange(8) - 3.5) * 2e-3
    X, Y = np.meshgrid(g, g)
    return cloud, np.stack([X.ravel(), Y.ravel(), 0 * X.ravel()], 1)


def _calibrated(which):
    cloud, sensors = _scene()
    acq = simulate(
        cloud,
        sensors,
        model="shells",
        n_samples=768,
        sound_speed=1540.0,
        t0=0.3e-6,
        noise=0.005,
        seed=2,
    )
    start = acq.replace(sound_speed=1500.0) if which == "sound_speed" else acq.replace(t0=0.0)
    cfg = load_config("fast")
    cfg["init"]["balls"] = 800
    cfg["coarse"]["iterations"] = 30
    cfg["fine"]["iterations"] = 150
    cfg["calibrate"]["params"] = [which]
    # The estimator on one band: on this small scene the default wider coarse-stage
    # low-pass moves the estimates (measured: 1543.4 m/s, 267 ns against 1541.1 m/s and
    # 298.7 ns without it); the independent benchmark's calibration case, with every
    # default, lands at 1540.6 m/s.
    cfg["loss"]["lowpass_coarse"] = 0.0
    region = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 9e-3]
    return reconstruct(start, cfg, region=region, progress=False, seed=0)


@pytest.mark.slow
def test_sound_speed_is_learned_from_a_wrong_start():
    rec = _calibrated("sound_speed")
    assert abs(rec.attrs["calibrated_sound_speed"] - 1540.0) < 2.0
    assert len(rec.history["sound_speed"]) == len(rec.history["loss"])
    # Two passes by default, the second from a fresh cloud at the first's value.
    h = rec.history
    assert set(h["pass"]) == {0, 1}
    c = [h["sound_speed"][h["pass"] == k] for k in range(2)]
    assert c[1][0] == c[0][-1]


@pytest.mark.slow
def test_t0_is_learned_from_a_wrong_start():
    # t0 and the depth of a thin target in front of a planar array nearly trade off; the
    # cloud carried with each step leaves the curvature that tells them apart.
    rec = _calibrated("t0")
    assert abs(rec.attrs["calibrated_t0"] - 0.3e-6) < 10e-9


def _carry_setup():
    from slingbag.fit.params import Calibration
    from slingbag.fit.state import CloudState

    cloud, sensors = _scene()
    acq = simulate(cloud, sensors, n_samples=768, sound_speed=1540.0, t0=0.3e-6)
    # A cloud a little off the truth, so the misfit and its gradients are not zero.
    rng = np.random.default_rng(3)
    moved = GaussianCloud(
        cloud.xyz + rng.normal(0, 0.05e-3, cloud.xyz.shape),
        cloud.p0 * rng.uniform(0.8, 1.2, cloud.n),
        cloud.sigma * rng.uniform(0.9, 1.1, cloud.n),
    )
    start = acq.replace(sound_speed=1530.0, t0=0.25e-6)
    cfg = load_config("default", overrides={"calibrate": {"params": ["sound_speed", "t0"]}})
    cal = Calibration(start, cfg)
    state = CloudState(
        moved.xyz.astype(np.float32), moved.p0.astype(np.float32), moved.sigma.astype(np.float32)
    )
    return start, moved, cal, state


def test_carried_cloud_keeps_its_arrival_times():
    start, moved, cal, state = _carry_setup()
    carry = cal.carry(state, start.positions)
    jac = carry["jac"]
    d = moved.xyz[:, None, :] - start.positions[None]
    r0 = np.linalg.norm(d, axis=2)
    for dc, dt0 in [(5.0, 0.0), (0.0, 40e-9), (-4.0, 25e-9)]:
        r1 = np.linalg.norm(d + (jac[:, 0] * dc + jac[:, 1] * dt0)[:, None, :], axis=2)
        before = r0 / start.sound_speed - start.t0
        carried = r1 / (start.sound_speed + dc) - (start.t0 + dt0)
        plain = r0 / (start.sound_speed + dc) - (start.t0 + dt0)
        # Most of the plain shift of the arrivals is taken up by the carried positions.
        assert np.sqrt(np.mean((carried - before) ** 2)) < 0.35 * np.sqrt(
            np.mean((plain - before) ** 2)
        )


def test_region_moves_with_the_carried_cloud():
    start, moved, cal, state = _carry_setup()
    lo, hi = np.array([-3e-3, -3e-3, 6e-3]), np.array([3e-3, 3e-3, 9e-3])
    box = Box(lo, hi)
    carry = cal.carry(state, start.positions)
    before = state.xyz.copy()
    cal.timing_params._carry_cloud(state, carry, 0.0, 100e-9, start.sound_speed, box)
    shift = (state.xyz - before)[:, 2].mean()
    # t0 later -> waves arrive at earlier samples -> the cloud recedes from the array.
    assert shift > 0.05e-3
    assert box.lo[2] - lo[2] == pytest.approx(shift, rel=0.3)
    assert box.hi[2] - hi[2] == pytest.approx(shift, rel=0.3)


def test_calibration_passes_resume_in_the_second_pass(tmp_path):
    """A run stopped in its second pass resumes there (not from pass one) and ends as an
    uninterrupted run does."""
    cloud, sensors = _scene()
    acq = simulate(cloud, sensors, n_samples=768, sound_speed=1540.0, t0=0.3e-6, seed=2)
    start = acq.replace(t0=0.0)
    cfg = load_config("fast")
    cfg["init"]["balls"] = 300
    cfg["coarse"]["iterations"] = 6
    cfg["fine"]["iterations"] = 14
    # Both: the sound speed also sets the loss's low-pass, which must be the pass's own.
    cfg["calibrate"]["params"] = ["sound_speed", "t0"]
    region = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 9e-3]
    kw = dict(region=region, progress=False, seed=0)
    ref = reconstruct(start.replace(sound_speed=1520.0), cfg, **kw)
    start = start.replace(sound_speed=1520.0)

    ckpt = tmp_path / "run.ckpt.npz"
    with pytest.raises(Stop):
        reconstruct(
            start, cfg, checkpoint=ckpt, checkpoint_every=5, callback=_stop_at_call(20 + 12), **kw
        )
    resumed = reconstruct(start, cfg, checkpoint=ckpt, checkpoint_every=5, resume=True, **kw)
    assert resumed.attrs["calibrated_t0"] == ref.attrs["calibrated_t0"]
    assert resumed.attrs["calibrated_sound_speed"] == ref.attrs["calibrated_sound_speed"]
    assert np.array_equal(resumed.cloud.xyz, ref.cloud.xyz)
    # The history holds both passes, the first from the checkpoint.
    assert np.array_equal(resumed.history["pass"], ref.history["pass"])
    assert np.array_equal(resumed.history["loss"], ref.history["loss"])


def test_a_checkpoint_of_more_passes_resumes_into_the_last_pass(tmp_path):
    """A run stopped in the second of three passes, resumed with two, continues in its
    last pass (the fingerprint leaves the number of passes out)."""
    cloud, sensors = _scene()
    acq = simulate(cloud, sensors, n_samples=768, sound_speed=1540.0, t0=0.3e-6, seed=2)
    start = acq.replace(sound_speed=1520.0)
    cfg = load_config("fast")
    cfg["init"]["balls"] = 300
    cfg["coarse"]["iterations"], cfg["fine"]["iterations"] = 4, 8
    cfg["calibrate"]["params"] = ["sound_speed"]
    cfg["calibrate"]["passes"] = 3
    kw = dict(region=[-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 9e-3], progress=False, seed=0)
    ckpt = tmp_path / "run.ckpt.npz"

    with pytest.raises(Stop):
        reconstruct(
            start, cfg, checkpoint=ckpt, checkpoint_every=5, callback=_stop_at_call(12 + 11), **kw
        )
    fewer = {**cfg, "calibrate": {**cfg["calibrate"], "passes": 2}}
    rec = reconstruct(start, fewer, checkpoint=ckpt, checkpoint_every=5, resume=True, **kw)
    assert rec.attrs["calibration_passes"] == 2
    assert list(np.unique(rec.history["pass"])) == [0, 1]


def test_region_does_not_grow_when_steps_cancel():
    start, moved, cal, state = _carry_setup()
    lo, hi = np.array([-3e-3, -3e-3, 6e-3]), np.array([3e-3, 3e-3, 9e-3])
    box = Box(lo, hi)
    for k in range(200):
        carry = cal.carry(state, start.positions)
        sign = 1.0 if k % 2 == 0 else -1.0
        cal.timing_params._carry_cloud(
            state, carry, sign * 1.5, sign * 10e-9, start.sound_speed, box
        )
    new_lo, new_hi = box.lo, box.hi
    # (second-order drift only: the step back is carried at the new sound speed)
    assert np.allclose(new_lo, lo, atol=1e-5) and np.allclose(new_hi, hi, atol=1e-5)


def test_series_refuses_timing_calibration(tmp_path):
    from slingbag.series import reconstruct_series

    cloud, sensors = _scene()
    acq = simulate(cloud, sensors, n_samples=768)
    cfg = load_config("fast", overrides={"calibrate": {"params": ["t0"]}})
    with pytest.raises(InputError, match="calibrate.params"):
        reconstruct_series([acq, acq], config=cfg)


class Stop(Exception):
    pass


def _stop_at_call(n_calls):
    """A reconstruct callback that raises :class:`Stop` at its ``n_calls``-th call (the
    iterations of every pass counted together)."""
    calls = []

    def callback(it, loss, state):
        calls.append(it)
        if len(calls) == n_calls:
            raise Stop

    return callback


def _lines_share(rec, truth, tol=0.3e-3):
    """Share of the cloud's mass (p0 sigma^3) within ``tol`` of the true balls."""
    d = np.linalg.norm(rec.cloud.xyz[:, None] - truth.xyz[None], axis=2).min(1)
    w = rec.cloud.p0 * rec.cloud.sigma**3
    return float(w[d < tol].sum() / w.sum())


@pytest.mark.slow
def test_band_limited_data_are_fitted_with_the_response_in_the_model(monkeypatch):
    # Through a 2 MHz band-pass, balls wider than ~0.24 mm are all but invisible: their
    # size and p0 would grow unchecked and a split would expose them.  With the response
    # in the model the balls stay below that size and the cloud fits the data.
    cloud, sensors = _scene()
    acq = simulate(
        cloud, sensors, model="shells", n_samples=768, noise=0.005, response=(2e6, 0.55), seed=3
    )
    region = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 9e-3]

    def run(kind, l1=0.0, sigma=None):
        cfg = load_config("fast")
        cfg["init"]["balls"] = 800
        if sigma is not None:
            cfg["init"]["sigma"] = sigma
        cfg["response"].update(kind=kind, centre=2e6, bandwidth=0.55)
        # The data term alone in the loss history (both L1 settings: "none" uses `l1`),
        # in one band: with the default wider coarse-stage low-pass (narrowed to what
        # this band-passed record shows) the run without the response puts 0.89 of its
        # p0 on the lines against 0.71 with it (measured), so this comparison of the
        # response model is made without that stage.
        cfg["loss"]["l1"] = cfg["loss"]["l1_band_limited"] = l1
        cfg["loss"]["lowpass_coarse"] = 0.0
        return reconstruct(acq, cfg, region=region, progress=False, seed=0)

    recs = {kind: run(kind) for kind in ("none", "bandpass")}
    # The default L1 prior for band-limited data puts more of the cloud on the lines.
    default_l1 = load_config()["loss"]["l1_band_limited"]
    assert default_l1 > 0
    with_l1 = run("bandpass", default_l1)
    assert _lines_share(with_l1, cloud) > _lines_share(recs["bandpass"], cloud) + 0.05
    ceiling = SensorResponse(FS, centre=2e6, bandwidth=0.55).largest_visible_sigma(1500.0)
    assert recs["bandpass"].cloud.sigma.max() <= ceiling * (1 + 1e-6)
    assert recs["bandpass"].history["loss"][-1] < 0.01
    assert recs["bandpass"].history["loss"][-1] < 0.1 * recs["none"].history["loss"][-1]
    assert _lines_share(recs["bandpass"], cloud) > _lines_share(recs["none"], cloud) + 0.05
    # Without the size ceiling, balls that start wide (1-2 res, about the ceiling here)
    # grow past it and the cloud fits far worse.  From the default's smaller starts
    # (0.5-0.75 res) fewer balls reach it: the uncapped run then fits 2.9x worse
    # (measured), not asserted.
    wide = [1.0, 2.0]
    capped = run("bandpass", sigma=wide)
    monkeypatch.setattr(sys.modules["slingbag.fit.plan"], "largest_sigma", lambda *a, **k: None)
    uncapped = run("bandpass", sigma=wide)
    assert uncapped.cloud.sigma.max() > ceiling
    assert capped.history["loss"][-1] < 0.2 * uncapped.history["loss"][-1]


@pytest.mark.slow
def test_res_follows_a_high_frequency_response(monkeypatch):
    # A 4 MHz band hides balls above ~0.12 mm, below the 0.2 mm the default res keeps:
    # res is made finer, so the cloud can hold what the band shows.
    cloud, sensors = _scene()
    acq = simulate(
        cloud, sensors, model="shells", n_samples=768, noise=0.01, response=(4e6, 0.6), seed=3
    )
    region = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 9e-3]

    def run():
        cfg = load_config("fast")
        cfg["init"]["balls"] = 800
        cfg["response"].update(kind="bandpass", centre=4e6, bandwidth=0.6)
        return reconstruct(acq, cfg, region=region, progress=False, seed=0, spacing=0.1e-3)

    rec = run()
    visible = SensorResponse(FS, centre=4e6, bandwidth=0.6).largest_visible_sigma(1500.0)
    assert rec.config["region"]["res"] == pytest.approx(visible / (2 * 0.5), rel=1e-6)
    assert rec.cloud.sigma.max() <= visible * (1 + 1e-6)
    R = sys.modules["slingbag.fit.reconstruct"]
    monkeypatch.setattr(R, "adapt_to_response", lambda cfg, acq: cfg)
    coarse = run()
    assert coarse.config["region"]["res"] == 0.2e-3
    # Measured 0.736 against 0.639: the default's small starting balls (0.5-0.75 res,
    # 0.10-0.15 mm at the coarse res) are nearly visible through this band already, so
    # the finer res gains less than the 0.1 asserted with the earlier 1-2 res starts.
    assert _lines_share(rec, cloud) > _lines_share(coarse, cloud) + 0.05


def _planar(n, pitch):
    return load_array(f"planar:{n}x{n}:{pitch}").positions


def test_timing_tradeoff_matches_the_full_least_squares():
    from slingbag.fit.timing import timing_tradeoff

    c, fs = 1540.0, 40e6
    sens = _planar(6, 4e-3)
    lo, hi = np.array([-2e-3, -1e-3, 8e-3]), np.array([3e-3, 2e-3, 12e-3])
    got = timing_tradeoff(sens, lo, hi, c, fs)
    # The same first-order problem written out whole: a move per point and one dt0 that
    # best keep every arrival R/c - t0 after dc = 1 m/s.
    axes = [np.linspace(a, b, 3) for a, b in zip(lo, hi, strict=True)]
    pts = np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T
    n, m = len(pts), len(sens)
    a = np.zeros((n * m, 3 * n + 1))
    b = np.zeros(n * m)
    for i, p in enumerate(pts):
        d = p - sens
        r = np.linalg.norm(d, axis=1)
        a[i * m : (i + 1) * m, 3 * i : 3 * i + 3] = d / r[:, None] / c
        a[i * m : (i + 1) * m, -1] = -1.0
        b[i * m : (i + 1) * m] = r / c**2  # the arrival change to undo
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    left = a @ x - b
    # Each alone: the moves only.
    moves = np.delete(a, -1, axis=1)
    y, *_ = np.linalg.lstsq(moves, b, rcond=None)
    assert got["sound_speed_residual"] == pytest.approx(np.sqrt(np.mean((moves @ y - b) ** 2)))
    y, *_ = np.linalg.lstsq(moves, np.ones_like(b), rcond=None)
    assert got["t0_residual"] == pytest.approx(np.sqrt(np.mean((moves @ y - 1) ** 2)))
    assert got["t0_per_ms"] == pytest.approx(x[-1], rel=1e-6)
    assert got["residual"] == pytest.approx(np.sqrt(np.mean(left**2)), rel=1e-6)
    assert got["residual_samples"] == pytest.approx(got["residual"] * fs)
    # A faster sound speed brings arrivals forward: t0 goes back to keep them.
    assert got["t0_per_ms"] < 0


def test_timing_tradeoff_depends_on_the_aperture(caplog):
    import logging

    from slingbag.fit.plan import say_tradeoff
    from slingbag.fit.timing import timing_tradeoff

    lo, hi = [-5e-3, -5e-3, 9e-3], [5e-3, 5e-3, 15e-3]
    narrow = timing_tradeoff(_planar(12, 3e-3), lo, hi, 1540.0, 40e6)
    wide = timing_tradeoff(_planar(24, 3e-3), lo, hi, 1540.0, 40e6)
    # A sphere around a central source: every range alike, so c and t0 all but coincide.
    rng = np.random.default_rng(0)
    u = rng.normal(size=(500, 3))
    sphere = 0.06 * u / np.linalg.norm(u, axis=1)[:, None]
    central = timing_tradeoff(sphere, [-3e-3] * 3, [3e-3] * 3, 1540.0, 40e6)
    assert central["residual"] < narrow["residual"] < wide["residual"]
    # A wider aperture sees each of them better too.
    assert narrow["t0_residual"] < wide["t0_residual"]
    assert narrow["sound_speed_residual"] < wide["sound_speed_residual"]
    both = ["sound_speed", "t0"]
    with caplog.at_level(logging.INFO, logger="slingbag"):
        say_tradeoff(narrow, both, 40e6)
        say_tradeoff({**wide, "residual": 1e-6}, both, 40e6)
        say_tradeoff(narrow, ["t0"], 40e6)
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "INFO", "INFO"]
    assert "calibrate only the other" in caplog.records[0].getMessage()
    assert "sound speed known" in caplog.records[2].getMessage()


def test_timing_steps_are_scaled_to_the_aperture():
    from slingbag.fit.timing import timing_tradeoff

    start, moved, cal, state = _carry_setup()
    lo, hi = [-5e-3, -5e-3, 9e-3], [5e-3, 5e-3, 15e-3]
    # The preset's rates stand on an array no sharper than the reference ...
    assert cal.scale_rates(timing_tradeoff(_planar(8, 3e-3), lo, hi, 1540.0, FS)) == {
        "sound_speed": 1.0,
        "t0": 1.0,
    }
    # ... and shrink on a wider one, in proportion to what a step does there.
    wide = timing_tradeoff(_planar(24, 3e-3), lo, hi, 1540.0, FS)
    scale = cal.scale_rates(wide)
    assert 0 < scale["sound_speed"] < 1 and 0 < scale["t0"] < 1
    assert scale["sound_speed"] * wide["sound_speed_residual"] * FS == pytest.approx(0.1)
    # Adam's first step is its rate: the scaled one.
    c0, t0 = cal.c, cal.time0
    cal.step({"sound_speed": 1.0, "t0": 1.0}, 1.0)
    rates = load_config("default")["calibrate"]
    assert c0 - cal.c == pytest.approx(rates["lr_sound_speed"] * scale["sound_speed"], rel=1e-3)
    assert (t0 - cal.time0) * FS == pytest.approx(rates["lr_t0"] * scale["t0"], rel=1e-3)
