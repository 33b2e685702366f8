"""Cleaning measured signals before a fit: DC offsets and channels that recorded nothing.

Real channels carry offsets from their amplifiers, and arrays have dead elements.  A dead
channel's flat record tells the fit that no source is anywhere, so it pulls every ball
down; an offset is a constant the radiator can never produce.  Both are found from the
signals alone, with robust statistics that hold while most samples of a record are noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("slingbag")

# A record of pure Gaussian noise of n samples peaks near sqrt(2 ln 2n) standard
# deviations; a channel whose peak stays within this margin of that heard nothing.
DEAD_MARGIN = 0.5
# Dead channels are looked for only when the typical channel peaks this many times higher
# than pure noise would, so that a weak acquisition is never emptied.
LIVE_FACTOR = 2.0


@dataclass
class Conditioning:
    """What :func:`condition` found: the channels kept and the offsets removed."""

    keep: np.ndarray  # indices of the channels kept
    offsets: np.ndarray  # per channel (all channels), subtracted
    dead: np.ndarray  # indices of the channels dropped


def channel_noise(signals: np.ndarray) -> np.ndarray:
    """Per-channel noise standard deviation: the median absolute deviation of each record
    about its median (blind to offsets, and to pulses that fill a minority of the
    samples), scaled to a Gaussian's standard deviation.  Unlike differences of
    neighbouring samples it does not shrink when the noise itself is band-limited."""
    x = np.asarray(signals, np.float64)
    centred = x - np.median(x, axis=1, keepdims=True)
    return 1.4826 * np.median(np.abs(centred), axis=1)


def condition(signals: np.ndarray) -> Conditioning:
    """Find each channel's offset (its median) and the dead channels.

    A channel is dead when it is flat, or when its peak (offset removed) is no higher
    than pure noise of its length would reach, while the median channel's peak is well
    above that (:data:`DEAD_MARGIN`, :data:`LIVE_FACTOR`).
    """
    x = np.asarray(signals, np.float64)
    offsets = np.median(x, axis=1)
    centred = x - offsets[:, None]
    peak = np.abs(centred).max(axis=1)
    noise = channel_noise(x)
    typical = np.median(peak)
    flat = peak <= 1e-6 * typical
    ratio = peak / np.maximum(noise, 1e-30 * max(typical, 1e-30))
    noise_peak = np.sqrt(2.0 * np.log(2.0 * x.shape[1])) + DEAD_MARGIN
    dead = flat.copy()
    if typical > 0 and np.median(ratio) > LIVE_FACTOR * noise_peak:
        dead |= ratio < noise_peak
    if dead.all():
        dead[:] = False
    return Conditioning(np.flatnonzero(~dead), offsets, np.flatnonzero(dead))


def clean_acquisition(acq, found: Conditioning | None = None):
    """The acquisition without offsets and without dead channels (logged); ``found``
    defaults to :func:`condition` of its signals."""
    found = condition(acq.signals) if found is None else found
    signals = acq.signals - found.offsets[:, None].astype(np.float32)
    if len(found.dead):
        log.warning(
            "%d channel(s) recorded nothing above their noise and are left out: %s",
            len(found.dead),
            ", ".join(map(str, found.dead[:20])) + (" ..." if len(found.dead) > 20 else ""),
        )
    return acq.replace(signals=signals).take_sensors(found.keep)
