"""
Simulate an acquisition
=======================

Grow a small random vessel tree, turn it into a cloud of Gaussian balls and simulate what
a planar array of sensors records from it: the input of every reconstruction.  Then the
same vessels simulated independently of slingbag, the data to score a reconstruction on.
"""

# %%
# A phantom: a voxel volume and the same object as balls
# -------------------------------------------------------
# :func:`slingbag.vessels_phantom` grows a seeded vessel tree in a region (metres,
# ``[x0, x1, y0, y1, z0, z1]``, here 4 x 4 x 1.6 mm at 5 mm depth) and returns it twice:
# as a voxel volume (the truth for the metrics) and as a :class:`slingbag.GaussianCloud`,
# one ball per bright voxel (the source of the simulation).
import matplotlib.pyplot as plt
import numpy as np

import slingbag
from slingbag.benchmark import conditions, exact, phantoms

slingbag.init("cpu")  # or slingbag.init() for the first GPU found

region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = slingbag.vessels_phantom(region=region, spacing=0.2e-3, seed=1)
print("volume", phantom.volume.shape, "voxels;", phantom.cloud.n, "balls")

# %%
# A sensor array
# --------------
# ``"planar:6x6:2e-3"`` is 6 x 6 sensors 2 mm apart in the plane z = 0, looking up (+z).
# Named presets (``planar-576``, ``hemisphere-1024``, ...) and text files of positions
# work too (:func:`slingbag.load_array`).
array = slingbag.load_array("planar:6x6:2e-3")
print(len(array), "sensors, first at", array.positions[0], "m")

# %%
# The signals
# -----------
# :func:`slingbag.simulate` propagates every ball's pressure wave to every sensor (the
# exact Gaussian radiator, :doc:`/method`) and adds white noise, here 1 % of the peak.
acq = slingbag.simulate(
    phantom.cloud,
    array,
    n_samples=512,
    fs=40e6,
    sound_speed=1500.0,
    noise=0.01,
    seed=0,
)
print(acq.signals.shape, "signals at", acq.fs / 1e6, "MHz")

# %%
# Look at what was recorded: the top view of the truth with the sensors on it, and the
# signals of one row of sensors against time (each vessel is an N-shaped wave, arriving
# later the further it is).
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
lo, hi = phantom.volume.extent()[:2].T * 1e3
ax0.imshow(
    phantom.volume.data.max(axis=2).T,
    origin="lower",
    extent=(lo[0], hi[0], lo[1], hi[1]),
    cmap="inferno",
)
ax0.plot(*array.positions[:, :2].T * 1e3, "c.", ms=6)
ax0.set(xlabel="x (mm)", ylabel="y (mm)", title="truth (top MAP) and sensors")
row = np.argsort(array.positions[:, 1])[:6]
t_us = acq.times * 1e6
ax1.imshow(
    acq.signals[row],
    aspect="auto",
    cmap="gray",
    extent=(t_us[0], t_us[-1], len(row) - 0.5, -0.5),
)
ax1.set(
    xlabel="time (µs)", ylabel="sensor", title="signals of one row", xlim=(2, 7)
)
plt.show()

# %%
# Independent data, for scoring
# -----------------------------
# :func:`slingbag.simulate` is the radiator that :func:`slingbag.reconstruct` fits, so a
# reconstruction of its data is scored on the model it assumes: good for trying things
# out, never evidence of quality.  To score, simulate with code that shares nothing with
# slingbag's radiator, as ``slingbag demo`` and :doc:`/benchmark` do.
# ``slingbag.benchmark.phantoms.vessel_tree`` draws the same tree (same region and seed)
# with hard walls, uniform cylinders, on a fine grid (0.1 mm here) and as its block average
# on the 0.2 mm truth grid that the scores use.  ``slingbag.benchmark.exact.simulate_voxels``
# radiates every fine voxel as a uniform sphere of its volume, averaged exactly over each
# sampling interval, and ``slingbag.benchmark.conditions`` adds what an acquisition system
# does: an anti-alias low-pass (12 MHz) and noise.  The steps are written out here;
# :func:`slingbag.benchmark.acquire.independent_acquisition` takes them in one call, as
# the examples that follow do.
hard = phantoms.vessel_tree(seed=1, region=region, truth_spacing=0.2e-3)
fine = hard.fine
signals = exact.simulate_voxels(
    fine.data,
    fine.origin,
    fine.spacing,
    array.positions,
    fs=40e6,
    n_samples=512,
    sound_speed=1500.0,
)
rng = np.random.default_rng(0)
signals = conditions.add_noise(
    conditions.lowpass(signals, 40e6, 12e6), 0.01, rng
)
independent = slingbag.Acquisition(
    signals,
    array.positions,
    fs=40e6,
    sound_speed=1500.0,
    normals=array.normals,
    areas=array.areas,
    truth_volume=hard.truth,
)
print(independent.signals.shape, "signals; truth", hard.truth.shape, "voxels")

# %%
# The same row of sensors from both simulators: the hard walls give sharper wavefronts
# than the smooth Gaussian balls do.
fig, (ax0, ax1) = plt.subplots(
    1, 2, figsize=(9, 3.2), layout="constrained", sharey=True
)
for ax, data, title in (
    (ax0, acq, "slingbag.simulate"),
    (ax1, independent, "independent"),
):
    ax.imshow(
        data.signals[row],
        aspect="auto",
        cmap="gray",
        extent=(t_us[0], t_us[-1], len(row) - 0.5, -0.5),
    )
    ax.set(xlabel="time (µs)", title=title, xlim=(2, 7))
ax0.set_ylabel("sensor")
plt.show()
