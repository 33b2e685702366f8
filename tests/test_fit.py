"""The pieces of slingbag.fit alone: the sensor model's linear parts against their
adjoints (dot-product tests), the region box, the run state's snapshots, the divergence
guard, the plan's schedule, and the size of the loop's functions."""

import numpy as np
import pytest

from slingbag.core.acquisition import Acquisition
from slingbag.core.config import load_config
from slingbag.fit import guard
from slingbag.fit.checkpoint import load_checkpoint, save_checkpoint
from slingbag.fit.params import Calibration
from slingbag.fit.state import Box, CloudState, RunState
from slingbag.model.response import SensorResponse, apply_response, correlate_response

FS = 40e6


def _acq(rng, n_sensors=5, n_samples=256, impulse=None):
    pos = np.c_[rng.uniform(-5e-3, 5e-3, n_sensors), np.zeros((n_sensors, 2))]
    return Acquisition(
        rng.standard_normal((n_sensors, n_samples)).astype(np.float32),
        pos,
        fs=FS,
        sound_speed=1500.0,
        impulse_response=impulse,
    )


def _dot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


@pytest.mark.parametrize("kind", ["none", "bandpass", "file"])
@pytest.mark.parametrize("gains", [False, True])
def test_sensor_model_and_its_adjoint_pass_the_dot_product_test(rng, kind, gains):
    impulse = rng.standard_normal(17) if kind == "file" else None
    acq = _acq(rng, impulse=impulse)
    cfg = load_config("default")
    cfg["response"].update(kind=kind, centre=3e6, bandwidth=0.6)
    if gains:
        cfg["calibrate"]["params"] = ["gain"]
    model = Calibration(acq, cfg)
    if gains:
        model.use_gains(rng.uniform(0.5, 1.5, acq.n_sensors))
    sensors = np.array([0, 2, 3])  # a subset: the model sees only these rows
    x = rng.standard_normal((len(sensors), acq.n_samples)).astype(np.float32)
    y = rng.standard_normal((len(sensors), acq.n_samples)).astype(np.float32)
    lhs = _dot(model.model(x, sensors), y)
    rhs = _dot(x, model.adjoint(x, y, sensors))
    assert lhs == pytest.approx(rhs, rel=1e-5, abs=1e-5 * np.sqrt(_dot(y, y) * _dot(x, x)))


def test_the_loss_low_pass_is_self_adjoint(rng):
    from slingbag.fit.objective import lowpass

    acq = _acq(rng)
    smooth = lowpass(load_config("default"), 0.2e-3, acq, 3.0)
    assert isinstance(smooth, SensorResponse)
    x = rng.standard_normal((4, 300))
    y = rng.standard_normal((4, 300))
    lhs = _dot(apply_response(x, smooth), y)
    assert lhs == pytest.approx(_dot(x, correlate_response(y, smooth)), rel=1e-6)


def test_box_bounds_and_carried_corners():
    box = Box([-1e-3, -2e-3, 5e-3], [1e-3, 2e-3, 8e-3])
    assert box.corners.shape == (8, 3)
    assert np.array_equal(box.lo, [-1e-3, -2e-3, 5e-3])
    assert np.array_equal(box.hi, [1e-3, 2e-3, 8e-3])
    box.corners = box.corners + [0, 0, 1e-4]
    lo32, hi32 = box.bounds32()
    assert lo32.dtype == np.float32 and lo32[2] == np.float32(5.1e-3)


def _run_state(rng, n=10):
    acq = _acq(rng)
    cfg = load_config("default")
    cloud = CloudState(
        rng.uniform(-1e-3, 1e-3, (n, 3)).astype(np.float32),
        rng.uniform(0.5, 1, n).astype(np.float32),
        np.full(n, 2e-4, np.float32),
    )
    cloud.moments["p0"] = (rng.standard_normal(n), rng.uniform(0, 1, n))
    run = RunState(cloud, Calibration(acq, cfg), Box(-np.ones(3), np.ones(3)), rng, 1.0)
    run.guard.rollback = run.snapshot()
    return run, cfg


def test_snapshot_is_a_copy_and_restore_brings_everything_back(rng):
    run, _ = _run_state(rng)
    snap = run.snapshot(it=7)
    p0, moment, corners = run.cloud.p0.copy(), run.cloud.moments["p0"][0].copy(), run.box.corners
    run.cloud.p0 *= 3
    run.cloud.moments["p0"][0][:] = 0
    run.box.corners = run.box.corners * 2
    run.adam.t, run.lr_scale = 9, 0.25
    assert run.restore(snap) == 7
    assert np.array_equal(run.cloud.p0, p0) and np.array_equal(run.cloud.moments["p0"][0], moment)
    assert np.array_equal(run.box.corners, corners)
    assert run.adam.t == 0 and run.lr_scale == 1.0
    run.cloud.p0[:] = -1  # the snapshot is not the live state
    assert np.array_equal(snap["cloud"].p0, p0)


def test_checkpoint_round_trips_the_whole_state(rng, tmp_path):
    run, cfg = _run_state(rng)
    run.it, run.l1_abs, run.guard.retries = 12, 0.3, 1
    run.history["loss"] = [1.0, 0.5]
    run.guard.best_loss, run.guard.best = 0.5, run.snapshot(12)
    path = tmp_path / "c.npz"
    save_checkpoint(path, run, cfg, pass_index=1, pass_start={"t0": 0.0})
    back = load_checkpoint(path, Calibration(_acq(np.random.default_rng(0)), cfg))
    assert back.it == 12 and back.l1_abs == 0.3 and back.guard.retries == 1
    assert np.array_equal(back.cloud.xyz, run.cloud.xyz)
    assert np.array_equal(back.cloud.moments["p0"][1], run.cloud.moments["p0"][1])
    assert np.array_equal(back.guard.best["cloud"].p0, run.guard.best["cloud"].p0)
    assert back.guard.best_loss == 0.5 and back.history["loss"] == [1.0, 0.5]
    assert back.rng.random() == run.rng.random()  # the generator continues alike


def test_divergence_is_a_nan_or_a_fifty_fold_jump():
    ok = {"p0": np.ones(3)}
    assert not guard.diverged(1.0, ok, 0.5, 10)
    assert guard.diverged(np.nan, ok, 0.5, 10)
    assert guard.diverged(1.0, None, 0.5, 10)
    assert guard.diverged(1.0, {"p0": np.array([1.0, np.inf])}, 0.5, 10)
    assert guard.diverged(26.0, ok, 0.5, 10) and not guard.diverged(26.0, ok, 0.5, 3)


def test_the_fine_stage_is_not_judged_by_the_coarse_stages_misfit(rng):
    # The fine band sees detail the coarse band filters out: its first misfit may be far
    # above the coarse stage's best without anything having blown up; an exploded
    # cloud is still caught.
    run, _ = _run_state(rng)
    guard.judge_in_band(run, "coarse")
    run.guard.best_fit = 0.003
    guard.judge_in_band(run, "coarse")  # within a stage the reference stays
    assert run.guard.best_fit == 0.003 and guard.diverged(0.17, {}, run.guard.best_fit, 200)
    guard.judge_in_band(run, "fine")  # the first fine iteration
    assert not guard.diverged(0.17, {}, run.guard.best_fit, 200)
    assert guard.diverged(300.0, {}, run.guard.best_fit, 200)
    guard.judge_in_band(run, "fine")  # raised once, not again after a rollback
    assert run.guard.best_fit == pytest.approx(0.3)
    run.guard.best_fit = 0.17
    assert guard.diverged(9.0, {}, run.guard.best_fit, 201)


def test_guard_undoes_a_recent_density_step_else_rolls_back(rng):
    run, _ = _run_state(rng)
    said = []
    run.it = 20
    before = run.snapshot(20)
    run.cloud.take(np.arange(5))  # a density step that halved the cloud
    guard.note_density_step(run, 0.1, "fine", before, {"pruned": 5})
    run.it = 21
    run.history = {"loss": [0.1] * 21, "balls": [10] * 21, "time": [0] * 21, "stage": [1] * 21}
    assert guard.recover(run, np.nan, 3, said.append)
    assert "undone" in said[-1] and run.it == 20 and run.cloud.n == 10
    assert run.guard.undo is None and run.guard.retries == 0
    assert len(run.history["loss"]) == 20
    run.it = 30  # no density step just before: a rollback, rates halved
    assert guard.recover(run, np.nan, 3, said.append)
    assert "rolled back" in said[-1] and run.it == 20 and run.lr_scale == 0.5
    run.it = 25
    guard.note_step(run, 0.05, "fine")  # the best state: after iteration 25
    best_p0 = run.cloud.p0.copy()
    run.cloud.p0 *= 7
    run.guard.retries = 3
    assert not guard.recover(run, np.nan, 3, said.append)  # out of retries: stop ...
    assert np.array_equal(run.cloud.p0, best_p0)  # ... with the best state
    assert run.it == 25  # the iterations run are not undone


def test_plan_schedule(rng):
    from slingbag.fit.plan import make_plan

    acq = _acq(rng, n_sensors=300, n_samples=512)
    acq = acq.replace(positions=np.c_[rng.uniform(-5e-3, 5e-3, (300, 2)), np.zeros(300)])
    cfg = load_config("default")
    region = [-2e-3, 2e-3, -2e-3, 2e-3, 4e-3, 6e-3]
    plan = make_plan(acq, cfg, region=region, spacing=None, iterations=90, seed=None)
    assert plan.n_coarse == 50 and plan.n_fine == 40  # the preset's 200:160
    assert plan.stage(49) == "coarse" and plan.stage(50) == "fine"
    assert plan.batch == 256 and len(plan.sensors(rng, "coarse")) == 256
    assert plan.l1_relative == pytest.approx(cfg["loss"]["l1"] * np.sqrt(256 / 300))  # 300 sensors
    lr = plan.learning_rates(10, 2.0, 1.0)
    assert lr["xyz"] == 0 and lr["p0"] == pytest.approx(cfg["coarse"]["lr_p0"] * 2.0)
    every = cfg["fine"]["decay_every"]
    late = plan.learning_rates(50 + 2 * every, 2.0, 0.5)
    assert late["p0"] == pytest.approx(cfg["fine"]["lr_p0"] * 2.0 * 0.5 * cfg["fine"]["decay"] ** 2)
    assert plan.meas.dtype == np.float32 and np.abs(plan.meas).max() == pytest.approx(1.0)


def test_the_fine_stage_reads_a_budget_of_samples():
    from slingbag.fit.plan import fine_batch_size

    cfg = load_config("default")
    cfg["fine"]["batch_samples"] = 2**21
    assert fine_batch_size(cfg, 576, 2048) == 576  # all of them fit
    assert fine_batch_size(cfg, 1013, 4096) == 512  # a share that holds 2^21 samples
    assert fine_batch_size(cfg, 300, 16384) == 256  # never fewer than the coarse stage's
    cfg["fine"]["batch_samples"] = 0
    assert fine_batch_size(cfg, 576, 2048) == 256
    cfg["loss"]["batch_sensors"] = 100
    assert fine_batch_size(cfg, 576, 2048) == 100


def test_the_l1_weight_falls_with_the_square_root_of_the_sensor_count_beyond_a_reference():
    from slingbag.fit.plan import l1_relative_weight

    cfg = load_config("default")
    cfg["loss"].update(l1=0.3, l1_band_limited=0.6, l1_sensors=256)
    assert l1_relative_weight(cfg, False, 256) == pytest.approx(0.3)
    assert l1_relative_weight(cfg, False, 1024) == pytest.approx(0.15)  # 4 x the sensors: half
    assert l1_relative_weight(cfg, True, 1024) == pytest.approx(0.6)  # a band hides from all alike
    assert l1_relative_weight(cfg, False, 576) == pytest.approx(0.2)
    assert l1_relative_weight(cfg, False, 49) == pytest.approx(0.3)  # never raised on small arrays
    cfg["loss"]["l1_sensors"] = 0
    assert l1_relative_weight(cfg, False, 1024) == pytest.approx(0.3)  # not scaled


def test_the_best_state_is_of_the_current_stage(rng):
    # Coarse- and fine-stage losses are in different bands: a coarse best of 0.1 must not
    # outlive the switch, or a run stopped by the guard in the fine stage would hand
    # back a cloud from before it.
    run, _ = _run_state(rng)
    guard.note_step(run, 0.1, "coarse")
    run.it = 5
    guard.note_step(run, 0.5, "fine")
    assert run.guard.best_stage == "fine" and run.guard.best["it"] == 6
    guard.note_step(run, 0.7, "fine")  # worse, same band: kept
    assert run.guard.best["it"] == 6 and run.guard.best_loss == 0.5


def test_output_spacing_is_the_smallest_kept_ball():
    from slingbag.fit.plan import output_spacing

    cfg = load_config("default")
    res = cfg["region"]["res"]
    assert output_spacing(cfg) == pytest.approx(cfg["density"]["prune_sigma"] * res)
    assert output_spacing(cfg, 0.3e-3) == 0.3e-3  # the caller's spacing wins
    cfg["output"]["spacing"] = 0.25e-3
    assert output_spacing(cfg) == 0.25e-3
    cfg["output"]["spacing"] = 0.0
    cfg["density"]["prune_sigma"] = 2.0  # never coarser than res
    assert output_spacing(cfg) == res


def test_the_files_impulse_response_is_in_the_model_unless_turned_off(rng, caplog):
    from slingbag.commands.reconstruct import _overrides
    from slingbag.fit.params import build_response
    from slingbag.fit.plan import adapt_to_response

    taps = np.exp(-np.arange(24) / 4.0) * np.sin(np.arange(24))
    with_ir = _acq(rng, impulse=taps)
    cfg = load_config("default")
    assert cfg["response"]["kind"] == "auto"
    with caplog.at_level("INFO", logger="slingbag"):
        used = adapt_to_response(cfg, with_ir)
    assert used["response"]["kind"] == "file" and cfg["response"]["kind"] == "auto"
    assert "sensors/impulse_response (24 taps)" in caplog.text and "--response none" in caplog.text
    assert np.allclose(build_response(used, with_ir).kernel, taps)
    # Without one in the file there is nothing to say and nothing in the model.
    caplog.clear()
    with caplog.at_level("INFO", logger="slingbag"):
        plain = adapt_to_response(cfg, _acq(rng))
    assert plain["response"]["kind"] == "none" and "impulse_response" not in caplog.text
    # --response none, as the CLI passes it, leaves the file's response out.
    args = type("Args", (), {"calibrate": None, "calibration_passes": None, "response": "none"})
    off = load_config("default", overrides=_overrides(args))
    assert adapt_to_response(off, with_ir)["response"]["kind"] == "none"
    assert build_response(off, with_ir) is None
