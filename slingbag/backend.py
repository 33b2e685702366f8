"""Choosing and starting the Taichi backend.

One code path serves every arch: the kernels in :mod:`slingbag.kernels` are written once and
compiled for whichever backend :func:`init` picks.
"""

from __future__ import annotations

import logging
import os

from .errors import InputError

log = logging.getLogger("slingbag")

ARCHES = ("auto", "cpu", "cuda", "vulkan", "metal", "gpu")
_state = {"arch": None}


def _taichi():
    import taichi as ti

    return ti


def init(arch: str | None = None, *, debug: bool = False, quiet: bool = True) -> str:
    """Start Taichi on ``arch`` and return the name of the backend in use.

    Parameters
    ----------
    arch : {"auto", "cpu", "cuda", "vulkan", "metal", "gpu"}, optional
        ``"auto"`` (the default) takes the first GPU backend that works (cuda, vulkan, metal)
        and falls back to the CPU.  The environment variable ``SLINGBAG_ARCH`` overrides the
        default; an explicit argument overrides both.
    """
    if arch is None:
        arch = os.environ.get("SLINGBAG_ARCH", "auto") or "auto"
    arch = arch.lower()
    if arch not in ARCHES:
        raise InputError("--arch", None, "one of " + ", ".join(ARCHES), arch)
    if _state["arch"] is not None and arch in ("auto", _state["arch"]):
        return _state["arch"]
    ti = _taichi()
    if _state["arch"] is not None:
        ti.reset()
    kwargs = dict(debug=debug, default_fp=ti.f32, default_ip=ti.i32)
    if quiet:
        kwargs["log_level"] = ti.WARN
    if arch == "auto":
        chosen = _first_available(ti, ["cuda", "vulkan", "metal"]) or "cpu"
        ti.init(arch=getattr(ti, chosen), **kwargs)
    else:
        target = ti.gpu if arch == "gpu" else getattr(ti, arch)
        ti.init(arch=target, **kwargs)
        chosen = str(ti.lang.impl.current_cfg().arch).split(".")[-1]
        if chosen == "x64" or chosen == "arm64":
            chosen = "cpu"
        if arch != "gpu" and chosen != arch:
            log.warning("arch %s is not available here; running on %s", arch, chosen)
    _state["arch"] = chosen
    log.info("taichi backend: %s", chosen)
    return chosen


def _first_available(ti, names):
    """The first backend Taichi can run here, asked without starting it (a failed
    ``ti.init`` would print warnings and fall back to the CPU on its own)."""
    from taichi.lang.misc import is_arch_supported

    for name in names:
        try:
            with _quiet_fd2():
                if is_arch_supported(getattr(ti, name)):
                    return name
        except Exception:  # noqa: BLE001 - a failing probe means "not this backend"
            continue
    return None


class _quiet_fd2:
    """Silence file descriptor 2 for a moment: probing a missing GPU driver makes Taichi's
    C++ core print a warning there, which is noise on a CPU-only machine."""

    def __enter__(self):
        try:
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


def ensure_init() -> str:
    """Start Taichi with the default arch if nobody has yet."""
    if _state["arch"] is None:
        return init()
    return _state["arch"]


def current_arch() -> str | None:
    return _state["arch"]
