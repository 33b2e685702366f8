"""slingbag: 3D photoacoustic reconstruction with a cloud of Gaussian balls (SlingBAG).

The public API is flat (names are imported lazily so ``import slingbag`` stays cheap)::

    import slingbag
    array = slingbag.load_array("planar:24x24:1.5e-3")
    phantom = slingbag.vessels_phantom(seed=0)
    acq = slingbag.simulate(phantom.cloud, array, model="shells", noise=0.01)
    rec = slingbag.reconstruct(acq)
    base = slingbag.ubp(acq, rec.volume.origin, rec.volume.spacing, rec.volume.shape)
    print(slingbag.metrics(rec.volume, phantom.volume))
"""

from __future__ import annotations

import importlib

from ._version import __version__

_EXPORTS = {
    "init": "backend",
    "GaussianCloud": "core.cloud",
    "Acquisition": "core.acquisition",
    "SensorArray": "core.acquisition",
    "Element": "core.element",
    "parse_element": "core.element",
    "Volume": "core.volume",
    "InputError": "errors",
    "SlingbagError": "errors",
    "ReconstructionError": "errors",
    "simulate": "model.radiator",
    "loss_and_grad": "fit.loss",
    "read_ply": "io.ply",
    "write_ply": "io.ply",
    "read_acquisition": "io.native",
    "write_acquisition": "io.native",
    "read_result": "io.native",
    "write_result": "io.native",
    "load_array": "core.arrays",
    "vessels_phantom": "phantoms",
    "volume_to_cloud": "phantoms",
    "reconstruct": "fit.reconstruct",
    "Reconstruction": "fit.reconstruct",
    "load_config": "core.config",
    "voxelize": "model.voxelize",
    "ubp": "baselines.ubp",
    "model_based": "baselines.model_based",
    "metrics": "report.metrics",
    "read_any": "io.formats",
    "detect_format": "io.detect",
    "write_ipasc": "io.ipasc",
    "load_phantom": "phantoms",
    "reconstruct_series": "series",
    "read_series": "series",
    "write_series": "series",
    "dynamic_vessels": "phantoms.dynamic",
    "view": "report.view",
    "export_volume": "io.export",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        mod = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(mod, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'slingbag' has no attribute {name!r}")


def __dir__():
    return __all__
