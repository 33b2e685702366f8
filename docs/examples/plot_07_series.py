"""
A series of frames on Dask
==========================

Dynamic imaging records many frames of nearly the same object.  Each frame after the first
starts from the cloud of the frame before (the ``warm`` preset: a short fine stage), and
chunks of frames run in parallel on a Dask cluster: a local one by default, or any
scheduler you give.

Dask starts its local workers as new Python processes, which import the script that
started them.  Run as a script, everything that computes must therefore sit under
``if __name__ == "__main__":`` (in a notebook or IPython it need not).
"""

# %%
# Three frames of a pulsating vessel tree (radii swell and shrink, contrast washes in),
# drawn on a 0.1 mm grid and simulated independently of slingbag's radiator, as in
# :doc:`plot_01_simulate`'s last section: each voxel radiates as a uniform sphere, then a
# 12 MHz low-pass and 1 % noise
# (:func:`slingbag.benchmark.acquire.independent_acquisition`; the frames draw their noise
# from one generator).
import matplotlib.pyplot as plt
import numpy as np

import slingbag
from slingbag.benchmark.acquire import independent_acquisition

REGION = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)


def simulate_frames(n_frames):
    """The phantom's frames and the signals of each on a 6 x 6 planar array."""
    dynamic = slingbag.dynamic_vessels(
        n_frames, seed=1, region=REGION, spacing=0.1e-3
    )
    array = slingbag.load_array("planar:6x6:2e-3")
    rng = np.random.default_rng(0)
    acquisitions = [
        independent_acquisition(
            frame.volume,
            array,
            fs=40e6,
            n_samples=512,
            sound_speed=1500.0,
            lowpass=12e6,
            noise=0.01,
            seed=rng,
        )
        for frame in dynamic.frames
    ]
    return dynamic.frames, acquisitions


if __name__ == "__main__":
    slingbag.init("cpu")
    phantoms, frames = simulate_frames(3)

# %%
# Reconstruct the series
# ----------------------
# ``workers=1`` starts a local cluster of one worker process (the default: one per core);
# ``client=`` or ``scheduler="tcp://host:8786"`` uses a cluster of your own.  Frame 0 is
# a cold start (``config``), frames 1 and 2 are warm starts (``warm_config``, by default
# the ``warm`` preset).  On the command line: ``slingbag reconstruct-series f0.h5 f1.h5
# f2.h5 -o series.h5``.
if __name__ == "__main__":
    config = slingbag.load_config("fast", overrides={"init": {"balls": 1000}})
    series = slingbag.reconstruct_series(
        frames,
        config,
        region=REGION,
        iterations=120,
        warm_iterations=20,
        workers=1,
        seed=0,
        progress=False,
    )
    seconds = series.frame_seconds.round(2)
    print(series.n_frames, "frames; seconds per frame:", seconds)

# %%
# Every volume is on one grid, so they stack into one array ``(frames, nx, ny, nz)``.
if __name__ == "__main__":
    fig, axes = plt.subplots(2, 3, figsize=(9, 6), layout="constrained")
    for k in range(series.n_frames):
        axes[0, k].imshow(
            phantoms[k].volume.data.max(axis=2).T,
            origin="lower",
            cmap="inferno",
        )
        axes[0, k].set_title(f"truth, frame {k}")
        axes[1, k].imshow(
            series.volumes[k].max(axis=2).T, origin="lower", cmap="inferno"
        )
        axes[1, k].set_title(f"slingbag, frame {k}")
    for ax in axes.flat:
        ax.set_axis_off()
    plt.show()

# %%
# :func:`slingbag.write_series` and :func:`slingbag.read_series` keep a series in one
# HDF5 file (with ``output=``, ``reconstruct_series`` writes it as it goes, and a rerun
# skips the chunks already done).  Below, each frame's score against its truth (one tiny
# scene: a check that the warm starts keep up, not a measure of quality).
if __name__ == "__main__":
    for k in range(series.n_frames):
        m = slingbag.metrics(series.volume(k), phantoms[k].volume)
        print(f"frame {k}: SSIM of the top MAP {m['ssim_map_z']:.3f}")
