"""Choosing and starting the Taichi backend.

One code path serves every arch: the kernels in :mod:`slingbag.kernels` are written once and
compiled for whichever backend :func:`init` picks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from .errors import InputError

log = logging.getLogger("slingbag")

ARCHES = ("auto", "cpu", "cuda", "vulkan", "metal", "gpu")
_state = {"arch": None}


def _taichi():
    # Taichi prints its banner and "Starting on arch=..." to stdout; they go to stderr, so
    # that stdout holds only what a command prints (--json output stays parseable).
    with contextlib.redirect_stdout(sys.stderr):
        import taichi as ti

    return ti


def init(arch: str | None = None, *, debug: bool = False, quiet: bool = True) -> str:
    """Start Taichi on ``arch`` and return the name of the backend in use.

    Parameters
    ----------
    arch : {"auto", "cpu", "cuda", "vulkan", "metal", "gpu"}, optional
        ``"auto"`` (the default) takes the first GPU backend that works (cuda, vulkan, metal)
        and falls back to the CPU.  Vulkan counts only with a hardware device: software
        rasterisers (lavapipe/llvmpipe, SwiftShader) run on the CPU, slower than the CPU
        backend, so auto skips them and logs which device it chose and why.  The
        environment variable ``SLINGBAG_ARCH`` overrides the default; an explicit argument
        overrides both.  Once started, ``"auto"`` or the same arch keeps the running
        backend; another arch resets Taichi and starts that one.
    debug : bool
        Taichi's debug mode (bounds checks in the kernels; slower).
    quiet : bool
        Set Taichi's log level to warnings, so that it prints no information lines.

    Returns
    -------
    str
        The name of the backend in use, such as ``"cpu"``, ``"cuda"`` or ``"vulkan"``.
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
        chosen, why = _auto_choice(ti)
        log.info("auto backend: %s (%s)", chosen, why)
        target = getattr(ti, chosen)
    else:
        target = ti.gpu if arch == "gpu" else getattr(ti, arch)
    with contextlib.redirect_stdout(sys.stderr):  # Taichi's "Starting on arch=..."
        ti.init(arch=target, **kwargs)
    if arch != "auto":
        chosen = str(ti.lang.impl.current_cfg().arch).split(".")[-1]
        if chosen == "x64" or chosen == "arm64":
            chosen = "cpu"
        if arch != "gpu" and chosen != arch:
            log.warning("arch %s is not available here; running on %s", arch, chosen)
    _state["arch"] = chosen
    log.info("taichi backend: %s", chosen)
    return chosen


SOFTWARE_VULKAN = ("llvmpipe", "lavapipe", "swiftshader", "softpipe")
_VK_PHYSICAL_DEVICE_TYPE_CPU = 4


def is_software_device(name: str, device_type: int | None = None) -> bool:
    """Whether a Vulkan device renders on the CPU (by its type, or its driver's name)."""
    low = name.lower()
    return device_type == _VK_PHYSICAL_DEVICE_TYPE_CPU or any(w in low for w in SOFTWARE_VULKAN)


def _auto_choice(ti) -> tuple[str, str]:
    """The backend ``init("auto")`` takes, and why, in words for the log."""
    skipped = []
    for name in ("cuda", "vulkan", "metal"):
        if _first_available(ti, [name]) is None:
            continue
        if name != "vulkan":
            return name, f"{name} is available"
        devices = vulkan_devices()
        hardware = [d for d, t in devices if not is_software_device(d, t)]
        if hardware or devices is None:
            return "vulkan", "Vulkan device " + (hardware[0] if hardware else "(unnamed)")
        skipped = [d for d, _t in devices]
    if skipped:
        return "cpu", "skipped software Vulkan device(s) " + ", ".join(skipped)
    return "cpu", "no GPU backend available"


def vulkan_devices() -> list[tuple[str, int]] | None:
    """Names and types (VkPhysicalDeviceType) of the Vulkan devices the loader sees, or
    None when the loader cannot be asked.  Asked through libvulkan directly: Taichi does not
    say which device it would use before starting on it."""
    import ctypes
    import ctypes.util

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("vulkan") or "libvulkan.so.1")
    except OSError:
        return None

    class AppInfo(ctypes.Structure):
        _fields_ = [
            ("sType", ctypes.c_int),
            ("pNext", ctypes.c_void_p),
            ("pApplicationName", ctypes.c_char_p),
            ("applicationVersion", ctypes.c_uint32),
            ("pEngineName", ctypes.c_char_p),
            ("engineVersion", ctypes.c_uint32),
            ("apiVersion", ctypes.c_uint32),
        ]

    class InstanceInfo(ctypes.Structure):
        _fields_ = [
            ("sType", ctypes.c_int),
            ("pNext", ctypes.c_void_p),
            ("flags", ctypes.c_uint32),
            ("pApplicationInfo", ctypes.POINTER(AppInfo)),
            ("enabledLayerCount", ctypes.c_uint32),
            ("ppEnabledLayerNames", ctypes.c_void_p),
            ("enabledExtensionCount", ctypes.c_uint32),
            ("ppEnabledExtensionNames", ctypes.c_void_p),
        ]

    app = AppInfo(0, None, b"slingbag", 1, b"slingbag", 1, (1 << 22))  # VK_API_VERSION_1_0
    info = InstanceInfo(1, None, 0, ctypes.pointer(app), 0, None, 0, None)
    inst = ctypes.c_void_p()
    try:
        with _quiet_fd2():
            if lib.vkCreateInstance(ctypes.byref(info), None, ctypes.byref(inst)) != 0:
                return None
            try:
                count = ctypes.c_uint32(0)
                lib.vkEnumeratePhysicalDevices(inst, ctypes.byref(count), None)
                handles = (ctypes.c_void_p * count.value)()
                lib.vkEnumeratePhysicalDevices(inst, ctypes.byref(count), handles)
                out = []
                for h in handles[: count.value]:
                    # VkPhysicalDeviceProperties (824 bytes): deviceType at byte 16, then
                    # deviceName[256]; the buffer is oversized in case of padding.
                    props = ctypes.create_string_buffer(2048)
                    lib.vkGetPhysicalDeviceProperties(ctypes.c_void_p(h), props)
                    dtype = int.from_bytes(props.raw[16:20], "little")
                    name = props.raw[20:276].split(b"\0", 1)[0].decode(errors="replace")
                    out.append((name, dtype))
                return out
            finally:
                lib.vkDestroyInstance(inst, None)
    except Exception:  # noqa: BLE001 - a failing probe means "cannot tell"
        return None


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
