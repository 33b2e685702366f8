"""Peak memory of one step of a run, for tables that compare methods in one process.

``ru_maxrss`` is the process's peak since it started, so it cannot tell the second method
of a run from the first.  :class:`PeakMemory` instead samples the resident set size (RSS)
in a thread while its block runs and reports the largest value above the level it found
at the start: what the block made the process hold, NumPy arrays, Taichi's buffers (on
the CPU backend they live in host memory) and any Python objects alike.

What it does not see: a peak shorter than the sampling interval (10 ms), and memory the
block reuses from heap pages an earlier step freed but the allocator kept.  The second is
why the block starts with ``malloc_trim(0)`` (glibc only): freed heap is handed back to
the system first, so the baseline is what is live and reuse shows up as growth.  Large
NumPy arrays come from ``mmap`` and go back on free anyway.  On a GPU backend the
device's memory is not in the RSS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

#: Seconds between RSS samples.
INTERVAL = 0.01


def _trim() -> None:
    """Give freed heap pages back to the system (glibc's ``malloc_trim``); else nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the baseline is as found
        pass


class PeakMemory:
    """Largest RSS above the starting level while the ``with`` block runs.

    Attributes
    ----------
    bytes : int
        Peak RSS during the block minus the RSS at its start (set on exit; 0 if the
        process only shrank).
    base : int
        RSS at the start, bytes.

    Examples
    --------
    >>> with PeakMemory() as mem:
    ...     buf = bytearray(50 * 2**20)
    >>> mem.bytes > 40 * 2**20
    True
    """

    def __init__(self, interval: float = INTERVAL):
        self.interval = float(interval)
        self.bytes = 0
        self.base = 0

    def __enter__(self):
        import psutil

        _trim()
        self._proc = psutil.Process()
        self.base = self._proc.memory_info().rss
        self._peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.bytes = max(int(self._peak - self.base), 0)
        return False


def measure(run):
    """``run()``'s result, its wall seconds and its peak memory above the start (bytes)."""
    with PeakMemory() as mem:
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
    return result, seconds, mem.bytes
