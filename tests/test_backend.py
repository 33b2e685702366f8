"""Which backend ``init("auto")`` picks (the device query mocked, nothing started)."""

import logging

import pytest

from slingbag import backend


class FakeTi:
    pass


@pytest.fixture
def probe(monkeypatch):
    """Pretend the listed backends are available and the loader lists ``devices``."""

    def setup(available, devices):
        monkeypatch.setattr(
            backend,
            "_first_available",
            lambda ti, names: names[0] if names[0] in available else None,
        )
        monkeypatch.setattr(backend, "vulkan_devices", lambda: devices)

    return setup


@pytest.mark.parametrize(
    "devices",
    [
        [("llvmpipe (LLVM 15.0.6, 256 bits)", 4)],
        [("SwiftShader Device (Subzero)", 4)],
        [("lavapipe", 2)],  # named as software even when the type says otherwise
    ],
)
def test_auto_skips_software_vulkan(probe, devices):
    probe({"vulkan"}, devices)
    chosen, why = backend._auto_choice(FakeTi())
    assert chosen == "cpu"
    assert "software" in why and devices[0][0] in why


def test_auto_takes_hardware_vulkan_beside_software(probe):
    probe({"vulkan"}, [("llvmpipe (LLVM 15)", 4), ("AMD Radeon RX 7900", 2)])
    chosen, why = backend._auto_choice(FakeTi())
    assert chosen == "vulkan" and "Radeon" in why


def test_auto_prefers_cuda_and_falls_back_to_cpu(probe):
    probe({"cuda", "vulkan"}, [("llvmpipe", 4)])
    assert backend._auto_choice(FakeTi())[0] == "cuda"
    probe(set(), [])
    chosen, why = backend._auto_choice(FakeTi())
    assert chosen == "cpu" and "no GPU" in why


def test_auto_logs_its_choice(probe, monkeypatch, caplog):
    probe({"vulkan"}, [("llvmpipe (LLVM 15)", 4)])
    started = {}

    class Ti:
        f32 = i32 = WARN = cpu = "cpu-arch"

        @staticmethod
        def init(arch, **kw):
            started["arch"] = arch

    monkeypatch.setattr(backend, "_taichi", lambda: Ti)
    monkeypatch.setattr(backend, "_state", {"arch": None})
    with caplog.at_level(logging.INFO, logger="slingbag"):
        assert backend.init("auto") == "cpu"
    assert started["arch"] == "cpu-arch"
    assert "skipped software Vulkan device(s) llvmpipe" in caplog.text


def test_software_names():
    assert backend.is_software_device("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert backend.is_software_device("Some GPU", 4)
    assert not backend.is_software_device("NVIDIA GeForce RTX 4090", 2)


def test_taichi_says_nothing_on_stdout():
    # Commands print JSON on stdout (--json); Taichi's banner and start line go to stderr.
    import subprocess
    import sys

    code = "import slingbag; slingbag.init('cpu'); import slingbag.kernels.radiator; print('{}')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "{}\n", out.stdout
    assert "Starting on arch" in out.stderr
