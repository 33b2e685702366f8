"""Offsets and dead channels found from the signals alone."""

import logging

import numpy as np

from slingbag.core.acquisition import Acquisition
from slingbag.core.conditioning import channel_noise, clean_acquisition, condition


def _records(rng, n=40, t=2048, noise=0.01):
    """Pulses of varied strength on every channel, white noise of ``noise`` of the peak."""
    x = np.zeros((n, t))
    for s in range(n):
        at = rng.integers(300, 1500)
        width = rng.uniform(5, 30)
        u = (np.arange(t) - at) / width
        x[s] = rng.uniform(0.2, 1.0) * -u * np.exp(-0.5 * u * u)
    x /= np.abs(x).max()
    return x + noise * rng.standard_normal(x.shape)


def test_noise_estimate_ignores_offsets_and_pulses(rng):
    x = _records(rng, noise=0.03) + 5.0
    assert np.allclose(channel_noise(x), 0.03, rtol=0.15)


def test_dead_and_flat_channels_and_offsets_are_found(rng):
    x = _records(rng)
    x[[3, 17]] = 0.01 * rng.standard_normal((2, x.shape[1]))  # only noise
    x[25] = 0.0  # disconnected
    offsets = rng.normal(0, 0.05, len(x))
    found = condition(x + offsets[:, None])
    assert list(found.dead) == [3, 17, 25]
    assert np.allclose(found.offsets, offsets, atol=0.01)


def test_noise_free_and_weak_acquisitions_keep_every_channel(rng):
    assert len(condition(_records(rng, noise=0.0)).dead) == 0
    # Pulses barely above the noise: no channel can be told dead, none is dropped.
    assert len(condition(_records(rng, noise=0.3)).dead) == 0


def test_clean_acquisition_drops_dead_channels_with_their_geometry(rng, caplog):
    x = _records(rng, n=10)
    x[4] = 0.0
    acq = Acquisition(x + 1.0, rng.normal(size=(10, 3)), 40e6, 1500.0, areas=np.arange(10.0))
    with caplog.at_level(logging.WARNING, logger="slingbag"):
        clean = clean_acquisition(acq)
    assert clean.n_sensors == 9 and 4.0 not in clean.areas
    assert np.allclose(clean.positions, np.delete(acq.positions, 4, axis=0))
    assert abs(float(np.median(clean.signals))) < 0.01
    assert "1 channel(s)" in caplog.text


def test_dead_channel_with_band_limited_noise_is_found(rng):
    """Noise shaped by an anti-alias filter: a dead channel must still be told dead."""
    from scipy import signal as sps

    x = _records(rng, noise=0.0)
    noise = sps.sosfiltfilt(sps.butter(4, 0.3, output="sos"), rng.standard_normal(x.shape))
    x = x + 0.01 * noise / noise.std()
    x[7] = 0.01 * noise[7] / noise.std()
    assert list(condition(x).dead) == [7]
