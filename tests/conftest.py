import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SLINGBAG_ARCH", "cpu")

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
