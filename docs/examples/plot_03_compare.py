"""
Compare with UBP and model-based
================================

Reconstruct one acquisition three ways: universal back-projection (UBP), a model-based
solve on a voxel grid (non-negative least squares with total variation) and SlingBAG; then
score them against the truth and show their maximum amplitude projections side by side.

The signals come from an independent simulator, the one ``slingbag demo`` and
:doc:`/benchmark` use: it shares no code with slingbag's radiator, so the comparison does
not flatter the two methods that fit a model of the signals (data from
:func:`slingbag.simulate` would: both model-based methods fit that very radiator).
"""

# %%
# Independent data
# ----------------
# The hard-walled vessels of :doc:`plot_01_simulate`'s last section, radiated by
# ``slingbag.benchmark.exact`` (each voxel of a fine 0.1 mm grid a uniform sphere),
# low-passed at 12 MHz with 1 % noise: the recipe of ``slingbag demo``
# (:func:`slingbag.benchmark.acquire.independent_acquisition`), on a smaller scene.
# The truth the scores use is the hard phantom's block average on a 0.2 mm grid; the
# acquisition carries it as ``truth_volume``.
import time

import matplotlib.pyplot as plt
import numpy as np

import slingbag
from slingbag.benchmark import phantoms
from slingbag.benchmark.acquire import independent_acquisition

slingbag.init("cpu")
region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = phantoms.vessel_tree(seed=1, region=region, truth_spacing=0.2e-3)
array = slingbag.load_array("planar:6x6:2e-3")
acq = independent_acquisition(
    phantom,
    array,
    fs=40e6,
    n_samples=512,
    sound_speed=1500.0,
    lowpass=12e6,
    noise=0.01,
    seed=0,
)
truth = acq.truth_volume
n_fine = np.count_nonzero(phantom.fine.data)
print(acq.signals.shape, "signals from", n_fine, "fine voxels")

# %%
# Three reconstructions
# ---------------------
# The baselines take a grid (``origin``, ``spacing``, ``shape``); here the truth's, 0.2 mm,
# a help that real data cannot give them (``slingbag demo`` runs the model-based solve on
# slingbag's box, at the spacing its time budget allows).  SlingBAG makes its own grid
# from the region (by default at the smallest ball's size).
volumes, seconds = {}, {}
t = time.perf_counter()
volumes["UBP"] = slingbag.ubp(acq, truth.origin, truth.spacing, truth.shape)
seconds["UBP"] = time.perf_counter() - t

t = time.perf_counter()
volumes["model-based"] = slingbag.model_based(
    acq, truth.origin, truth.spacing, truth.shape, iterations=40
)
seconds["model-based"] = time.perf_counter() - t

t = time.perf_counter()
config = slingbag.load_config("fast", overrides={"init": {"balls": 1000}})
rec = slingbag.reconstruct(
    acq, config, region=region, iterations=120, seed=0, progress=False
)
volumes["slingbag"] = rec.volume
seconds["slingbag"] = time.perf_counter() - t

# %%
# Scores
# ------
# :func:`slingbag.metrics` resamples each volume onto the truth's grid, clips negatives
# and scales each to its own maximum before comparing.  These are the scores of one tiny
# scene (36 sensors, one seed, 120 iterations of the ``fast`` preset, 40 of the
# model-based solve), printed to show how to compute them; the figures to judge the
# methods by, on many scenes and arrays, are in :doc:`/benchmark` and :doc:`/results`.
# (The first call of a function in a new Python process also compiles its Taichi kernels,
# a few seconds; here the gallery's earlier examples have done that.)
header = ("SSIM z", "SSIM y", "SSIM x", "CNR", "time")
print(" " * 12, " ".join(f"{h:>6s}" for h in header))
for name, vol in volumes.items():
    m = slingbag.metrics(vol, truth)
    ssims = " ".join(
        f"{m[key]:6.3f}" for key in ("ssim_map_z", "ssim_map_y", "ssim_map_x")
    )
    print(f"{name:12s} {ssims} {m['cnr']:6.1f} {seconds[name]:5.1f}s")

# %%
# Maximum amplitude projections
# -----------------------------
# Top view (along z, the depth) and front view (along y), each scaled to its own peak.
# With one plane of 36 sensors 2 mm apart, UBP's limited, sparse view leaves little of
# the vessels but the streaks of the sensors' wavefronts.
fig, axes = plt.subplots(
    2, 4, figsize=(10, 4.2), layout="constrained", height_ratios=(2.5, 1)
)
for col, (name, vol) in enumerate({"truth": truth, **volumes}.items()):
    lo, hi = vol.extent().T * 1e3
    data = vol.data.clip(0, None)
    axes[0, col].imshow(
        data.max(axis=2).T,
        origin="lower",
        cmap="inferno",
        extent=(lo[0], hi[0], lo[1], hi[1]),
    )
    axes[1, col].imshow(
        data.max(axis=1).T,
        cmap="inferno",
        aspect="equal",
        extent=(lo[0], hi[0], hi[2], lo[2]),
    )
    axes[0, col].set_title(name)
    axes[1, col].set_xlabel("x (mm)")
axes[0, 0].set_ylabel("y (mm)")
axes[1, 0].set_ylabel("z (mm)")
plt.show()

# %%
# The same comparison on a larger scene (12 x 12 sensors, 20 x 20 x 6 mm of vessels), with
# its files, figure and table written to a folder: ``slingbag demo`` on the command line.
# The figure of a result of your own: ``slingbag figures recon.h5 --truth data.h5 -o
# figs/``, or :func:`slingbag.report.figures.comparison_figure`.
