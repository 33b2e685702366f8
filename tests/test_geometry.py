"""The one reading of a region, shared by every option and file that gives one."""

import numpy as np
import pytest

from slingbag.core.geometry import parse_region
from slingbag.errors import InputError

BOX = ([-1e-3, -2e-3, 5e-3], [1e-3, 2e-3, 7e-3])


@pytest.mark.parametrize(
    "value",
    [
        "-1e-3,1e-3,-2e-3,2e-3,5e-3,7e-3",
        [-1e-3, 1e-3, -2e-3, 2e-3, 5e-3, 7e-3],
        (np.array(BOX[0]), np.array(BOX[1])),
    ],
    ids=["text", "six", "lo-hi"],
)
def test_every_form_reads_as_the_same_box(value):
    lo, hi = parse_region(value)
    assert lo.tolist() == BOX[0] and hi.tolist() == BOX[1]


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("1,2,3", "6 numbers"),
        ("0,1e-3,0,1e-3,0,x", "6 numbers"),
        ("0,1e-3,0,1e-3,0,nan", "6 numbers"),
        ("1e-3,0,0,1e-3,0,1e-3", "x0 < x1"),
        ("0,0,0,1e-3,0,1e-3", "x0 < x1"),  # a flat box holds no voxel
        ("-10,10,-10,10,12,18", "millimetres"),
    ],
)
def test_bad_regions_are_refused_in_one_line(value, word):
    with pytest.raises(InputError, match="--region") as info:
        parse_region(value)
    assert word in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("command", ["ubp", "reconstruct"])
def test_commands_refuse_a_region_alike(tmp_path, capsys, command):
    from test_bad_inputs import _planar_acquisition

    from slingbag.cli import main

    _planar_acquisition(tmp_path / "a.h5")
    code = main(
        [command, str(tmp_path / "a.h5"), "-o", str(tmp_path / "o.h5"), "--region=1,0,0,1,0,1"]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "x0 < x1" in err[0]
    assert not (tmp_path / "o.h5").exists()


def test_config_bounds_go_through_the_same_reading(tmp_path):
    from slingbag.core.config import load_config

    bad = tmp_path / "c.toml"
    bad.write_text("[region]\nbounds = [-10.0, 10.0, -10.0, 10.0, 12.0, 18.0]\n")
    with pytest.raises(InputError, match="region.bounds.*millimetres"):
        load_config(bad)


@pytest.mark.parametrize("array", ["planar:6x6:2e-3", "sphere"])
def test_when_no_region_fits_the_signals_the_field_of_view_is_used(rng, caplog, array):
    from slingbag.core.acquisition import Acquisition
    from slingbag.core.arrays import load_array
    from slingbag.core.region import infer_region

    if array == "sphere":
        d = rng.standard_normal((60, 3))
        pos = 20e-3 * d / np.linalg.norm(d, axis=1, keepdims=True)
    else:
        pos = load_array(array).positions
    # One short pulse per sensor at a random time: no point is at a distance that fits
    # most sensors' windows (as a band-pass ring or a wrong sound speed can make it).
    fs, n = 40e6, 2048
    signals = 1e-3 * rng.standard_normal((len(pos), n))
    for s, k in enumerate(rng.integers(100, n - 100, len(pos))):
        signals[s, k : k + 4] += 1.0
    acq = Acquisition(signals.astype(np.float32), pos, fs=fs, sound_speed=1500.0)
    with caplog.at_level("WARNING", logger="slingbag"):
        lo, hi = infer_region(acq, 0.2e-3)
    assert "no consistent region" in caplog.text and "field of view" in caplog.text
    assert np.all(hi > lo)
    span = np.ptp(pos, axis=0).max()
    if array == "sphere":  # about the centre, inside the sphere's reach
        assert np.all(lo < 0) and np.all(hi > 0) and np.all(hi - lo < 3 * span)
    else:  # in front of the array, over its footprint
        assert lo[2] > 0 and hi[2] > lo[2] + 1e-3
        assert lo[0] < pos[:, 0].min() and hi[0] > pos[:, 0].max()


def test_a_planar_array_facing_down_finds_the_region_below_it():
    # The array's face is at z = 20 mm, facing -z (as a probe held above the object):
    # the region is clipped to the side it faces, at the face's own coordinate.
    import slingbag
    from slingbag.core.acquisition import SensorArray
    from slingbag.core.region import infer_region

    up = slingbag.load_array("planar:6x6:2e-3")
    pos = up.positions + [0.0, 0.0, 20e-3]
    down = SensorArray(pos, normals=np.tile([0.0, 0.0, -1.0], (len(pos), 1)))
    box = (-3e-3, 3e-3, -3e-3, 3e-3, 8e-3, 10e-3)
    phantom = slingbag.vessels_phantom(region=box, spacing=0.2e-3, seed=2)
    acq = slingbag.simulate(phantom.cloud, down, n_samples=1024, noise=0.01, seed=0)
    lo, hi = infer_region(acq, 0.2e-3)
    assert hi[2] < 20e-3 and lo[2] < 8.5e-3 < 9.5e-3 < hi[2], (lo, hi)
