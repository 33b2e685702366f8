"""The frames of a series: files, folders and multi-frame files as :class:`FrameRef`.

A frame is either an in-memory :class:`~slingbag.core.acquisition.Acquisition` or a
:class:`FrameRef` that the worker reconstructing it reads; its fingerprint tells a rerun
whether a finished chunk was made from the same input.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..core.acquisition import Acquisition
from ..errors import InputError


@dataclass(frozen=True)
class FrameRef:
    """A frame stored in a file, read by whichever worker reconstructs it.

    Shipping the name instead of the signals keeps the task graph small; the worker needs
    to see the same file system as the client.
    """

    path: str
    frame: int = 0
    wavelength: int = 0
    element: str | None = None  # an --element spec replacing the file's sensor faces

    def load(self) -> Acquisition:
        from ..io.formats import load_acquisition

        return load_acquisition(
            self.path, frame=self.frame, wavelength=self.wavelength, element=self.element
        )

    def label(self) -> str:
        return f"{self.path}[{self.frame}]"


def expand_inputs(inputs) -> list:
    """The frames named by files, folders and multi-frame files, in order.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Acquisition files (a slingbag file whose ``signals`` is 3-D counts as one frame
        per entry of its first axis) and folders (their ``.h5``/``.hdf5`` files, in natural
        order of their names).

    Returns
    -------
    list of FrameRef
    """
    from ..io._fields import _natural_key

    refs = []
    for item in inputs:
        path = Path(os.fspath(item))
        if path.is_dir():
            files = sorted(
                (p for p in path.iterdir() if p.suffix.lower() in (".h5", ".hdf5")),
                key=lambda p: _natural_key(p.name),
            )
            if not files:
                raise InputError(str(path), None, "a folder holding .h5 acquisition files")
            for f in files:
                refs.extend(_frames_of_file(f))
        elif path.exists():
            refs.extend(_frames_of_file(path))
        else:
            raise InputError(str(path), None, "an existing acquisition file or folder")
    return refs


def _frames_of_file(path: Path) -> list:
    """One FrameRef per frame of ``path`` (several only for 3-D slingbag ``signals``)."""
    n = 1
    try:
        with h5py.File(path, "r") as f:
            item = f.get("signals")
            if isinstance(item, h5py.Dataset) and item.ndim == 3:
                n = int(item.shape[0])
    except OSError:
        pass  # not HDF5 (e.g. the text layout): the reader reports problems later
    return [FrameRef(str(path), k) for k in range(n)]


def _load(item) -> Acquisition:
    return item if isinstance(item, Acquisition) else item.load()


def _as_item(frame):
    if isinstance(frame, Acquisition):
        # The ground truth of simulated frames is not needed on the workers and can be
        # many times the size of the signals.
        return frame.replace(truth_volume=None, truth_cloud=None)
    if isinstance(frame, FrameRef):
        return frame
    if isinstance(frame, (str, os.PathLike)):
        refs = _frames_of_file(Path(frame))
        if len(refs) != 1:
            raise InputError(
                os.fspath(frame),
                "signals",
                "one frame per entry of `frames`",
                got=f"{len(refs)} frames",
                hint="expand it with slingbag.series.expand_inputs",
            )
        return refs[0]
    raise InputError("frames", None, "Acquisitions, FrameRefs or paths", got=type(frame).__name__)


def _fingerprint_item(item) -> str:
    """What identifies a frame's input, so a rerun never reuses parts of other data."""
    if isinstance(item, Acquisition):
        h = hashlib.sha1(np.ascontiguousarray(item.signals).tobytes())
        h.update(np.ascontiguousarray(item.positions).tobytes())
        h.update(repr((item.fs, item.sound_speed, item.t0)).encode())
        if item.element is not None:
            h.update(repr(item.element).encode())
        return "mem:" + h.hexdigest()
    st = os.stat(item.path)
    key = (
        f"{os.path.abspath(item.path)}:{item.frame}:{item.wavelength}:{st.st_size}:{st.st_mtime_ns}"
    )
    # Faces given on the command line change the model: parts made with others are not reused.
    return key if item.element is None else f"{key}:element={item.element}"
