"""The quick sound-speed check: it calls a wrong file speed wrong and a right one right."""

import logging

import pytest

from slingbag.benchmark import suite
from slingbag.core.conditioning import clean_acquisition
from slingbag.core.config import load_config
from slingbag.fit.speedcheck import WRONG_SPEED, check_sound_speed


def _case(true_speed):
    case = suite.Case(
        "ci speed",
        "small vessels",
        "planar:8x8:2e-3",
        samples=1024,
        sound_speed=true_speed,
        file_sound_speed=1500.0,
    )
    return clean_acquisition(suite.simulate_case(case))


@pytest.mark.parametrize("true_speed, warns", [(1540.0, True), (1500.0, False)])
def test_check_calls_the_files_speed(true_speed, warns, caplog):
    acq = _case(true_speed)
    with caplog.at_level(logging.INFO, logger="slingbag"):
        found = check_sound_speed(acq, load_config("default"), seed=0)
    said = [r for r in caplog.records if r.getMessage().startswith("sound speed:")]
    assert len(said) == 1
    assert (said[0].levelno == logging.WARNING) == warns
    if warns:
        assert "--calibrate sound_speed" in said[0].getMessage()
        assert found > 1510.0
    else:
        assert abs(found / 1500.0 - 1) < WRONG_SPEED


def test_no_check_when_the_run_calibrates_or_the_preset_is_fast():
    acq = _case(1540.0)
    cfg = load_config("default")
    cfg["calibrate"]["params"] = ["sound_speed"]
    assert check_sound_speed(acq, cfg) is None
    assert check_sound_speed(acq, load_config("fast")) is None
