"""Sensor responses and the calibration of sound speed, t0, gains and response."""

import numpy as np
import pytest

from slingbag.cloud import GaussianCloud
from slingbag.config import load_config
from slingbag.errors import InputError
from slingbag.forward import simulate
from slingbag.reconstruct import reconstruct
from slingbag.response import (
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
    region = [-3e-3, 3e-3, -3e-3, 3e-3, 6e-3, 9e-3]
    return reconstruct(start, cfg, region=region, progress=False, seed=0)


def test_sound_speed_is_learned_from_a_wrong_start():
    rec = _calibrated("sound_speed")
    assert abs(rec.attrs["calibrated_sound_speed"] - 1540.0) < 5.0
    assert len(rec.history["sound_speed"]) == len(rec.history["loss"])


def test_t0_moves_towards_the_truth():
    # t0 and the depth of a thin target in front of a small planar array nearly trade off,
    # so t0 converges slowly; it must still move a good way from 0 towards 0.3 us.
    rec = _calibrated("t0")
    assert 0.1e-6 < rec.attrs["calibrated_t0"] < 0.45e-6
