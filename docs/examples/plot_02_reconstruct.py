"""
Reconstruct with SlingBAG
=========================

Fit a cloud of Gaussian balls to the signals, then look at the loss history, the cloud and
the voxel volume it gives.
"""

# %%
# The data: the hard-walled vessels of :doc:`plot_01_simulate`'s last section, simulated
# independently of slingbag's radiator (so the scores at the end are not flattered), on a
# 6 x 6 planar array: the exact simulator, a 12 MHz low-pass and 1 % noise, in one call
# of :func:`slingbag.benchmark.acquire.independent_acquisition`.
import matplotlib.pyplot as plt

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

# %%
# The configuration
# -----------------
# :func:`slingbag.load_config` reads a preset (``default``, ``fast``, ``paper``) as a
# nested dict; ``overrides`` changes any key.  ``fast`` starts from 4,000 balls; this tiny
# region needs fewer.  Without ``region`` the box is inferred from the array and the
# signals.
config = slingbag.load_config("fast", overrides={"init": {"balls": 1000}})
for stage in ("coarse", "fine"):
    print(stage, {k: config[stage][k] for k in ("iterations", "lr_p0")})

# %%
# Reconstruct
# -----------
# ``iterations`` is shared between the coarse stage (sizes and amplitudes only) and the
# fine stage (positions too, with duplication), in the preset's proportion.  Real data:
# leave it out, and use the ``default`` preset.
rec = slingbag.reconstruct(
    acq, config, region=region, iterations=120, seed=0, progress=False
)
mm = rec.volume.spacing[0] * 1e3
print(rec.cloud.n, "balls;", rec.volume.shape, "voxels of", mm, "mm")

# %%
# The loss is the misfit relative to the signals' energy; the steps in the ball count are
# the density control (prune, split, duplicate) every few iterations.
h = rec.history
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3), layout="constrained")
ax0.semilogy(h["loss"])
ax0.set(xlabel="iteration", ylabel="relative misfit", title="loss")
ax0.axvline(
    (h["stage"] == 0).sum(), color="gray", ls=":", label="coarse | fine"
)
ax0.legend()
ax1.plot(h["balls"])
ax1.set(xlabel="iteration", ylabel="balls", title="cloud size")
plt.show()

# %%
# The result
# ----------
# The cloud is splatted onto voxels (:func:`slingbag.voxelize`); here the top maximum
# amplitude projections (MAPs) of the truth and of the reconstruction, and the balls'
# sizes.
fig, axes = plt.subplots(1, 3, figsize=(10, 3.3), layout="constrained")
panels = {"truth": phantom.truth, "slingbag": rec.volume}
for ax, (name, vol) in zip(axes[:2], panels.items(), strict=True):
    lo, hi = vol.extent()[:2].T * 1e3
    ax.imshow(
        vol.data.max(axis=2).T,
        origin="lower",
        extent=(lo[0], hi[0], lo[1], hi[1]),
    )
    ax.set(title=name, xlabel="x (mm)", ylabel="y (mm)")
axes[2].hist(rec.cloud.sigma * 1e6, bins=30)
axes[2].set(xlabel="sigma (µm)", ylabel="balls", title="ball sizes")
plt.show()

# %%
# :func:`slingbag.metrics` compares volumes on the truth's grid: SSIM of the three MAPs
# and of a slice, SNR and CNR.  One tiny scene and 120 iterations: the numbers show how
# to score, not how well slingbag does (that is :doc:`/benchmark`'s job).
m = slingbag.metrics(rec.volume, phantom.truth)
keys = ("ssim_map_z", "ssim_map_y", "ssim_map_x", "cnr")
print({k: round(m[k], 3) for k in keys})

# %%
# The objective
# -------------
# :func:`slingbag.loss_and_grad` evaluates what ``reconstruct`` minimised, and its
# gradient with respect to every ball, for a cloud of your own.
loss, grads = slingbag.loss_and_grad(
    rec.cloud, acq, config=rec.config, l1_weight=rec.attrs["l1_weight"]
)
shapes = {k: v.shape for k, v in grads.items() if hasattr(v, "shape")}
print(f"loss {loss:.4f};", shapes)
