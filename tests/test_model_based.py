"""Model-based reconstruction on a voxel grid: operator, TV step, noise level, solve, CLI."""

import functools

import numpy as np
import pytest

import slingbag
from slingbag.baselines.model_based import (
    GridOperator,
    auto_grid,
    lowpass_response,
    model_based_solve,
    noise_level,
    noise_windows,
    sensor_subsets,
    subset_indices,
    system_matrix_bytes,
)
from slingbag.baselines.tv import div, grad, prox_tv_nonneg, tv
from slingbag.model.radiator import RadiatorModel, simulate
from slingbag.model.response import SensorResponse

# 8 x 8 sensors below a 20 x 20 x 8 grid at 0.25 mm, 6 mm above the array.
REGION = (-2.375e-3, 2.375e-3, -2.375e-3, 2.375e-3, 6.0e-3, 7.75e-3)
SPACING = 0.25e-3
N_SAMPLES = 384


def _scene(noise=0.01, model="shells", seed=1):
    phantom = slingbag.vessels_phantom(
        region=REGION, spacing=SPACING, seed=0, n_trunks=2, max_depth=2
    )
    array = slingbag.load_array("planar:8x8:1.2e-3")
    acq = simulate(phantom.cloud, array, model=model, n_samples=N_SAMPLES, noise=noise, seed=seed)
    return phantom, acq


def _grid(phantom):
    v = phantom.volume
    return v.origin, v.spacing, v.shape


def test_grid_is_twenty_by_twenty_by_eight():
    phantom, _ = _scene(noise=0.0)
    assert phantom.volume.shape == (20, 20, 8)


def test_operator_and_adjoint_pass_the_dot_product_test(rng):
    phantom, acq = _scene(noise=0.0)
    origin, spacing, shape = _grid(phantom)
    response = SensorResponse(acq.fs, centre=4e6, bandwidth=0.8)
    op = GridOperator(
        acq, origin, spacing, shape, response=response, lowpass=lowpass_response(acq, SPACING)
    )
    for _ in range(3):
        x = rng.random(shape)
        r = rng.standard_normal((acq.n_sensors, acq.n_samples))
        ax = op.forward(x).astype(np.float64)
        atr = op.adjoint(r)
        lhs = float((ax * r).sum())
        rhs = float((x * atr).sum())
        assert lhs == pytest.approx(rhs, rel=2e-4)
    # And it is the radiator: A x with neither filter is forward_signals of the balls,
    # by either algorithm (the default split one is the uncut profile).
    x = rng.random(shape)
    for algorithm in ("split", "windowed"):
        plain = GridOperator(acq, origin, spacing, shape, algorithm=algorithm)
        sim = simulate(
            slingbag.GaussianCloud(plain.centres, x.ravel(), plain.sigmas),
            acq,
            model=RadiatorModel("gaussian", algorithm=algorithm),
        ).signals
        assert np.allclose(plain.forward(x), sim, rtol=1e-5, atol=1e-6 * np.abs(sim).max())


def test_windowed_operator_is_adjoint_too(rng):
    phantom, acq = _scene(noise=0.0)
    op = GridOperator(acq, *_grid(phantom), algorithm="windowed")
    x = rng.random(op.shape)
    r = rng.standard_normal((acq.n_sensors, acq.n_samples))
    lhs = float((op.forward(x).astype(np.float64) * r).sum())
    assert lhs == pytest.approx(float((x * op.adjoint(r)).sum()), rel=2e-4)


def test_auto_grid_keeps_an_iteration_within_its_budget():
    _, acq = _scene(noise=0.0)  # 64 sensors
    lo, hi = np.zeros(3), np.array([20e-3, 20e-3, 6e-3])
    for budget in (1e6, 3e6, 15e6):
        origin, spacing, shape = auto_grid(acq, lo, hi, budget=budget)
        pairs = np.prod(shape) * acq.n_sensors
        assert 0.5 * budget < pairs <= 1.5 * budget, (budget, shape)
        assert np.allclose(origin, lo) and np.all(
            origin + (np.array(shape) - 1) * spacing >= hi - spacing
        )
    # Never finer than asked, however large the budget.
    _, spacing, _ = auto_grid(acq, lo, hi, finest=0.3e-3, budget=1e12)
    assert spacing[0] == pytest.approx(0.3e-3)
    # More sensors, coarser grid for the same budget.
    more = acq.replace(
        signals=np.zeros((4 * acq.n_sensors, acq.n_samples), np.float32),
        positions=np.tile(acq.positions, (4, 1)),
        normals=None,
        areas=None,
    )
    assert auto_grid(more, lo, hi, budget=3e6)[1][0] > auto_grid(acq, lo, hi, budget=3e6)[1][0]


def test_system_matrix_size_counts_each_pairs_samples():
    _, acq = _scene(noise=0.0)  # 40 MHz, 1,500 m/s: 0.25 mm is 6.67 samples
    n = system_matrix_bytes(acq, 1000, 0.25e-3)
    per_pair = int(np.ceil(6 * 0.25e-3 / 1500 * 40e6)) + 1
    assert n == 1000 * acq.n_sensors * per_pair * 8
    assert system_matrix_bytes(acq, 1000, 0.25e-3, taps=10) == n + 1000 * acq.n_sensors * 80


def test_grad_and_div_are_adjoint(rng):
    x = rng.standard_normal((5, 4, 3))
    p = rng.standard_normal((3, 5, 4, 3))
    assert float((grad(x) * p).sum()) == pytest.approx(-float((x * div(p)).sum()), rel=1e-12)


def _rof(x, v, w):
    return 0.5 * float(((x - v) ** 2).sum()) + w * tv(x)


def test_tv_step_matches_skimage_without_the_constraint(rng):
    from skimage.restoration import denoise_tv_chambolle

    v = rng.standard_normal((12, 10, 6))
    w = 0.4
    ref = denoise_tv_chambolle(v, weight=w, eps=1e-12, max_num_iter=5000)
    ours, _ = prox_tv_nonneg(v, w, nonneg=False, iterations=5000, tol=1e-9)
    assert np.abs(ours - ref).max() < 2e-3 * np.abs(ref).max()
    assert _rof(ours, v, w) <= _rof(ref, v, w) * (1 + 1e-6)


def _chambolle_pock(v, w, iterations):
    """min_{x >= 0} 0.5 |x - v|^2 + w TV(x) by plain primal-dual steps (another method)."""
    step = 1.0 / np.sqrt(12.0)
    x = np.maximum(v, 0)
    x_bar, y = x.copy(), np.zeros((3,) + v.shape)
    for _ in range(iterations):
        y = y + step * grad(x_bar)
        y /= np.maximum(np.sqrt((y * y).sum(axis=0)) / w, 1.0)
        x_new = np.maximum((x + step * div(y) + step * v) / (1 + step), 0.0)
        x_bar, x = 2 * x_new - x, x_new
    return x


def test_tv_step_with_the_constraint_matches_other_solvers(rng):
    v = rng.standard_normal((4, 3, 3)) + 0.2
    w = 0.3
    ours, _ = prox_tv_nonneg(v, w, iterations=20000, tol=1e-12)
    ref = _chambolle_pock(v, w, 50000)
    assert ours.min() >= 0
    assert _rof(ours, v, w) <= _rof(ref, v, w) + 1e-9
    assert np.abs(ours - ref).max() < 1e-4
    # The constraint binds here: clipping the unconstrained step is not the answer.
    free, _ = prox_tv_nonneg(v, w, nonneg=False, iterations=20000, tol=1e-12)
    assert free.min() < 0
    assert _rof(np.maximum(free, 0), v, w) > _rof(ours, v, w) + 1e-4


def test_tv_step_on_a_line_matches_a_quadratic_program(rng):
    from scipy.optimize import minimize

    # On an n x 1 x 1 volume TV is sum |x[i+1] - x[i]|: with d = u - l, u, l >= 0 the
    # step is a smooth QP, solved by brute force.
    v = rng.standard_normal(7)
    w = 0.35
    n = v.size

    def obj(z):
        x, u, l = z[:n], z[n : 2 * n - 1], z[2 * n - 1 :]
        return 0.5 * ((x - v) ** 2).sum() + w * (u + l).sum()

    cons = {"type": "eq", "fun": lambda z: np.diff(z[:n]) - z[n : 2 * n - 1] + z[2 * n - 1 :]}
    z0 = np.concatenate([np.maximum(v, 0), np.zeros(2 * (n - 1))])
    sol = minimize(
        obj,
        z0,
        method="SLSQP",
        bounds=[(0, None)] * len(z0),
        constraints=[cons],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert sol.success
    ours, _ = prox_tv_nonneg(v.reshape(n, 1, 1), w, iterations=20000, tol=1e-12)
    assert np.abs(ours.ravel() - sol.x[:n]).max() < 1e-5


def test_noise_level_from_the_samples_before_and_after_any_arrival():
    phantom, clean = _scene(noise=0.0)
    lo = phantom.volume.origin
    hi = lo + (np.asarray(phantom.volume.shape) - 1) * SPACING
    # Balls on the box's faces radiate from up to 3 sigma outside it: 20 samples here.
    guard = int(np.ceil(3 * SPACING / clean.sound_speed * clean.fs)) + 2
    quiet = noise_windows(clean, lo, hi, guard=guard)
    assert quiet.sum() > 5000
    # No signal in the quiet samples (the phantom's balls reach a ball size outside).
    peak = float(np.abs(clean.signals).max())
    assert float(np.abs(clean.signals[quiet]).max()) < 1e-3 * peak
    # ... and all of the signal outside them: the windows are not just wide.
    assert (~quiet).sum() < 0.8 * quiet.size
    rng = np.random.default_rng(5)
    sigma = 0.02 * peak
    noisy = clean.signals + sigma * rng.standard_normal(clean.signals.shape)
    est, count = noise_level(noisy, quiet)
    assert count == quiet.sum()
    assert est == pytest.approx(sigma, rel=0.05)


def _best_fit_error(vol, truth):
    """Normalised error after the best scale: min_a |a v - t| / |t|."""
    v = vol.astype(np.float64).ravel()
    t = truth.astype(np.float64).ravel()
    a = float(v @ t) / float(v @ v)
    return float(np.linalg.norm(a * v - t) / np.linalg.norm(t))


def test_model_based_beats_ubp_on_a_small_scene():
    # Data from the shells radiator, the grid is gaussian: no inverse crime.
    phantom, acq = _scene(noise=0.01)
    origin, spacing, shape = _grid(phantom)
    base = slingbag.ubp(acq, origin, spacing, shape)
    res = model_based_solve(acq, origin, spacing, shape, iterations=60)
    err_mb = _best_fit_error(res.volume.data, phantom.volume.data)
    err_ubp = _best_fit_error(base.data, phantom.volume.data)
    assert err_mb < 0.6 * err_ubp, (err_mb, err_ubp)
    m_mb = slingbag.metrics(res.volume, phantom.volume)["ssim_map_z"]
    m_ubp = slingbag.metrics(base, phantom.volume)["ssim_map_z"]
    assert m_mb > m_ubp + 0.2, (m_mb, m_ubp)
    assert res.volume.data.min() >= 0
    assert res.coefficients.min() >= 0
    assert res.history["loss"][-1] < 0.5 * res.history["loss"][0]
    assert res.attrs["tv_rule"] == "discrepancy"


def test_discrepancy_principle_meets_its_target_when_the_model_can():
    # Here the data come from the grid's own model, so the residual can reach the noise:
    # the weight must settle where the residual is the noise's energy, not at its floor.
    phantom, acq0 = _scene(noise=0.0)
    origin, spacing, shape = _grid(phantom)
    centres = GridOperator(acq0, origin, spacing, shape).centres
    cloud = slingbag.GaussianCloud(
        centres, phantom.volume.data.ravel(), np.full(len(centres), SPACING)
    )
    array = slingbag.load_array("planar:8x8:1.2e-3")
    noisy = simulate(cloud, array, model="gaussian", n_samples=N_SAMPLES, noise=0.1, seed=3)
    res = model_based_solve(noisy, origin, spacing, shape, iterations=150)
    from slingbag.baselines.model_based import MU_FLOOR, TAU

    assert res.attrs["tv_weight"] > 100 * MU_FLOOR
    assert abs(np.log(res.history["discrepancy"][-1])) < 2 * np.log(TAU)


def test_the_files_sensor_response_is_in_the_model():
    from slingbag.model.response import apply_response

    phantom, clean = _scene(noise=0.0)
    origin, spacing, shape = _grid(phantom)
    taps = SensorResponse(clean.fs, centre=3e6, bandwidth=0.7).taps()
    measured = SensorResponse(clean.fs, kernel=taps)  # as a file holds it: causal
    signals = apply_response(clean.signals, measured)
    rng = np.random.default_rng(2)
    signals = signals + 0.01 * np.abs(signals).max() * rng.standard_normal(signals.shape)
    acq = clean.replace(signals=signals.astype(np.float32), impulse_response=taps)
    with_r = model_based_solve(acq, origin, spacing, shape, iterations=60)
    without = model_based_solve(
        acq.replace(impulse_response=None), origin, spacing, shape, iterations=60
    )
    assert with_r.attrs["sensor_response"] and not without.attrs["sensor_response"]
    err_with = _best_fit_error(with_r.volume.data, phantom.volume.data)
    err_without = _best_fit_error(without.volume.data, phantom.volume.data)
    assert err_with < 0.8 * err_without, (err_with, err_without)


def test_given_weight_is_kept_and_larger_weights_flatten():
    phantom, acq = _scene(noise=0.01)
    origin, spacing, shape = _grid(phantom)
    small = model_based_solve(acq, origin, spacing, shape, tv=1e-3, iterations=30)
    large = model_based_solve(acq, origin, spacing, shape, tv=0.3, iterations=30)
    assert small.attrs["tv_rule"] == "given" and small.attrs["tv_weight"] == 1e-3
    assert np.all(small.history["tv"] == 1e-3)
    assert tv(large.coefficients) < 0.5 * tv(small.coefficients)


def test_ordered_subsets_deal_out_every_sensor_once():
    assert sensor_subsets(64) == 1 and sensor_subsets(192) == 1
    assert sensor_subsets(256) == 2 and sensor_subsets(1013) == 8
    for n, k in ((64, 1), (64, 3), (1013, 8)):
        shares = subset_indices(n, k)
        assert len(shares) == k
        assert np.array_equal(np.sort(np.concatenate(shares)), np.arange(n))
        sizes = [len(s) for s in shares]
        assert max(sizes) - min(sizes) <= 1
    # Dealt from a permutation: a share of a planar array spans its whole aperture.
    array = slingbag.load_array("planar:16x16:1e-3")
    for idx in subset_indices(len(array), 4):
        span = np.ptp(array.positions[idx, :2], axis=0)
        assert np.all(span > 0.85 * np.ptp(array.positions[:, :2], axis=0))


def test_ordered_subsets_solve_as_well_as_the_whole_array():
    # Each iteration sees a quarter of the sensors: about the same image for a quarter of
    # the work per iteration.
    phantom, acq = _scene(noise=0.01)
    origin, spacing, shape = _grid(phantom)
    whole = model_based_solve(acq, origin, spacing, shape, iterations=60)
    shared = model_based_solve(acq, origin, spacing, shape, iterations=60, subsets=4)
    assert whole.attrs["sensor_subsets"] == 1 and shared.attrs["sensor_subsets"] == 4
    err_whole = _best_fit_error(whole.volume.data, phantom.volume.data)
    err_shared = _best_fit_error(shared.volume.data, phantom.volume.data)
    err_ubp = _best_fit_error(slingbag.ubp(acq, origin, spacing, shape).data, phantom.volume.data)
    assert err_shared < 1.15 * err_whole, (err_shared, err_whole)
    assert err_shared < 0.6 * err_ubp, (err_shared, err_ubp)
    with pytest.raises(slingbag.InputError, match="subsets"):
        model_based_solve(acq, origin, spacing, shape, iterations=2, subsets=0)


@pytest.mark.parametrize("subsets", [1, 3])
def test_resumed_run_equals_the_unbroken_one(tmp_path, subsets):
    phantom, acq = _scene(noise=0.01)
    solve = functools.partial(model_based_solve, acq, *_grid(phantom), iterations=25, tol=0)
    full = solve(subsets=subsets)
    ckpt = tmp_path / "mb.ckpt.npz"

    class Stop(Exception):
        pass

    def stop_at(it, x):
        if it == 17:
            raise Stop

    with pytest.raises(Stop):
        solve(subsets=subsets, checkpoint=ckpt, checkpoint_every=5, callback=stop_at)
    assert ckpt.exists()
    resumed = solve(subsets=subsets, checkpoint=ckpt, checkpoint_every=5, resume=True)
    assert np.array_equal(resumed.coefficients, full.coefficients)
    with pytest.raises(slingbag.InputError, match="subsets"):  # another run's checkpoint
        solve(subsets=subsets + 1, checkpoint=ckpt, resume=True)
    # (the splat sums balls in parallel, so only to rounding)
    assert np.allclose(resumed.volume.data, full.volume.data, rtol=1e-5, atol=1e-7)
    for key in full.history:
        if key != "time":
            assert np.array_equal(resumed.history[key], full.history[key], equal_nan=True)


def test_too_few_quiet_samples_asks_for_a_weight():
    phantom, acq = _scene(noise=0.01)
    origin, spacing, shape = _grid(phantom)
    short = acq.replace(signals=acq.signals[:, 150:300])  # only while sources are heard
    short = short.replace(t0=150 / acq.fs)
    with pytest.raises(slingbag.InputError, match="--tv"):
        model_based_solve(short, origin, spacing, shape, iterations=2)
    # With a weight it runs.
    model_based_solve(short, origin, spacing, shape, tv=1e-3, iterations=2)


def test_cli_round_trip_and_bad_input(tmp_path):
    from slingbag.cli import main
    from slingbag.io.native import read_result, write_acquisition

    phantom, acq = _scene(noise=0.01)
    data = tmp_path / "data.h5"
    write_acquisition(data, acq)
    out = tmp_path / "mb.h5"
    region = ",".join(f"{v:g}" for v in REGION)
    argv = [
        "mb",
        str(data),
        "-o",
        str(out),
        f"--region={region}",
        "--spacing",
        str(SPACING),
        "--quiet",
    ]
    assert main(argv + ["--iterations", "4"]) == 0
    res = read_result(out)
    assert res.volume.shape == (20, 20, 8)
    assert res.attrs["method"] == "model_based"
    assert res.attrs["iterations"] == 4
    assert "peak_memory_bytes" in res.attrs and res.attrs["time_s"] > 0
    assert len(res.history["loss"]) == 4
    assert not (tmp_path / "mb.h5.ckpt.npz").exists()
    assert main(argv + ["--tv", "-1"]) == 2
    assert main(argv + ["--resume"]) == 2  # no checkpoint to resume from
    assert main(argv + ["--region=1,2,3"]) == 2
    assert main(argv + ["--subsets", "0"]) == 2
    assert main(argv + ["--subsets", "65"]) == 2  # more shares than the 64 sensors
    assert main(argv + ["--iterations", "4", "--subsets", "2"]) == 0
    assert read_result(out).attrs["sensor_subsets"] == 2


def test_default_cli_spacing_keeps_the_grid_affordable():
    from slingbag.commands.mb import default_spacing
    from slingbag.core.volume import grid_for_region

    lo = np.zeros(3)
    assert default_spacing(lo, np.array([5e-3, 5e-3, 2e-3]), 0.2e-3) == 0.2e-3
    # The deep region inferred on the 144-sensor scene: 28 x 26.6 x 13.8 mm.
    hi = np.array([28e-3, 26.6e-3, 13.8e-3])
    step = default_spacing(lo, hi, 0.2e-3)
    assert step == pytest.approx(0.35e-3)
    n = np.prod(grid_for_region(lo, hi, step)[2])
    assert 200_000 < n < 300_000
