"""
View in 3D
==========

Render a reconstruction with PyVista, off-screen: the voxel volume, the cloud of balls and
the sensors, framed from the side the sensors look from.
"""

# %%
# :func:`slingbag.view` takes results as they are read from files
# (:func:`slingbag.read_result`), so write the reconstruction first, with its sensors.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pyvista

import slingbag

pyvista.OFF_SCREEN = True  # no window: render into memory (no display needed)
slingbag.init("cpu")

region = (-2e-3, 2e-3, -2e-3, 2e-3, 5e-3, 6.6e-3)
phantom = slingbag.vessels_phantom(region=region, spacing=0.2e-3, seed=1)
acq = slingbag.simulate(
    phantom.cloud, "planar:6x6:2e-3", n_samples=512, noise=0.01, seed=0
)
config = slingbag.load_config("fast", overrides={"init": {"balls": 1000}})
rec = slingbag.reconstruct(
    acq, config, region=region, iterations=120, seed=0, progress=False
)

folder = Path(tempfile.mkdtemp())
slingbag.write_result(
    folder / "recon.h5",
    volume=rec.volume,
    cloud=rec.cloud,
    history=rec.history,
    attrs=rec.attrs,
    sensors=acq.array,
)
result = slingbag.read_result(folder / "recon.h5")

# %%
# A screenshot
# ------------
# With ``screenshot`` the view is rendered off-screen into a PNG (``slingbag view
# recon.h5 --screenshot view.png`` on the command line).  Without it, on a desktop, a
# window opens with check boxes (and keys v, c, s, x) to switch the volume, the cloud, the
# sensors and three draggable slice planes on and off.
png = slingbag.view(
    result, mode="all", screenshot=folder / "view.png", window_size=(900, 600)
)

fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
ax.imshow(plt.imread(png))
ax.set_axis_off()
plt.show()

# %%
# Several results side by side
# ----------------------------
# A list of results shares one camera; an acquisition file with a truth shows the truth.
slingbag.write_acquisition(folder / "data.h5", acq)
ubp = slingbag.ubp(acq, rec.volume.origin, rec.volume.spacing, rec.volume.shape)
slingbag.write_result(
    folder / "ubp.h5", volume=ubp, attrs={"method": "ubp"}, sensors=acq.array
)
results = [
    slingbag.read_result(folder / name) for name in ("ubp.h5", "recon.h5")
]
png = slingbag.view(
    results, screenshot=folder / "both.png", window_size=(1200, 500)
)

fig, ax = plt.subplots(figsize=(10, 4.2), layout="constrained")
ax.imshow(plt.imread(png))
ax.set_axis_off()
plt.show()

# %%
# Plain PyVista
# -------------
# The cloud is plain arrays, so any PyVista scene can show it: here each ball as a sphere
# one sigma across, coloured by its amplitude, in millimetres.
balls = pyvista.PolyData(rec.cloud.xyz * 1e3)
balls["p0"] = rec.cloud.p0
balls["diameter"] = rec.cloud.sigma * 1e3
spheres = balls.glyph(scale="diameter", orient=False, geom=pyvista.Sphere())

plotter = pyvista.Plotter(window_size=(800, 500))
plotter.add_mesh(
    spheres, scalars="p0", cmap="inferno", scalar_bar_args={"vertical": True}
)
plotter.show_grid(
    xtitle="x (mm)", ytitle="y (mm)", ztitle="z (mm)", n_xlabels=3, n_ylabels=3
)
plotter.camera.zoom(1.2)
plotter.show()
