"""A quick look at whether the file's sound speed is right.

Tissue is not water (1,540-1,600 m/s against 1,480-1,500), and a file's sound speed is
often the water's.  A reconstruction at a wrong speed still converges, to a blurred,
shifted image: nothing in its own loss says so.  What does is a short calibration: one
pass of the ``fast`` preset's loop with the sound speed learned.  On the suite's 12 x 12
vessels it moves a right speed by under 1 m/s (1 % and 5 % noise, spheres too) and the
wrong one (true 1,540, file 1,500) to 1,532 m/s, for about a fifth of the default run's
time (docs/results.md).
"""

from __future__ import annotations

import copy
import logging

from ..core.acquisition import Acquisition
from ..core.config import load_config
from .params import timing_params
from .passes import run_pass

log = logging.getLogger("slingbag")

#: Relative move of the quick calibration above which the file's speed is called wrong.
WRONG_SPEED = 0.005
#: The loop sections the quick calibration takes from the fast preset.
_QUICK_SECTIONS = ("init", "coarse", "fine", "density")


def quick_sound_speed(acq: Acquisition, cfg: dict, *, region=None, seed=None) -> float:
    """The sound speed one quick calibration pass learns from ``acq``.

    Parameters
    ----------
    acq : Acquisition
        The (cleaned) acquisition; its ``sound_speed`` is the start.
    cfg : dict
        The run's configuration: its response, model and region settings are kept, its
        loop is the ``fast`` preset's, and the sound speed alone is learned, in one pass.
    region, seed
        As :func:`slingbag.reconstruct` takes them.

    Returns
    -------
    float
        The learned sound speed, m/s.
    """
    quick = copy.deepcopy(cfg)
    fast = load_config("fast")
    for section in _QUICK_SECTIONS:
        quick[section] = copy.deepcopy(fast[section])
    quick["calibrate"]["params"] = ["sound_speed"]
    quick["calibrate"]["passes"] = 1
    quick["run"]["checkpoint_every"] = 0
    level = log.level
    log.setLevel(max(level, logging.WARNING))  # its iterations are not the run's
    try:
        result = run_pass(acq, quick, region=region, seed=seed, progress=False)
    finally:
        log.setLevel(level)
    return float(result.sound_speed)


def check_sound_speed(acq: Acquisition, cfg: dict, *, region=None, seed=None) -> float | None:
    """Warn, in one line, when a quick calibration moves the file's sound speed by more
    than :data:`WRONG_SPEED`; return the speed it learned (None when not checked: the
    run calibrates the timing itself, or ``calibrate.check_sound_speed`` is off)."""
    if timing_params(cfg) or not cfg["calibrate"]["check_sound_speed"]:
        return None
    found = quick_sound_speed(acq, cfg, region=region, seed=seed)
    move = found / acq.sound_speed - 1.0
    if abs(move) > WRONG_SPEED:
        log.warning(
            "sound speed: the data fit better near %.0f m/s than the file's %.0f m/s (%+.1f %%); "
            "rerun with --calibrate sound_speed",
            found,
            acq.sound_speed,
            100 * move,
        )
    else:
        log.info("sound speed: the file's %.0f m/s holds (a quick calibration: %.1f m/s)",
                 acq.sound_speed, found)  # fmt: skip
    return found
