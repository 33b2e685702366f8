"""Reconstruct a series of frames, each warm-started from its predecessor, on Dask.

:mod:`.frames` names the frames (:class:`FrameRef`, :func:`expand_inputs`), :mod:`.runner`
reconstructs them in chunks on a Dask cluster (:func:`reconstruct_series`), and
:mod:`.store` keeps the results (:class:`SeriesResult`, :func:`write_series`,
:func:`read_series`, the part files a rerun resumes from).
"""

from .frames import FrameRef, expand_inputs
from .store import (
    FORMAT_VERSION,
    PART_FORMAT,
    SERIES_FORMAT,
    SeriesResult,
    read_series,
    write_series,
)

#: Names of the Dask runner, imported when first used: reading a series needs no Dask.
_RUNNER = ("DEFAULT_CHUNK", "EXECUTOR", "TaichiPlugin", "reconstruct_series")


def __getattr__(name):
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CHUNK",
    "EXECUTOR",
    "FORMAT_VERSION",
    "PART_FORMAT",
    "SERIES_FORMAT",
    "FrameRef",
    "SeriesResult",
    "TaichiPlugin",
    "expand_inputs",
    "read_series",
    "reconstruct_series",
    "write_series",
]
