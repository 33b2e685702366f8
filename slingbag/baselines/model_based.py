"""Model-based reconstruction on a voxel grid: the baseline iterative methods are judged
against (MB-PD in the SlingBAG paper, GPAIR's fixed grid of Gaussians).

The unknown is one coefficient per voxel, a ball of the radiator with ``sigma`` equal to
the spacing frozen at the voxel's centre, so the forward model is exactly slingbag's
(:func:`slingbag.model.radiator.forward_signals`, then the sensor response when the file has
one, then a zero-phase Gaussian low-pass, the kind :func:`slingbag.reconstruct` compares
through, as wide as the band the grid's balls radiate: :data:`LOWPASS`).
The solve is

    min_{x >= 0}  0.5 * |A x - b|^2 + lam * TV(x)

by FISTA with adaptive restart, the proximal step being the constrained TV denoiser of
:func:`slingbag.baselines.tv.prox_tv_nonneg`.  ``lam`` comes from the data by the discrepancy
principle (below).  The output volume is the grid's balls splatted on the same grid (the
initial pressure they represent), in the units of the signals.

:func:`model_based_solve` is built of four parts: the operator (:func:`build_problem`: each
share of the sensors' :class:`GridOperator` and data), the step (:func:`fista_step`), the
stopping rule (:class:`WeightRule`: the discrepancy principle and the weight it sets) and
the bookkeeping (:class:`Bookkeeping`: history, progress, checkpoints; :func:`solve_result`).

The signals are scaled to unit peak (undone on output) and passed through the low-pass,
giving ``b``.  The step is ``1 / |A|^2`` from 15 power iterations.  With ``k`` subsets, an
iteration is a FISTA step on ``0.5 |A_s x - b_s|^2 + (lam / k) TV(x)``, ``|A_s|^2`` from the
first subset (the shares are alike) with a 10 % margin, and the discrepancy below is judged
on the mean over the last ``k`` iterations, one pass over the whole array.

Discrepancy principle (``tv=None``): the noise level ``sigma_n`` is the RMS of the samples
of ``b`` that no source in the grid's box can have reached (before the earliest and after
the latest arrival, with a guard of the filters' length and three ball sizes;
:func:`noise_windows`).  The target is ``|A x - b|^2 = TAU^2 * m * sigma_n^2`` (``m``
samples, ``TAU = 1.05``).  The weight starts at ``1e-3`` and, every 10 iterations from
iteration 20, is multiplied by ``ratio ** -GAIN`` (``GAIN = 4``, clipped to ``[1/2, 2]``),
``ratio`` the residual over the target at the extrapolated point, with the momentum
restarted; the run has converged once the step is below ``tol`` and ``ratio`` within
``TAU`` of 1.  Where the model cannot fit the data down to the noise (model mismatch: a
finer structure than the grid holds, another radiator), the weight falls to its floor
``MU_FLOOR = 1e-6`` (plain non-negative least squares, in effect), the run converges there
and a warning says so.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..core.acquisition import Acquisition
from ..core.volume import Volume
from ..errors import InputError
from .tv import prox_tv_nonneg

log = logging.getLogger("slingbag")

#: Low-pass width in units of half the ball size, as ``loss.lowpass`` in the presets.
#: A grid's ball of sigma = the spacing radiates little above ``c / (2 pi sigma)``; through
#: a narrower filter the data keep a band the grid cannot produce, the residual stays far
#: above the noise and the fit chases it.  Measured on the benchmark's 12 x 12 vessels
#: (0.49 mm grid, 100 iterations): SSIM(MAP-z) 0.208 at 1, 0.347 at 2.5, 0.321 at 4, the
#: residual 22, 3.6 and 1.6 times the noise's; the liver through a 2 MHz band-pass (0.39 mm)
#: 0.151, 0.352 and 0.216.
LOWPASS = 2.5
#: The discrepancy principle's factor: the residual aimed at is ``TAU**2`` times the
#: noise's expected energy (Morozov; slightly above 1 as usual, since the fit also
#: absorbs part of the noise).
TAU = 1.05
#: Smallest relative TV weight the discrepancy principle may set.
MU_FLOOR = 1e-6
#: Each update multiplies the weight by ``ratio ** -GAIN``: the residual moves slowly with
#: the weight (a tenth of a decade per decade near the target on the test scenes).
GAIN = 4.0
#: Too few noise samples for an estimate: ask for an explicit ``tv`` instead.
MIN_NOISE_SAMPLES = 200
#: How the grid's balls are radiated.  Every voxel is a ball of the same sigma, one class
#: of :mod:`slingbag.model.gauss_split`, so the uncut closed form by per-class FFT is 2.5-5 x
#: cheaper than the windowed sum (0.3-0.5 mm grids, 144 sensors) and needs no 3-sigma cut.
ALGORITHM = "split"
#: :func:`auto_grid`'s default cost of one iteration, in voxel-sensor pairs (each voxel's
#: ball radiated to and gathered from each sensor): about 0.4 s an iteration forward and
#: back on 2 CPU cores with the split radiator (measured 6-8e-8 s a pair, 0.3-0.5 mm
#: grids, 144 sensors x 2,048 samples), so that a benchmark case takes a minute or two.
PAIR_BUDGET = 6e6
#: Ordered subsets: an iteration sees about this many sensors, an interleaved random share
#: of the array, and the next iteration the next share.  On a large array the gradient
#: of one share points nearly as the whole array's does (each share spans the aperture),
#: so an iteration costs a share's pairs and :func:`auto_grid` can afford a finer grid:
#: the rat liver on all 1,013 sensors gets 0.27 mm instead of 0.52 mm (BENCHMARKS.md).
SUBSET_SENSORS = 128
#: Iterations the benchmark gives the solve (FISTA is stopped there, whatever the
#: discrepancy principle says; docs/benchmark.md says where it stands then).
MB_ITERATIONS = 100


@dataclass
class ModelBasedResult:
    """What :func:`model_based_solve` returns.

    Attributes
    ----------
    volume : Volume
        The initial pressure on the grid, in the units of the signals.
    coefficients : ndarray
        Each voxel's ball amplitude (the unknowns), same shape and units.
    history : dict of ndarray
        Per iteration: ``loss`` (``|A y - b|^2 / |b|^2`` at the extrapolated point, over
        the iteration's share of the sensors), ``discrepancy`` (``|A y - b|^2`` over the
        share's target), ``tv`` (the relative weight),
        ``time`` (s since start).
    attrs : dict
        For the result file: the weight, the noise level, the step, whether it converged.
    """

    volume: Volume
    coefficients: np.ndarray
    history: dict
    attrs: dict = field(default_factory=dict)


class GridOperator:
    """The linear map from grid coefficients to the signals the solve compares.

    ``A x = lowpass(response(forward_signals(centres, x, sigma)))``; :meth:`adjoint` is its
    transpose: the same steps reversed, the radiator's through the backward kernel's p0
    gradient (exact, since the signals are linear in p0).
    """

    def __init__(
        self,
        acq: Acquisition,
        origin,
        spacing,
        shape,
        *,
        response=None,
        lowpass=None,
        algorithm: str = ALGORITHM,
    ):
        self.acq = acq
        self.shape = tuple(int(s) for s in shape)
        spacing = np.broadcast_to(np.asarray(spacing, float), (3,))
        self.sigma = float(spacing.max())
        axes = [
            np.asarray(origin, float)[d] + np.arange(self.shape[d]) * spacing[d] for d in range(3)
        ]
        grid = np.meshgrid(*axes, indexing="ij")
        self.centres = np.stack([g.ravel() for g in grid], axis=1).astype(np.float32)
        self.sigmas = np.full(len(self.centres), self.sigma, np.float32)
        self.response = response
        self.lowpass = lowpass
        from ..model.radiator import RadiatorModel

        self.model = RadiatorModel("gaussian", algorithm=algorithm)

    @property
    def n(self) -> int:
        return len(self.centres)

    def filters(self, signals: np.ndarray) -> np.ndarray:
        """The response and low-pass, in the model's order."""
        from ..model.response import apply_response

        return apply_response(apply_response(signals, self.response), self.lowpass)

    def forward(self, x: np.ndarray) -> np.ndarray:
        from ..model.radiator import faces_of, forward_signals

        a = self.acq
        raw = forward_signals(
            self.centres,
            np.asarray(x, np.float32).ravel(),
            self.sigmas,
            a.positions,
            a.n_samples,
            a.fs,
            a.sound_speed,
            a.t0,
            self.model,
            faces_of(a),
        )
        return self.filters(raw)

    def adjoint(self, r: np.ndarray) -> np.ndarray:
        from ..model.radiator import backward_signals, faces_of
        from ..model.response import correlate_response

        a = self.acq
        g = correlate_response(
            correlate_response(np.asarray(r, np.float32), self.lowpass), self.response
        )
        grads = backward_signals(
            self.centres,
            np.zeros(self.n, np.float32),
            self.sigmas,
            a.positions,
            g,
            a.fs,
            a.sound_speed,
            a.t0,
            self.model,
            faces=faces_of(a),
            positions=False,
        )
        return grads["p0"].astype(np.float64).reshape(self.shape)

    def norm2(self, iterations: int = 15, seed: int = 0) -> float:
        """``|A|^2`` (largest eigenvalue of ``A^T A``) by power iteration, from above
        by a few per cent (the Rayleigh quotient converges from below)."""
        x = np.random.default_rng(seed).random(self.shape)
        lam = 0.0
        for _ in range(int(iterations)):
            x /= np.linalg.norm(x)
            y = self.adjoint(self.forward(x))
            lam = float((x * y).sum())
            x = y
        return 1.05 * lam


def sensor_subsets(n_sensors: int) -> int:
    """How many ordered subsets an array of ``n_sensors`` is split into: shares of about
    :data:`SUBSET_SENSORS`, the nearest count (one, the whole array, up to 1.5 times
    that)."""
    return max(1, int(np.ceil(int(n_sensors) / SUBSET_SENSORS - 0.5)))


def subset_indices(n_sensors: int, subsets: int) -> list:
    """The sensors of each subset: a seeded permutation dealt out in turn, so that each
    share spans the whole aperture."""
    order = np.random.default_rng(0).permutation(int(n_sensors))
    return [np.sort(order[s :: int(subsets)]) for s in range(int(subsets))]


def auto_grid(acq: Acquisition, lo, hi, *, finest: float | None = None, budget=PAIR_BUDGET):
    """A grid over the box ``[lo, hi]`` whose iterations cost about ``budget`` pairs.

    One iteration radiates every voxel's ball to every sensor of one subset
    (:func:`sensor_subsets`) and back, so its cost is ``voxels x sensors per subset``; the
    spacing is the finest (``finest``, default the default preset's ``region.res``) that
    keeps that product under ``budget``, rounded up to two significant digits.  Only the
    box and the array enter: the same rule for any scene.

    Returns
    -------
    origin, spacing, shape
        As :func:`slingbag.core.volume.grid_for_region`.
    """
    from ..core.volume import grid_for_region
    from .ubp import _round_sig

    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if finest is None:
        from ..core.config import load_config

        finest = float(load_config("default")["region"]["res"])
    per_iteration = int(np.ceil(acq.n_sensors / sensor_subsets(acq.n_sensors)))
    unknowns = max(float(budget) / max(per_iteration, 1), 1.0)
    fit = float(np.prod(np.maximum(hi - lo, 1e-12)) / unknowns) ** (1 / 3)
    step = float(finest) if fit <= finest else _round_sig(fit)
    # grid_for_region puts a voxel on both faces, so a coarse step may need one more round.
    while True:
        origin, spacing, shape = grid_for_region(lo, hi, step)
        if np.prod(shape) * per_iteration <= 1.5 * budget or step >= float((hi - lo).max()):
            return origin, spacing, shape
        step = _round_sig(step * 1.05)


def system_matrix_bytes(acq: Acquisition, n_voxels: int, sigma: float, taps: int = 0) -> float:
    """What an explicit sparse system matrix of the grid would take, bytes.

    Each voxel-sensor pair holds the samples its ball's wave reaches: ``6 sigma`` of
    travel (the profile beyond 3 sigma is below 1 %) widened by the filters' ``taps``
    (their lengths less one), each a float32 value and an int32 row index (CSC).
    """
    per_pair = int(np.ceil(6.0 * sigma / acq.sound_speed * acq.fs)) + 1 + int(taps)
    return float(n_voxels) * acq.n_sensors * per_pair * 8.0


def lowpass_response(acq: Acquisition, sigma: float, width: float = LOWPASS):
    """The zero-phase Gaussian low-pass of :func:`slingbag.reconstruct` for balls of
    size ``sigma`` (None when ``width`` is 0): ``width * sigma / 2`` travelled at c."""
    from ..model.response import SensorResponse

    if width <= 0:
        return None
    tau = width * 0.5 * sigma / acq.sound_speed
    half = max(int(np.ceil(4 * tau * acq.fs)), 1)
    t = np.arange(-half, half + 1) / acq.fs
    taps = np.exp(-0.5 * (t / tau) ** 2)
    return SensorResponse(acq.fs, kernel=taps / taps.sum(), kernel_offset=half)


def noise_windows(acq: Acquisition, lo, hi, guard: int = 0) -> np.ndarray:
    """Per sample, whether no source in the box ``[lo, hi]`` can have reached it.

    Sensor ``s`` hears the box only between ``d_near / c`` and ``d_far / c`` (nearest
    point of the box, farthest corner); samples more than ``guard`` samples before or
    after that span hold nothing but noise.

    Returns
    -------
    ndarray of bool, ``acq.signals.shape``
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    pos = acq.positions
    near = np.linalg.norm(pos - np.clip(pos, lo, hi), axis=1)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    far = np.linalg.norm(pos[:, None, :] - corners[None], axis=2).max(axis=1)
    first = (near / acq.sound_speed - acq.t0) * acq.fs - guard
    last = (far / acq.sound_speed - acq.t0) * acq.fs + guard
    n = np.arange(acq.n_samples)[None, :]
    return (n < first[:, None]) | (n > last[:, None])


def noise_level(signals: np.ndarray, quiet: np.ndarray) -> tuple[float, int]:
    """RMS of ``signals`` over the samples marked ``quiet`` (see :func:`noise_windows`),
    and how many samples that is.  About zero, not the mean: a DC offset is as much
    beyond the model as the noise is."""
    vals = np.asarray(signals, np.float64)[quiet]
    if vals.size == 0:
        return 0.0, 0
    return float(np.sqrt(np.mean(vals * vals))), int(vals.size)


def model_based(
    acquisition: Acquisition,
    origin,
    spacing,
    shape,
    *,
    tv: float | None = None,
    iterations: int = 200,
    tol: float = 1e-3,
    **kwargs,
) -> Volume:
    """Reconstruct the initial pressure on a voxel grid with a model-based solve.

    Non-negative least squares with a total-variation penalty, solved by FISTA.  Each voxel
    is a ball of slingbag's radiator frozen at its centre, so the forward model is the one
    :func:`slingbag.reconstruct` fits with (see the model-based section of the benchmark
    page of the documentation, docs/benchmark.md).

    Parameters
    ----------
    acquisition : Acquisition
        Signals, sensor positions, fs, sound speed and t0.
    origin, spacing, shape : 3 floats, float or 3 floats, 3 ints
        The grid: voxel ``[i, j, k]`` sits at ``origin + (i, j, k) * spacing`` (metres).
        Each voxel is a ``gaussian`` ball of sigma = the (largest) spacing.
    tv : float, optional
        TV weight relative to ``max|A^T b|`` (so it does not depend on the signals'
        units).  Default: set by the discrepancy principle, so that the residual comes
        down to the noise level measured in the samples no source in the grid can reach.
    iterations : int
        Most FISTA iterations.
    tol : float
        Converged when an iteration moves the coefficients by less than ``tol`` times
        their norm and (with the discrepancy principle) the weight has settled.
    **kwargs
        The solver's other options: ``response`` (the sensor response in the model;
        default the file's), ``lowpass`` (width of the zero-phase Gaussian low-pass in
        units of half the spacing travelled at c), ``algorithm`` (``"split"`` or
        ``"windowed"``), ``subsets`` (ordered subsets of sensors), ``progress`` (a
        progress bar), ``checkpoint``, ``checkpoint_every`` and ``resume`` (the solver's
        state written every that many iterations, and continued from), and ``callback``
        (``callback(iteration, x)`` after every iteration).

    Returns
    -------
    Volume
        The grid's balls splatted on the same grid: the float32 initial pressure, in the
        units of the signals.
    """
    return model_based_solve(
        acquisition, origin, spacing, shape, tv=tv, iterations=iterations, tol=tol, **kwargs
    ).volume


def model_based_solve(
    acquisition: Acquisition,
    origin,
    spacing,
    shape,
    *,
    tv: float | None = None,
    iterations: int = 200,
    tol: float = 1e-3,
    response=None,
    lowpass: float = LOWPASS,
    algorithm: str = ALGORITHM,
    subsets: int | None = None,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    callback=None,
) -> ModelBasedResult:
    """Reconstruct the initial pressure on a voxel grid with a model-based solve.

    Parameters
    ----------
    acquisition : Acquisition
    origin, spacing, shape
        The grid (voxel ``[i, j, k]`` at ``origin + (i, j, k) * spacing``).  Each voxel is
        a ``gaussian`` ball of sigma = the (largest) spacing.
    tv : float, optional
        TV weight relative to ``max|A^T b|`` (so it does not depend on the signals'
        units).  Default: chosen by the discrepancy principle (module docstring).
    iterations : int
        Most FISTA iterations.
    tol : float
        Converged when an iteration moves the coefficients by less than ``tol`` times
        their norm and (with the discrepancy principle) the weight has settled.
    response : SensorResponse, optional
        Sensor response in the model; default the file's ``sensors/impulse_response``.
    lowpass : float
        Width of the zero-phase Gaussian both model and data pass through, in units of
        half the spacing travelled at c (as ``loss.lowpass`` of the presets); 0: none.
    algorithm : {"split", "windowed"}
        How the radiator evaluates the grid's balls
        (:class:`slingbag.model.radiator.RadiatorModel`): the uncut Gaussian by per-class
        FFT (default, faster on a grid) or cut at 3 sigma.
    subsets : int, optional
        Ordered subsets of sensors: iteration ``i`` fits subset ``i mod subsets`` only
        (:func:`subset_indices`), with the step of that subset's operator norm and the TV
        weight shared out among the subsets.  Default :func:`sensor_subsets`: one (plain
        FISTA) up to 192 sensors.
    progress : bool
        Show a progress bar.
    checkpoint, checkpoint_every, resume
        Write the solver's state (iterate, momentum, dual field, weight, history)
        atomically to ``checkpoint`` every ``checkpoint_every`` iterations;
        ``resume=True`` continues from it exactly as the unbroken run would.
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration.

    Returns
    -------
    ModelBasedResult

    Notes
    -----
    The module docstring says how the signals are scaled, how the step and the ordered
    subsets work and how the discrepancy principle sets the weight.
    """
    t_start = time.perf_counter()
    shape = tuple(int(s) for s in shape)
    _check_arguments(shape, iterations, tv)
    problem = build_problem(
        acquisition, origin, spacing, shape, response, lowpass, algorithm, subsets
    )
    rule = weight_rule(problem, tv)
    books = Bookkeeping(t_start, checkpoint, checkpoint_every, callback)
    state = books.start(problem, rule, resume)
    converged = run_fista(state, problem, rule, books, int(iterations), tol, progress)
    return solve_result(problem, rule, state, converged, algorithm, t_start)


def _check_arguments(shape: tuple, iterations: int, tv: float | None) -> None:
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("model_based", "shape", "3 positive integers", shape)
    if int(iterations) < 1:
        raise InputError("--iterations", None, "a positive integer", iterations)
    if tv is not None and not (np.isfinite(tv) and tv >= 0):
        raise InputError("--tv", None, "a non-negative weight", tv)


# -- The operator: the grid's balls seen by each share of the sensors ----------------------


@dataclass
class GridProblem:
    """Each share's operator and the data it is fitted to.

    Attributes
    ----------
    acq : Acquisition
        The acquisition as given (the operators see its signals scaled to unit peak).
    ops : list of GridOperator
        One per ordered subset, over that share's sensors.
    b : ndarray
        All the signals, scaled to unit peak and low-passed, float64.
    b_shares : list of ndarray
        The rows of ``b`` of each share's sensors.
    energy : float
        ``|b|^2``.
    energies : list of float
        ``|b_s|^2`` of each share (at least 1e-300, a divisor).
    scale : float
        The signals' peak, undone on output.
    origin, spacing : ndarray
        The grid's first voxel and its spacing, 3 values each.
    shape : tuple of int
    response : SensorResponse or None
        The sensor response in the model.
    """

    acq: Acquisition
    ops: list
    b: np.ndarray
    b_shares: list
    energy: float
    energies: list
    scale: float
    origin: np.ndarray
    spacing: np.ndarray
    shape: tuple
    response: object = None

    @property
    def subsets(self) -> int:
        return len(self.ops)

    @property
    def grid(self) -> GridOperator:
        """The first share's operator: its centres, ball size and filters are every
        share's."""
        return self.ops[0]


def build_problem(
    acq: Acquisition, origin, spacing, shape, response, lowpass, algorithm, subsets
) -> GridProblem:
    """Scale the signals to unit peak, deal the sensors out into ``subsets`` shares
    (:func:`sensor_subsets` when None) and build each share's :class:`GridOperator`;
    ``response`` defaults to the file's.  Arguments as :func:`model_based_solve`'s."""
    if not np.all(np.isfinite(acq.signals)):
        raise InputError(acq.source, "signals", "finite values", "NaN or Inf")
    scale = float(np.abs(acq.signals).max())
    if scale == 0:
        raise InputError(acq.source, "signals", "a non-zero signal", "all zeros")
    if response is None and acq.impulse_response is not None:
        from ..model.response import SensorResponse

        response = SensorResponse(acq.fs, kernel=acq.impulse_response)
    spacing = np.broadcast_to(np.asarray(spacing, float), (3,)).copy()
    origin = np.asarray(origin, float).reshape(3)
    scaled = acq.replace(signals=(acq.signals / scale).astype(np.float32))
    k = sensor_subsets(acq.n_sensors) if subsets is None else int(subsets)
    if not 1 <= k <= acq.n_sensors:
        raise InputError("model_based", "subsets", f"1..{acq.n_sensors} subsets", subsets)
    shares = subset_indices(acq.n_sensors, k)
    smooth = lowpass_response(acq, float(spacing.max()), lowpass)
    ops = [
        GridOperator(
            scaled.take_sensors(idx),
            origin,
            spacing,
            shape,
            response=response,
            lowpass=smooth,
            algorithm=algorithm,
        )
        for idx in shares
    ]
    from ..model.response import apply_response

    b = apply_response(scaled.signals, ops[0].lowpass).astype(np.float64)
    b_shares = [b[idx] for idx in shares]
    return GridProblem(
        acq=acq,
        ops=ops,
        b=b,
        b_shares=b_shares,
        energy=float((b * b).sum()),
        energies=[max(float((bs * bs).sum()), 1e-300) for bs in b_shares],
        scale=scale,
        origin=origin,
        spacing=spacing,
        shape=shape,
        response=response,
    )


# -- The step: FISTA with the TV prox and adaptive restart ---------------------------------


@dataclass
class FistaState:
    """What the solve carries from one iteration to the next, all of it in a checkpoint.

    Attributes
    ----------
    it : int
        Iterations done.
    x, x_prev : ndarray
        The iterate and the one before it (the extrapolation's direction).
    t : float
        FISTA's momentum sequence.
    beta : float
        The next extrapolation's factor (0 after a restart).
    dual : ndarray or None
        The TV step's dual field, warm-starting the next step's.
    mu : float
        The relative TV weight.
    lip : float
        The step is ``1 / lip``.
    ref : float or None
        ``max|A^T b|``, what ``mu`` is relative to; None until the first iteration.
    history : dict of list
        As :class:`ModelBasedResult`'s.
    subsets : int
        The ordered subsets the run steps through.
    """

    it: int
    x: np.ndarray
    x_prev: np.ndarray
    t: float
    beta: float
    dual: np.ndarray | None
    mu: float
    lip: float
    ref: float | None
    history: dict
    subsets: int

    @classmethod
    def fresh(cls, problem: GridProblem, mu: float) -> FistaState:
        """At zero with weight ``mu``; ``|A_s|^2`` of the first share, with a 10 % margin
        when there are several (the shares are alike, not equal)."""
        k = problem.subsets
        lip = problem.grid.norm2() * (1.1 if k > 1 else 1.0)
        x = np.zeros(problem.shape)
        history = {"loss": [], "discrepancy": [], "tv": [], "time": []}
        return cls(
            it=0, x=x, x_prev=x.copy(), t=1.0, beta=0.0, dual=None, mu=mu, lip=lip, ref=None,
            history=history, subsets=k,
        )  # fmt: skip

    @classmethod
    def from_checkpoint(cls, st: dict) -> FistaState:
        """From :func:`_load_checkpoint`'s dict (``beta`` 0 and one subset where absent)."""
        plain = ("it", "x", "x_prev", "t", "dual", "mu", "lip", "ref", "history")
        return cls(
            **{name: st[name] for name in plain},
            beta=float(st.get("beta", 0.0)),
            subsets=int(st.get("subsets", 1)),
        )

    def to_checkpoint(self) -> dict:
        """What :func:`_save_checkpoint` writes."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def fista_step(st: FistaState, op: GridOperator, b: np.ndarray, k: int):
    """One proximal gradient step from the extrapolated point on a share's data term
    ``0.5 |A_s x - b_s|^2 + (lam / k) TV(x)``, ``x >= 0``; sets ``st.ref`` on the first
    call and carries the TV step's dual field.  ``st.x`` is left as it was.

    Returns
    -------
    x_new : ndarray
    r2 : float
        ``|A_s y - b_s|^2`` at the extrapolated point ``y``.
    restart : bool
        Whether the momentum points uphill (O'Donoghue & Candes' adaptive restart).
    """
    y = st.x + st.beta * (st.x - st.x_prev)
    resid = op.forward(y) - b
    r2 = float((resid * resid).sum())
    g = op.adjoint(resid)
    if st.ref is None:
        # max|A^T b|, the scale of the data term's pull at x = 0 (y = 0 there);
        # one share's pull is about a k-th of the whole array's.
        st.ref = k * float(np.abs(g).max()) or 1.0
    lam = st.mu * st.ref / k
    x_new, st.dual = prox_tv_nonneg(y - g / st.lip, lam / st.lip, dual=st.dual)
    restart = float(((y - x_new) * (x_new - st.x)).sum()) > 0
    return x_new, r2, restart


def advance(st: FistaState, x_new: np.ndarray, restart: bool) -> None:
    """Move to ``x_new`` and set the next extrapolation, ``x + beta (x - x_prev)``: none
    after a restart."""
    t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * st.t * st.t))
    if restart:
        t_new, st.beta = 1.0, 0.0
    else:
        st.beta = (st.t - 1.0) / t_new
    st.t = t_new
    st.x_prev, st.x = st.x, x_new


def run_fista(
    st: FistaState,
    problem: GridProblem,
    rule: WeightRule,
    books: Bookkeeping,
    iterations: int,
    tol: float,
    progress: bool,
) -> bool:
    """Step through the shares in turn until ``iterations`` are done or the run has
    converged (a step below ``tol`` with the weight settled); returns whether it did."""
    k = problem.subsets
    converged = at_floor = False
    if progress:
        books.open_bar(iterations, st.it)
    try:
        while st.it < iterations:
            share = st.it % k
            x_new, r2, restart = fista_step(st, problem.ops[share], problem.b_shares[share], k)
            st.it += 1
            change = float(np.linalg.norm(x_new - st.x)) / max(float(np.linalg.norm(x_new)), 1e-300)
            books.record(st, r2 / problem.energies[share], rule.discrepancy(r2, share))
            ratio = rule.ratio(st.history)
            mu = rule.update(st.mu, st.it, ratio)
            if mu != st.mu:
                st.mu, restart, change = mu, True, np.inf
            at_floor = rule.at_floor(st.mu, ratio)
            settled = rule.settled(st.it, ratio, at_floor)
            advance(st, x_new, restart)
            books.report(st)
            if change < tol and settled and st.it > 1:
                converged = True
                break
            books.save_if_due(st)
    finally:
        books.close()
    if rule.auto and at_floor:
        log.warning(
            "model-based: the residual stays above the noise level even at the smallest TV "
            "weight (the model cannot fit these data down to the noise): weight at its floor"
        )
    return converged


# -- The stopping rule: the discrepancy principle and the weight it sets --------------------


@dataclass
class WeightRule:
    """The TV weight and whether it has settled: a given weight, or the discrepancy
    principle's (module docstring).

    Attributes
    ----------
    initial : float
        The relative weight the run starts from.
    subsets : int
        Iterations in one pass over the array, one per share.
    targets : list of float, optional
        Each share's target residual, ``TAU^2 m_s sigma_n^2``; None for a given weight.
    noise : float, optional
        The noise level ``sigma_n`` of the scaled signals.
    """

    initial: float
    subsets: int
    targets: list | None = None
    noise: float | None = None

    @property
    def auto(self) -> bool:
        return self.targets is not None

    def discrepancy(self, r2: float, share: int) -> float:
        """A share's residual over its target (NaN for a given weight)."""
        return r2 / self.targets[share] if self.auto else np.nan

    def ratio(self, history: dict) -> float:
        """The residual over the target through one pass over the array: the last
        ``subsets`` iterations, one per share."""
        return float(np.mean(history["discrepancy"][-self.subsets :])) if self.auto else np.nan

    def update(self, mu: float, it: int, ratio: float) -> float:
        """The weight after iteration ``it``: every 10 iterations from the 20th, times
        ``ratio ** -GAIN`` within a factor of 2, down to :data:`MU_FLOOR`."""
        if self.auto and it >= 20 and it % 10 == 0:
            return max(mu * float(np.clip(ratio**-GAIN, 0.5, 2.0)), MU_FLOOR)
        return mu

    def at_floor(self, mu: float, ratio: float) -> bool:
        """Whether the weight is at its floor with the residual still above the target
        (the model cannot reach the noise level)."""
        return self.auto and mu <= MU_FLOOR and ratio > 1.0

    def settled(self, it: int, ratio: float, at_floor: bool) -> bool:
        """A given weight, or the residual at the target, or above it with the weight at
        its floor."""
        return not self.auto or (it >= 20 and (at_floor or abs(np.log(ratio)) < np.log(TAU)))


def weight_rule(problem: GridProblem, tv: float | None) -> WeightRule:
    """The given weight ``tv``, or (None) the discrepancy principle's, its targets from
    the noise level of the quiet samples."""
    if tv is not None:
        return WeightRule(float(tv), problem.subsets)
    noise, count = measure_noise(problem)
    targets = [TAU**2 * bs.size * noise**2 for bs in problem.b_shares]
    log.info(
        "model-based: noise %.3g of the peak from %d quiet samples; target residual "
        "%.3g of the signal energy",
        noise,
        count,
        sum(targets) / problem.energy,
    )
    return WeightRule(1e-3, problem.subsets, targets, noise)


def measure_noise(problem: GridProblem) -> tuple[float, int]:
    """The RMS of the scaled, low-passed signals where no ball of the grid is heard
    (guarded by three ball sizes and the filters' lengths), and how many samples that is;
    too few, or none but zeros, is an error."""
    acq, op = problem.acq, problem.grid
    lo = problem.origin
    hi = problem.origin + (np.asarray(problem.shape) - 1) * problem.spacing
    guard = 3.0 * op.sigma / acq.sound_speed * acq.fs
    for f in (op.response, op.lowpass):
        if f is not None:
            guard += len(f.taps())
    quiet = noise_windows(acq, lo, hi, int(np.ceil(guard)))
    noise, count = noise_level(problem.b, quiet)
    if count < MIN_NOISE_SAMPLES or noise == 0:
        raise InputError(
            acq.source,
            "signals",
            f"at least {MIN_NOISE_SAMPLES} samples before or after any arrival from "
            "the grid, to measure the noise",
            f"{count}",
            hint="give the TV weight explicitly (--tv)",
        )
    return noise, count


# -- The bookkeeping: history, progress, checkpoints and the result -------------------------


class Bookkeeping:
    """What the solve records besides its iterate: the history, the progress bar, the
    callback, and the checkpoint it starts from and writes."""

    def __init__(self, started: float, checkpoint=None, every: int = 0, callback=None):
        self.started = started
        self.path = Path(checkpoint) if checkpoint else None
        self.every = every
        self.callback = callback
        self.bar = None

    def start(self, problem: GridProblem, rule: WeightRule, resume: bool) -> FistaState:
        """The checkpoint's state when resuming from one (it must have as many subsets),
        else a fresh one."""
        if not (resume and self.path is not None and self.path.exists()):
            return FistaState.fresh(problem, rule.initial)
        k = problem.subsets
        st = _load_checkpoint(self.path, problem.shape)
        if int(st.get("subsets", 1)) != k:
            raise InputError(
                str(self.path),
                "subsets",
                f"a checkpoint of a run with {k} sensor subsets",
                st.get("subsets", 1),
            )
        log.info("resumed from %s at iteration %d", self.path, st["it"])
        return FistaState.from_checkpoint(st)

    def open_bar(self, total: int, initial: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, initial=initial, desc="model-based", unit="it", dynamic_ncols=True
        )

    def record(self, st: FistaState, loss: float, discrepancy: float) -> None:
        h = st.history
        h["loss"].append(loss)
        h["discrepancy"].append(discrepancy)
        h["tv"].append(st.mu)
        h["time"].append(time.perf_counter() - self.started)

    def report(self, st: FistaState) -> None:
        """The bar and the callback, after an iteration."""
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{st.history['loss'][-1]:.4f}", tv=f"{st.mu:.2g}", refresh=False
            )
            self.bar.update(1)
        if self.callback is not None:
            self.callback(st.it, st.x)

    def save_if_due(self, st: FistaState) -> None:
        if self.path is not None and self.every > 0 and st.it % self.every == 0:
            _save_checkpoint(self.path, st.to_checkpoint())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def solve_result(
    problem: GridProblem,
    rule: WeightRule,
    st: FistaState,
    converged: bool,
    algorithm: str,
    started: float,
) -> ModelBasedResult:
    """The coefficients back in the signals' units, the volume they splat to, the history
    as arrays and the attributes for the result file; logs the outcome."""
    from ..core.cloud import GaussianCloud
    from ..model.voxelize import voxelize

    op = problem.grid
    coef = st.x * problem.scale
    cloud = GaussianCloud(op.centres.astype(np.float64), coef.ravel(), op.sigmas.astype(np.float64))
    volume = voxelize(cloud, problem.origin, problem.spacing, problem.shape, model="gaussian")
    elapsed = time.perf_counter() - started
    attrs = result_attrs(problem, rule, st, converged, algorithm, elapsed)
    log.info(
        "model-based: %d iterations in %.1f s (%s), TV weight %.3g",
        st.it,
        elapsed,
        "converged" if converged else "iteration limit",
        st.mu,
    )
    hist = {k: np.asarray(v, float) for k, v in st.history.items()}
    return ModelBasedResult(volume=volume, coefficients=coef, history=hist, attrs=attrs)


def result_attrs(
    problem: GridProblem,
    rule: WeightRule,
    st: FistaState,
    converged: bool,
    algorithm: str,
    elapsed: float,
) -> dict:
    """What the result file records of the solve (:attr:`ModelBasedResult.attrs`)."""
    op, scale, shape = problem.grid, problem.scale, problem.shape
    filters = (op.response, op.lowpass)
    return {
        "method": "model_based",
        "model": "gaussian",
        "algorithm": algorithm,
        "ball_sigma": op.sigma,
        "tv_weight": st.mu,
        "tv_rule": "discrepancy" if rule.auto else "given",
        "tv_lambda": st.mu * (st.ref or 0.0) * scale,
        "noise_level": (rule.noise * scale) if rule.noise is not None else np.nan,
        "lipschitz": st.lip,
        "iterations": st.it,
        "sensor_subsets": problem.subsets,
        "converged": bool(converged),
        "signal_scale": scale,
        "seconds": elapsed,
        "region_lo": problem.origin,
        "region_hi": problem.origin + (np.asarray(shape) - 1) * problem.spacing,
        "sensor_response": problem.response is not None,
        "unknowns": int(np.prod(shape)),
        "system_matrix_bytes": system_matrix_bytes(
            problem.acq,
            int(np.prod(shape)),
            op.sigma,
            sum(len(f.taps()) - 1 for f in filters if f is not None),
        ),
    }


def _save_checkpoint(path, st: dict) -> None:
    from ..io.atomic import atomic_path

    arrays = {"x": st["x"], "x_prev": st["x_prev"]}
    if st["dual"] is not None:
        arrays["dual"] = st["dual"]
    for k, v in st["history"].items():
        arrays[f"h_{k}"] = np.asarray(v, float)
    meta = {k: st[k] for k in ("it", "t", "beta", "mu", "lip", "ref", "subsets")}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


def _load_checkpoint(path, shape) -> dict:
    try:
        data = np.load(path)
        meta = json.loads(bytes(data["meta"]).decode())
        x = data["x"]
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is one error
        raise InputError(str(path), None, "a slingbag model-based checkpoint", str(exc)) from None
    if x.shape != tuple(shape):
        raise InputError(str(path), "x", f"a checkpoint of a {shape} grid", x.shape)
    st = dict(meta)
    st["x"] = x
    st["x_prev"] = data["x_prev"]
    st["dual"] = data["dual"] if "dual" in data.files else None
    st["history"] = {k[2:]: list(data[k]) for k in data.files if k.startswith("h_")}
    return st
