"""Independent data in one call: a hard-edged phantom radiated by the exact simulator, then
an acquisition system's band limit and noise.

This is the recipe of ``slingbag demo`` and of the gallery's examples that score a
reconstruction; it shares no code with the radiator that the reconstruction fits.
"""

from __future__ import annotations

import numpy as np

from ..core.acquisition import Acquisition
from ..core.volume import Volume
from . import conditions
from .exact import simulate_voxels
from .phantoms import HardPhantom


def independent_acquisition(
    phantom,
    array,
    *,
    fs: float,
    n_samples: int,
    sound_speed: float,
    lowpass: float,
    noise: float,
    seed=0,
    attrs: dict | None = None,
) -> Acquisition:
    """Simulate a hard-edged phantom's acquisition independently of slingbag's radiator.

    Every voxel of the phantom's fine grid radiates as a uniform sphere of its volume
    (:func:`slingbag.benchmark.exact.simulate_voxels`); the signals are then low-passed
    (:func:`slingbag.benchmark.conditions.lowpass`, an anti-alias filter) and get white
    noise (:func:`slingbag.benchmark.conditions.add_noise`), in that order.

    Parameters
    ----------
    phantom : HardPhantom or Volume
        A :class:`slingbag.benchmark.phantoms.HardPhantom` (its ``fine`` grid is radiated,
        its ``truth`` carried), or a volume of hard-edged objects (radiated and carried).
    array : SensorArray
        The sensors (positions, and the normals and areas the acquisition keeps).
    fs : float
        Sampling rate in Hz.
    n_samples : int
        Samples per sensor, the first at time 0.
    sound_speed : float
        Speed of sound of the simulation, and the one the acquisition states, in m/s (to
        state another, ``acq.replace(sound_speed=...)``).
    lowpass : float
        Cut-off of the zero-phase 4th-order Butterworth low-pass, in Hz.
    noise : float
        Standard deviation of the noise as a fraction of the peak absolute signal (0: none).
    seed : int or numpy.random.Generator
        Seed of the noise, or a generator to draw it from (frames of a series share one).
    attrs : dict, optional
        Metadata to record beside the recipe's (``phantom``, ``simulated_by``,
        ``lowpass_hz``, ``noise``, ``array``); its entries win.

    Returns
    -------
    Acquisition
        The signals (float32), the sensors, ``fs``, ``sound_speed`` and the truth volume.
    """
    if isinstance(phantom, Volume):
        phantom = HardPhantom("voxel volume", phantom, phantom)
    fine = phantom.fine
    signals = simulate_voxels(
        fine.data,
        fine.origin,
        fine.spacing,
        array.positions,
        fs=fs,
        n_samples=n_samples,
        sound_speed=sound_speed,
    )
    rng = np.random.default_rng(seed)
    signals = conditions.add_noise(conditions.lowpass(signals, fs, lowpass), noise, rng)
    return Acquisition(
        signals=signals,
        positions=array.positions,
        fs=fs,
        sound_speed=sound_speed,
        normals=array.normals,
        areas=array.areas,
        truth_volume=phantom.truth,
        attrs={
            "phantom": phantom.name,
            "simulated_by": "slingbag.benchmark.exact",
            "lowpass_hz": lowpass,
            "noise": noise,
            "array": array.name,
            **(attrs or {}),
        },
    )
