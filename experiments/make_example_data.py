"""Write the small example inputs in ``data/``.

* ``data/example_vessels_8x8.h5``: a small vessel phantom (8 x 8 x 3 mm, 12 mm above) seen
  by an 8 x 8 planar array at 2 mm pitch, 1,024 samples at 40 MHz, ``shells`` radiator,
  1 % noise; carries its truth.  Try: ``slingbag reconstruct data/example_vessels_8x8.h5
  -o recon.h5 --config fast``.
* ``data/planar_8x8_positions.txt``: the array's positions (metres, tab separated).
"""

from pathlib import Path

import numpy as np

import slingbag
from slingbag.core.arrays import load_array
from slingbag.io.native import write_acquisition
from slingbag.phantoms import vessels_phantom

DATA = Path(__file__).resolve().parents[1] / "data"


def main():
    slingbag.init()
    phantom = vessels_phantom(
        region=(-4e-3, 4e-3, -4e-3, 4e-3, 12e-3, 15e-3), spacing=0.2e-3, seed=3
    )
    array = load_array("planar:8x8:2e-3")
    acq = slingbag.simulate(
        phantom.cloud, array, model="shells", n_samples=1024, noise=0.01, band=(0.1e6, 12e6), seed=4
    )
    acq.truth_volume = phantom.volume
    acq.truth_cloud = None  # the volume is the truth; keeps the file small
    write_acquisition(DATA / "example_vessels_8x8.h5", acq)
    np.savetxt(DATA / "planar_8x8_positions.txt", array.positions, delimiter="\t", fmt="%.6e")


if __name__ == "__main__":
    main()
