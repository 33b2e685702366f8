"""
Calibrate the sound speed
=========================

A reconstruction assumes the sound speed; tissue's differs from water's by a few percent,
which blurs and shifts every structure.  SlingBAG can learn it with the cloud: the misfit's
gradient with respect to the sound speed is one of its kernels' outputs.
"""

# %%
# Data recorded at 1,540 m/s, read as if at 1,500 m/s (the water value a file may say):
# the hard-walled vessels of :doc:`plot_01_simulate`'s last section, simulated
# independently of slingbag's radiator
# (:func:`slingbag.benchmark.acquire.independent_acquisition`: the exact simulator, a
# 12 MHz low-pass and 1 % noise).
import matplotlib.pyplot as plt

import slingbag
from slingbag.benchmark import phantoms
from slingbag.benchmark.acquire import independent_acquisition

slingbag.init("cpu")
region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = phantoms.vessel_tree(seed=1, region=region, truth_spacing=0.2e-3)
array = slingbag.load_array("planar:6x6:2e-3")
recorded = independent_acquisition(
    phantom,
    array,
    fs=40e6,
    n_samples=512,
    sound_speed=1540.0,
    lowpass=12e6,
    noise=0.01,
    seed=0,
)
wrong = recorded.replace(sound_speed=1500.0)  # what the file says

# %%
# The configuration
# -----------------
# ``calibrate.params`` lists what to learn in the fine stage: ``sound_speed``, ``t0``
# (the time of the first sample), per-sensor ``gain`` and the sensor ``response``.
# With the sound speed or t0 the reconstruction runs ``calibrate.passes`` times, each
# from a fresh cloud at the value the pass before it learned (a cloud built at a wrong
# speed keeps a memory of it).  Command line: ``slingbag reconstruct data.h5 -o recon.h5
# --calibrate sound_speed``.
# The run lengths are the gallery's (20 + 60 iterations a pass); real data want the
# preset's.
short = {
    "init": {"balls": 1000},
    "coarse": {"iterations": 20},
    "fine": {"iterations": 60},
}
config = slingbag.load_config(
    "fast",
    overrides={**short, "calibrate": {"params": ["sound_speed"], "passes": 2}},
)
rec = slingbag.reconstruct(wrong, config, region=region, seed=0, progress=False)
learned = rec.attrs["calibrated_sound_speed"]
print(f"learned sound speed: {learned:.1f} m/s (true 1540)")

# %%
# The history has the sound speed of every iteration, and the pass it belongs to.
h = rec.history
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(h["sound_speed"], label="learned")
ax.axhline(1540.0, color="k", ls=":", label="true")
for k in set(h["pass"]) - {0}:
    ax.axvline((h["pass"] < k).sum(), color="gray", lw=0.8)
ax.set(xlabel="iteration (both passes)", ylabel="sound speed (m/s)")
ax.legend()
plt.show()

# %%
# The same reconstruction without calibration, at the wrong speed (one pass of the same
# length).  On a scene this small and shallow, 40 m/s too slow mostly moves the vessels up
# by about 0.15 mm, less than a voxel of the truth, so the two top views score about the
# same SSIM; the contrast (CNR) is where they differ.  The larger scene of the benchmark's
# calibration case is in :doc:`/results`.
plain = slingbag.load_config("fast", overrides=short)
rec_wrong = slingbag.reconstruct(
    wrong, plain, region=region, seed=0, progress=False
)
for name, r in (("1500 m/s as given", rec_wrong), ("calibrated", rec)):
    m = slingbag.metrics(r.volume, phantom.truth)
    ssim, cnr = m["ssim_map_z"], m["cnr"]
    print(f"{name:18s} SSIM of the top MAP {ssim:.3f}, CNR {cnr:.1f}")
