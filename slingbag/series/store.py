"""Series results on disk: the finished series file and the per-chunk part files.

Every finished chunk is written at once to a part file beside the output
(``SERIES.h5.parts/chunk_0003.h5``), so a rerun skips the finished ones; the series file
holds every frame's volume, cloud and history (:func:`write_series`, :func:`read_series`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..core.cloud import GaussianCloud
from ..core.volume import Volume
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.native import _plain, write_cloud_history

log = logging.getLogger("slingbag")

SERIES_FORMAT = "slingbag-series"
PART_FORMAT = "slingbag-series-part"
FORMAT_VERSION = 1


@dataclass
class SeriesResult:
    """The result of :func:`reconstruct_series`.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    volumes : ndarray, float32, shape (n_frames, nx, ny, nz)
        One volume per frame, all on one grid.
    origin, spacing : ndarray, shape (3,)
        Placement of that grid (metres).
    clouds : list of GaussianCloud
        The fitted balls of each frame (p0 in signal units).
    histories : list of dict
        Each frame's per-iteration history (see :class:`slingbag.Reconstruction`).
    frame_seconds : ndarray, shape (n_frames,)
        Wall time of each frame's reconstruction on its worker.
    attrs : dict
        Region, chunking, configurations and the like, for the series file.
    """

    volumes: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    clouds: list
    histories: list
    frame_seconds: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """The number of frames."""
        return len(self.volumes)

    def volume(self, k: int) -> Volume:
        """Return one frame's volume.

        Parameters
        ----------
        k : int
            The frame's index.

        Returns
        -------
        Volume
            Frame ``k`` on the series' grid.
        """
        return Volume(self.volumes[k], self.origin, self.spacing)


def _part_path(parts_dir: Path, chunk_id: int) -> Path:
    return parts_dir / f"chunk_{chunk_id:04d}.h5"


def _write_frame(group, out: dict) -> None:
    write_cloud_history(group, out["cloud"], out["history"])
    group.attrs["seconds"] = float(out["seconds"])
    group.attrs["warm"] = bool(out["warm"])
    group.attrs["signal_scale"] = float(out["signal_scale"])


def _read_frame(group) -> dict:
    c = group["cloud"]
    cloud = GaussianCloud(c["xyz"][()], c["p0"][()], c["sigma"][()])
    history = {name: group["history"][name][()] for name in group["history"]}
    return {
        "cloud": cloud,
        "history": history,
        "seconds": float(group.attrs["seconds"]),
        "warm": bool(group.attrs["warm"]),
        "signal_scale": float(group.attrs["signal_scale"]),
    }


def _write_part(path: Path, result: dict, fingerprint: str) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = PART_FORMAT
        f.attrs["version"] = FORMAT_VERSION
        f.attrs["fingerprint"] = fingerprint
        f.attrs["chunk"] = int(result["chunk"])
        for index, out in result["frames"].items():
            g = f.create_group(f"frames/{index}")
            g.create_dataset("volume", data=np.asarray(out["volume"], np.float32))
            _write_frame(g, out)


def _read_part(path: Path, fingerprint: str, indices) -> dict | None:
    """A finished chunk, or None when the part belongs to another run (then redone)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != PART_FORMAT or f.attrs.get("fingerprint") != fingerprint:
                log.warning("%s: from a different series run; redoing this chunk", path)
                return None
            frames = {}
            for index in indices:
                g = f[f"frames/{index}"]
                out = _read_frame(g)
                out["volume"] = g["volume"][()]
                frames[index] = out
            return {"chunk": int(f.attrs["chunk"]), "frames": frames}
    except (OSError, KeyError) as exc:
        log.warning("%s: unreadable part (%s); redoing this chunk", path, exc)
        return None


def write_series(path, result: SeriesResult) -> None:
    """Write a series atomically.

    Layout: ``volumes`` ``(n_frames, nx, ny, nz)`` float32 with attributes ``origin`` and
    ``spacing``; ``frames/<k>/cloud/{xyz,p0,sigma}``; ``frames/<k>/history/<name>``;
    ``frame_seconds`` ``(n_frames,)``; root attributes ``format`` = ``slingbag-series``,
    ``version``, ``n_frames`` and ``result.attrs``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    result : SeriesResult
        The series, as :func:`reconstruct_series` returns it.
    """
    from .._version import __version__
    from ..io.native import _write_attr

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in result.attrs.items():
            _write_attr(f.attrs, key, value)
        f.attrs["format"] = SERIES_FORMAT
        f.attrs["version"] = FORMAT_VERSION
        f.attrs["software_version"] = __version__
        f.attrs["n_frames"] = result.n_frames
        vols = f.create_dataset(
            "volumes",
            data=np.asarray(result.volumes, np.float32),
            chunks=(1, *result.volumes.shape[1:]),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        vols.attrs["origin"] = np.asarray(result.origin, np.float64)
        vols.attrs["spacing"] = np.asarray(result.spacing, np.float64)
        f.create_dataset("frame_seconds", data=np.asarray(result.frame_seconds, np.float64))
        n = result.n_frames
        warm = np.asarray(result.attrs.get("warm", np.arange(n) > 0)).reshape(-1)
        scale = np.asarray(result.attrs.get("signal_scale", np.full(n, np.nan))).reshape(-1)
        for k in range(n):
            g = f.create_group(f"frames/{k}")
            out = {
                "cloud": result.clouds[k],
                "history": result.histories[k],
                "seconds": result.frame_seconds[k],
                "warm": bool(warm[k]),
                "signal_scale": float(scale[k]),
            }
            _write_frame(g, out)


def read_series(path) -> SeriesResult:
    """Read a file written by :func:`write_series`.

    Parameters
    ----------
    path : str or os.PathLike
        A series HDF5 file (of ``slingbag reconstruct-series``).

    Returns
    -------
    SeriesResult
        Every frame's volume, cloud and history, and the file's root attributes.

    Raises
    ------
    InputError
        If the file is missing, not a series file or unreadable.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise InputError(source, None, "an existing series HDF5 file")
    try:
        with h5py.File(source, "r") as f:
            fmt = _plain(f.attrs.get("format"))
            if fmt != SERIES_FORMAT:
                raise InputError(source, "attribute format", repr(SERIES_FORMAT), got=fmt)
            vols = f["volumes"]
            n = vols.shape[0]
            frames = [_read_frame(f[f"frames/{k}"]) for k in range(n)]
            attrs = {k: _plain(v) for k, v in f.attrs.items() if k not in ("format", "version")}
            return SeriesResult(
                volumes=vols[()],
                origin=np.asarray(vols.attrs["origin"], float),
                spacing=np.asarray(vols.attrs["spacing"], float),
                clouds=[fr["cloud"] for fr in frames],
                histories=[fr["history"] for fr in frames],
                frame_seconds=f["frame_seconds"][()],
                attrs=attrs,
            )
    except (OSError, KeyError) as exc:
        raise InputError(source, None, "a readable series file", got=str(exc)) from None
