"""Write files so that a reader never sees half of one.

Every writer in slingbag writes to a temporary file beside the target and renames it onto
the target only once the write has finished; an error or Ctrl-C leaves no output behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import InputError


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
    included, the temporary file is removed and the target is left as it was.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
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
