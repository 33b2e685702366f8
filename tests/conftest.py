import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SLINGBAG_ARCH", "cpu")
# Under pytest-xdist every worker is a process with a Taichi of its own: share the cores
# among them rather than let each start a thread per core.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("TI_CPU_MAX_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _taichi_cpu():
    import slingbag

    slingbag.init(os.environ.get("SLINGBAG_ARCH", "cpu"))
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data():
    path = SHARED / "data"
    if not path.exists():
        pytest.skip("../shared/data is not beside the clone")
    return path
