"""
Compare with UBP and model-based
================================

Reconstruct one acquisition three ways: universal back-projection (UBP), a model-based
solve on a voxel grid (non-negative least squares with total variation) and SlingBAG; then
score them against the truth and show their maximum amplitude projections side by side.

The signals here come from slingbag's own radiator, which flatters the two model-based
methods (their model is the simulator).  :doc:`/benchmark` and ``slingbag demo`` compare
them on data from an independent simulator.
"""

# %%
import time

import matplotlib.pyplot as plt

import slingbag

slingbag.init("cpu")
region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = slingbag.vessels_phantom(region=region, spacing=0.2e-3, seed=1)
acq = slingbag.simulate(phantom.cloud, "planar:6x6:2e-3", n_samples=512, noise=0.01, seed=0)
truth = phantom.volume

# %%
# Three reconstructions
# ---------------------
# The baselines take a grid (``origin``, ``spacing``, ``shape``); here the truth's, 0.2 mm.
# SlingBAG makes its own grid from the region (by default at the smallest ball's size).
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
rec = slingbag.reconstruct(acq, config, region=region, iterations=120, seed=0, progress=False)
volumes["slingbag"] = rec.volume
seconds["slingbag"] = time.perf_counter() - t

# %%
# Scores
# ------
# :func:`slingbag.metrics` resamples each volume onto the truth's grid, clips negatives
# and scales each to its own maximum before comparing.  (The first call of a function in
# a new Python process also compiles its Taichi kernels, a few seconds; here the gallery's
# earlier examples have done that.)
print(f"{'':12s} {'SSIM z':>7s} {'SSIM y':>7s} {'SSIM x':>7s} {'CNR':>6s} {'time':>6s}")
for name, vol in volumes.items():
    m = slingbag.metrics(vol, truth)
    print(
        f"{name:12s} {m['ssim_map_z']:7.3f} {m['ssim_map_y']:7.3f} {m['ssim_map_x']:7.3f}"
        f" {m['cnr']:6.1f} {seconds[name]:5.1f}s"
    )

# %%
# Maximum amplitude projections
# -----------------------------
# Top view (along z, the depth) and front view (along y), each scaled to its own peak.
# UBP's limited view (one plane of 36 sensors) blurs the vessels and leaves streaks along
# the arcs of the sensors' wavefronts.
fig, axes = plt.subplots(2, 4, figsize=(10, 4.2), layout="constrained", height_ratios=(2.5, 1))
for col, (name, vol) in enumerate({"truth": truth, **volumes}.items()):
    lo, hi = vol.extent().T * 1e3
    data = vol.data.clip(0, None)
    axes[0, col].imshow(
        data.max(axis=2).T, origin="lower", cmap="inferno", extent=(lo[0], hi[0], lo[1], hi[1])
    )
    axes[1, col].imshow(
        data.max(axis=1).T, cmap="inferno", aspect="equal", extent=(lo[0], hi[0], hi[2], lo[2])
    )
    axes[0, col].set_title(name)
    axes[1, col].set_xlabel("x (mm)")
axes[0, 0].set_ylabel("y (mm)")
axes[1, 0].set_ylabel("z (mm)")
plt.show()

# %%
# The same figure as a PNG, from the command line: ``slingbag figures recon.h5 --truth
# data.h5 -o figs/``, or :func:`slingbag.report.figures.comparison_figure`.
