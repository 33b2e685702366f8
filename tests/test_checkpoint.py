"""A resumed run is the unbroken run: with a sensor response (L1 on), and when the run
diverges after the resume (the rollback snapshot and the best state come back too)."""

import json

import numpy as np
import pytest
from test_reconstruct import REGION, _fast_cfg, _small_case

from slingbag.fit.reconstruct import reconstruct


class Stop(Exception):
    pass


def _response_cfg(iterations=40, **run):
    cfg = _fast_cfg(iterations)
    # A sensor response in the model turns the L1 term on (loss.l1_band_limited).
    cfg["response"].update(kind="bandpass", centre=2e6, bandwidth=0.8)
    cfg["run"].update(run)
    return cfg


def _run(acq, cfg, ckpt=None, stop_at=None, poison_at=None, resume=False):
    """Reconstruct; stop (raise) after iteration ``stop_at``; make the cloud NaN once
    after iteration ``poison_at`` (the next loss diverges)."""
    poisoned = []

    def callback(it, loss, state):
        if it == poison_at and not poisoned:
            poisoned.append(it)
            state.p0[0] = np.nan
        if it == stop_at:
            raise Stop

    kw = dict(region=REGION, progress=False, seed=4, callback=callback)
    if ckpt is not None:
        kw.update(checkpoint=ckpt, checkpoint_every=5, resume=resume)
    return reconstruct(acq, cfg, **kw)


def _stopped_then_resumed(acq, cfg, tmp_path, **kw):
    ckpt = tmp_path / "run.ckpt.npz"
    with pytest.raises(Stop):
        _run(acq, cfg, ckpt, stop_at=17)
    assert ckpt.exists()
    return _run(acq, cfg, ckpt, resume=True, **kw), ckpt


def _same(a, b):
    assert a.cloud.n == b.cloud.n
    assert np.array_equal(a.cloud.xyz, b.cloud.xyz)
    assert np.array_equal(a.cloud.p0, b.cloud.p0)
    assert np.array_equal(a.cloud.sigma, b.cloud.sigma)
    assert np.array_equal(a.history["loss"], b.history["loss"])


def test_resume_with_a_sensor_response_and_l1_is_the_unbroken_run(rng, tmp_path):
    truth, acq = _small_case(rng)
    cfg = _response_cfg()
    assert cfg["loss"]["l1_band_limited"] > 0
    full = _run(acq, cfg)
    resumed, _ = _stopped_then_resumed(acq, cfg, tmp_path)
    _same(resumed, full)


@pytest.mark.parametrize("retries", [3, 0])
def test_divergence_after_a_resume_rolls_back_as_the_unbroken_run(rng, tmp_path, retries):
    # The checkpoint is from iteration 10, the poison after 21.  With retries left the
    # run rolls back to the snapshot of the last density step (15); with none it stops
    # with the best state so far.
    truth, acq = _small_case(rng)
    cfg = _response_cfg(max_retries=retries)
    full = _run(acq, cfg, poison_at=21)
    resumed, _ = _stopped_then_resumed(acq, cfg, tmp_path, poison_at=21)
    _same(resumed, full)


def test_checkpoint_holds_no_pickle(rng, tmp_path, monkeypatch):
    # A calibrated, two-pass run: the checkpoint holds the calibration's state and how the
    # pass started; writing and resuming it must not go through pickle.
    import pickle

    def refuse(*args, **kw):
        raise AssertionError("pickle used")

    for name in ("dump", "dumps", "load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    truth, acq = _small_case(rng)
    cfg = _response_cfg(20)
    cfg["calibrate"]["params"] = ["t0", "gain"]
    cfg["calibrate"]["passes"] = 2
    ckpt = tmp_path / "run.ckpt.npz"
    seen = []

    def stop_in_pass_two(it, loss, state):
        seen.append(it)
        if seen.count(17) == 2:
            raise Stop

    with pytest.raises(Stop):
        reconstruct(
            acq,
            cfg,
            region=REGION,
            progress=False,
            seed=4,
            callback=stop_in_pass_two,
            checkpoint=ckpt,
            checkpoint_every=5,
        )
    with np.load(ckpt, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
        meta = json.loads(bytes(data["meta"]).decode())
    assert meta["pass"] == 1 and meta["loop"]["l1_abs"] > 0
    assert meta["loop"]["pass_start"]["t0"] != acq.t0  # the first pass's learned t0
    resumed = _run(acq, cfg, ckpt, resume=True)
    assert resumed.attrs["calibration_passes"] == 2


def test_a_checkpoint_of_the_old_layout_is_one_clear_error(rng, tmp_path):
    from slingbag.errors import InputError

    truth, acq = _small_case(rng)
    ckpt = tmp_path / "old.ckpt.npz"
    meta = json.dumps({"it": 5, "pass": 0}).encode()
    np.savez(ckpt, meta=np.frombuffer(meta, np.uint8), cal=np.zeros(4, np.uint8))
    with pytest.raises(InputError, match="older layout"):
        _run(acq, _response_cfg(), ckpt, resume=True)


def test_a_checkpoint_of_other_data_or_settings_is_refused(rng, tmp_path):
    from slingbag.errors import InputError

    truth, acq = _small_case(rng)
    cfg = _response_cfg()
    ckpt = tmp_path / "run.ckpt.npz"
    with pytest.raises(Stop):
        _run(acq, cfg, ckpt, stop_at=17)
    other = acq.replace(signals=acq.signals + 0.01 * rng.standard_normal(acq.signals.shape))
    with pytest.raises(InputError, match="other data or settings"):
        _run(other, cfg, ckpt, resume=True)
    changed = json.loads(json.dumps(cfg))
    changed["loss"]["l1_band_limited"] = 0.5
    with pytest.raises(InputError, match="other data or settings"):
        _run(acq, changed, ckpt, resume=True)
    _run(acq, cfg, ckpt, resume=True)  # its own data and settings resume


def test_resuming_with_other_iterations_or_seed_is_refused(rng, tmp_path):
    # The stages' lengths set the switch, the decay and the density schedule: another
    # --iterations would not be the run the checkpoint belongs to; nor would another seed.
    from slingbag.errors import InputError

    truth, acq = _small_case(rng)
    cfg = _response_cfg()
    ckpt = tmp_path / "run.ckpt.npz"
    with pytest.raises(Stop):
        _run(acq, cfg, ckpt, stop_at=17)
    kw = dict(region=REGION, progress=False, checkpoint=ckpt, checkpoint_every=5, resume=True)
    with pytest.raises(InputError, match="other data or settings"):
        reconstruct(acq, cfg, seed=4, iterations=60, **kw)
    with pytest.raises(InputError, match="other data or settings"):
        reconstruct(acq, cfg, seed=5, **kw)
