"""
Calibrate the sound speed
=========================

A reconstruction assumes the sound speed; tissue's differs from water's by a few percent,
which blurs and shifts every structure.  SlingBAG can learn it with the cloud: the misfit's
gradient with respect to the sound speed is one of its kernels' outputs.
"""

# %%
# Data recorded at 1,540 m/s, read as if at 1,500 m/s (the water value a file may say).
import matplotlib.pyplot as plt

import slingbag

slingbag.init("cpu")
region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = slingbag.vessels_phantom(region=region, spacing=0.2e-3, seed=1)
acq = slingbag.simulate(
    phantom.cloud, "planar:6x6:2e-3", n_samples=512, sound_speed=1540.0, noise=0.01, seed=0
)
wrong = acq.replace(sound_speed=1500.0)

# %%
# The configuration
# -----------------
# ``calibrate.params`` lists what to learn in the fine stage: ``sound_speed``, ``t0``
# (the time of the first sample), per-sensor ``gain`` and the sensor ``response``.
# With the sound speed or t0 the reconstruction runs ``calibrate.passes`` times, each
# from a fresh cloud at the value the pass before it learned (a cloud built at a wrong
# speed keeps a memory of it).  Command line: ``slingbag reconstruct data.h5 -o recon.h5
# --calibrate sound_speed``.
#
# ``loss.lowpass_coarse = 0`` fits the coarse stage at the full band.  On a scene this
# small the default, a low-pass four balls wide, leaves the estimate at 1,525 m/s; the
# project's calibration tests do the same.
config = slingbag.load_config(
    "fast",
    overrides={
        "init": {"balls": 1000},
        "coarse": {"iterations": 20},
        "fine": {"iterations": 60},
        "loss": {"lowpass_coarse": 0.0},
        "calibrate": {"params": ["sound_speed"], "passes": 2},
    },
)
rec = slingbag.reconstruct(wrong, config, region=region, seed=0, progress=False)
print(f"learned sound speed: {rec.attrs['calibrated_sound_speed']:.1f} m/s (true 1540)")

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
# The same reconstruction without calibration, at the wrong speed, scores lower:
plain = slingbag.load_config("fast", overrides={"init": {"balls": 1000}})
rec_wrong = slingbag.reconstruct(
    wrong, plain, region=region, iterations=120, seed=0, progress=False
)
for name, r in (("1500 m/s as given", rec_wrong), ("calibrated", rec)):
    m = slingbag.metrics(r.volume, phantom.volume)
    print(f"{name:18s} SSIM of the top MAP {m['ssim_map_z']:.3f}, CNR {m['cnr']:.1f}")
