"""Reconstruct a series of frames, each warm-started from its predecessor, on Dask."""

from .runner import *  # noqa: F403
from .runner import _read_frame, _write_frame  # noqa: F401
