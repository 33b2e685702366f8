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
        candidates = ["cuda", "vulkan", "metal"]
        chosen = None
        for cand in candidates:
            try:
                ti.init(arch=getattr(ti, cand), **kwargs)
            except Exception:  # noqa: BLE001 - any failure means "not this backend"
                continue
            if ti.lang.impl.current_cfg().arch == getattr(ti, cand):
                chosen = cand
                break
            ti.reset()
        if chosen is None:
            ti.init(arch=ti.cpu, **kwargs)
            chosen = "cpu"
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


def ensure_init() -> str:
    """Start Taichi with the default arch if nobody has yet."""
    if _state["arch"] is None:
        return init()
    return _state["arch"]


def current_arch() -> str | None:
    return _state["arch"]


def is_gpu() -> bool:
    return ensure_init() not in ("cpu",)
