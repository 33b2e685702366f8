"""Write files so that a reader never sees half of one.

Every writer in slingbag writes to a temporary file beside the target and renames it onto
the target only once the write has finished; an error or Ctrl-C leaves no output behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import InputError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace.

    Yields
    ------
    pathlib.Path
        A fresh temporary path in the same folder (``.<name>.XXXX.tmp``); the block writes
        the file there.  It does not exist yet when the block starts.

    Raises
    ------
    InputError
        If the folder does not exist or cannot be written to.

    Notes
    -----
    The rename is :func:`os.replace`, which is atomic on one file system; that is why the
    temporary file lives in the target's own folder.  On any exception, ``KeyboardInterrupt``
    included, the temporary file is removed and the target is left as it was.  A process
    killed outright (SIGKILL) leaves its temporary file; the next successful write of the
    same target removes it.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(
            str(target), None, "a file in an existing folder", hint=f"create {folder} first"
        )
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(str(target), None, "a writable folder", got=exc.strerror) from None
    os.close(fd)
    tmp = Path(tmp_name)
    started = tmp.stat().st_mtime
    # Writers such as h5py's "w-" mode or np.save expect to create the file themselves.
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the block wrote nothing to the temporary path")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _remove_stale(folder, target.name, started)


def _remove_stale(folder: Path, name: str, before: float) -> None:
    """Remove temporary files of earlier writes to ``name`` that never finished (a process
    killed with SIGKILL cannot clean up): those last touched before this write began."""
    for old in folder.glob(f".{name}.*.tmp"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < before:
                old.unlink()


def remove_leftovers(path) -> None:
    """Remove every temporary file left beside ``path`` by writes to it that never
    finished (call once nothing writes it any more, e.g. a checkpoint at the end)."""
    target = Path(path)
    _remove_stale(target.parent, target.name, float("inf"))
