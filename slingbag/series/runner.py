"""Reconstruct a series of frames, each warm-started from its predecessor, on Dask.

Dynamic photoacoustic imaging records hundreds of frames of nearly the same object, so
the cloud of frame ``k - 1`` is a far better start for frame ``k`` than a fresh
initialisation: a short fine stage (preset ``warm``) reaches the quality of a full cold
reconstruction.

The frames are cut into chunks of consecutive frames; each chunk is one task on a Dask
distributed cluster.  Frame 0 is reconstructed cold once (the *reference*); the first
chunk goes on from it, and every other chunk starts its first frame from the reference
too, so chunks run in parallel.  Every finished chunk is written at once to a part file
beside the output (``SERIES.h5.parts/chunk_0003.h5``), so a failure or an interruption
loses only unfinished chunks, and a rerun skips the finished ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from ..core.volume import grid_for_region
from ..errors import InputError, ReconstructionError
from .frames import FrameRef, _as_item, _fingerprint_item, _load
from .store import SeriesResult, _part_path, _read_part, _write_part, write_series

log = logging.getLogger("slingbag")

DEFAULT_CHUNK = 8


# --------------------------------------------------------------------------- worker side

_WORKER_STATE = {"arch": None, "thread": None}
# Dask runs tasks on a thread pool, but Taichi must compile and launch kernels on the
# thread that initialised it.  The plugin gives each worker one dedicated thread for that,
# and every task of a series is annotated to run there.
EXECUTOR = "slingbag-taichi"


def _ensure_backend(arch: str | None, cpu_threads: int | None) -> None:
    """Start Taichi once per worker process, on the calling thread.

    Called by :class:`TaichiPlugin` on its thread, and by every task as a guard.  Needs
    process workers: a worker thread inside the client's process would restart the
    client's Taichi.
    """
    if _WORKER_STATE["arch"] is not None:
        if _WORKER_STATE["thread"] not in (None, threading.get_ident()):
            raise ReconstructionError(
                "Taichi was started on another thread of this worker; series tasks must run "
                f"on the {EXECUTOR!r} executor of slingbag.series.TaichiPlugin"
            )
        return
    if cpu_threads:
        # Taichi sizes its CPU thread pool from this variable; several workers on one
        # machine would otherwise each start one thread per core and fight for them.
        os.environ.setdefault("TI_CPU_MAX_NUM_THREADS", str(int(cpu_threads)))
    from .. import backend

    if backend.current_arch() is not None:
        # Started in this process before, on a thread we cannot know (e.g. by a script that
        # the spawned worker re-imported): restart it here, where the kernels will run.
        backend._taichi().reset()
        backend._state["arch"] = None
    _WORKER_STATE["arch"] = backend.init(arch)
    _WORKER_STATE["thread"] = threading.get_ident()


class TaichiPlugin(WorkerPlugin):
    """Dask worker plugin: one thread per worker that starts Taichi and runs the frames.

    Parameters
    ----------
    arch : str, optional
        Taichi backend (see :func:`slingbag.init`); None: ``SLINGBAG_ARCH`` or auto.
    cpu_threads : int, optional
        Taichi CPU threads per worker (default: Taichi's own, one per core).
    """

    name = "slingbag-taichi"

    def __init__(self, arch: str | None = None, cpu_threads: int | None = None):
        self.arch = arch
        self.cpu_threads = cpu_threads

    def setup(self, worker=None):
        from concurrent.futures import ThreadPoolExecutor

        if worker is None or EXECUTOR in worker.executors:
            return
        pool = ThreadPoolExecutor(1, thread_name_prefix=EXECUTOR)
        # Started here, on the pool's only thread, so the first task starts at once.
        pool.submit(_ensure_backend, self.arch, self.cpu_threads).result()
        worker.executors[EXECUTOR] = pool


def _reconstruct_frame(item, cfg, opts, seed, init_cloud) -> dict:
    """One frame, as plain arrays (cheap to pickle back to the client)."""
    from ..fit.reconstruct import reconstruct

    acq = _load(item)
    t0 = time.perf_counter()
    rec = reconstruct(
        acq,
        cfg,
        region=opts["region"],
        spacing=opts["spacing"],
        iterations=opts["iterations"] if init_cloud is None else opts["warm_iterations"],
        seed=seed,
        progress=False,
        init_cloud=init_cloud,
    )
    seconds = time.perf_counter() - t0
    if rec.volume.shape != tuple(opts["shape"]):
        raise ReconstructionError(
            f"frame volume {rec.volume.shape} differs from the series grid {opts['shape']}"
        )
    return {
        "cloud": rec.cloud,
        "volume": rec.volume.data,
        "history": rec.history,
        "seconds": seconds,
        "warm": init_cloud is not None,
        "signal_scale": float(rec.attrs["signal_scale"]),
    }


def _report(topic: str | None, index: int, seconds: float) -> None:
    """Tell the client a frame is done (progress only: losing the message is harmless)."""
    if topic is None:
        return
    try:
        from distributed import get_worker

        get_worker().log_event(topic, {"frame": int(index), "seconds": float(seconds)})
    except Exception:  # noqa: BLE001 - not on a worker, or the worker is closing
        pass


def _reference_task(item, cfg, opts, topic) -> dict:
    """Frame 0, cold-started: the start of the first chunk and of every other chunk."""
    _ensure_backend(opts["arch"], opts["cpu_threads"])
    out = _reconstruct_frame(item, cfg, opts, opts["seed"], None)
    _report(topic, 0, out["seconds"])
    return out


def _chunk_task(chunk_id, indices, items, reference, warm_cfg, opts, topic) -> dict:
    """Frames ``indices`` in order, each warm-started from the one before.

    The first chunk's first frame is the reference itself; any other chunk's first frame
    starts from the reference's cloud.
    """
    _ensure_backend(opts["arch"], opts["cpu_threads"])
    frames = {}
    previous = reference["cloud"]
    for index, item in zip(indices, items, strict=True):
        if index == 0:
            frames[0] = reference
            continue
        out = _reconstruct_frame(item, warm_cfg, opts, opts["seed"] + index, previous)
        frames[index] = out
        previous = out["cloud"]
        _report(topic, index, out["seconds"])
    return {"chunk": chunk_id, "frames": frames}


# --------------------------------------------------------------------------- client side


def reconstruct_series(
    frames,
    config=None,
    client=None,
    *,
    warm_config=None,
    region=None,
    spacing: float | None = None,
    iterations: int | None = None,
    warm_iterations: int | None = None,
    seed: int | None = None,
    chunk: int = DEFAULT_CHUNK,
    workers: int | None = None,
    scheduler: str | None = None,
    output=None,
    progress: bool = True,
    arch: str | None = None,
) -> SeriesResult:
    """Reconstruct a series of frames, each warm-started from the frame before.

    Parameters
    ----------
    frames : sequence of Acquisition, FrameRef or path
        The frames in time order (see :func:`expand_inputs` for folders and multi-frame
        files).
    config : dict or str, optional
        Configuration of the cold start of frame 0 (default preset if None).
    client : distributed.Client, optional
        Run on this client's cluster.  If None: ``scheduler`` if given, else a fresh
        in-process ``LocalCluster`` of ``workers`` processes with one thread each.
    warm_config : dict or str, optional
        Configuration of the warm-started frames (preset ``warm`` if None).
    region : (lo, hi) or 6 floats, optional
        Box in metres; default inferred once from frame 0, so every volume shares a grid.
    spacing : float, optional
        Output voxel size (m); default the cold configuration's.
    iterations, warm_iterations : int, optional
        Total iterations of the cold and of the warm frames (default: the presets').
    seed : int, optional
        Frame ``k`` uses ``seed + k`` (default seed: the cold configuration's).
    chunk : int
        Consecutive frames per task.  Smaller chunks spread over more workers; every chunk
        after the first starts from frame 0's cloud rather than its predecessor's.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead.
    output : path, optional
        Write the series there (:func:`write_series`); finished chunks are kept in
        ``<output>.parts/`` meanwhile and skipped by a rerun.
    progress : bool
        Show frames done, time per frame and ETA.
    arch : str, optional
        Taichi backend on the workers (default: ``SLINGBAG_ARCH`` or auto).

    Returns
    -------
    SeriesResult
        Every frame's volume (on one grid), cloud and history, in time order.

    Raises
    ------
    ReconstructionError
        When a chunk fails; the other chunks still finish, and with ``output`` their part
        files stay for the next run.
    """
    plan = _make_plan(
        frames, config, warm_config, region=region, spacing=spacing, iterations=iterations,
        warm_iterations=warm_iterations, seed=seed, chunk=chunk, arch=arch,
    )  # fmt: skip
    parts_dir, finished = _finished_parts(output, plan)
    _reconstruct_unfinished(plan, finished, parts_dir, client, scheduler, workers, progress)
    result = _collect(plan, finished)
    if output is not None:
        write_series(output, result)
        shutil.rmtree(parts_dir, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- client side: plan


@dataclass(frozen=True)
class SeriesPlan:
    """What a series fixes before its first task: the frames and their chunks, the
    configurations, the one grid every volume shares and what a chunk depends on.

    Attributes
    ----------
    items : list
        The frames (Acquisition or FrameRef) in time order.
    chunk : int
        Frames per chunk.
    chunks : list of list of int
        Each chunk's frame indices.
    cold_cfg, warm_cfg : dict
        Configurations of frame 0 and of the warm-started frames (same ``region.res``).
    seed : int
        Frame ``k`` uses ``seed + k``.
    lo, hi : numpy.ndarray
        The region (metres).
    origin, spacing : numpy.ndarray
        The volumes' grid.
    opts : dict
        The tasks' settings (region, spacing, shape, iterations, seed, arch, cpu_threads).
    settings : dict
        The settings every chunk depends on (part of its fingerprint).
    frame_fps : list of str
        Each frame's fingerprint.
    """

    items: list
    chunk: int
    chunks: list
    cold_cfg: dict
    warm_cfg: dict
    seed: int
    lo: np.ndarray
    hi: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    opts: dict
    settings: dict
    frame_fps: list

    def fingerprint(self, cid: int) -> str:
        """What chunk ``cid``'s part file must have been written for."""
        # A chunk depends on the settings, on frame 0 (its start) and on its own frames
        # only, so fixing one bad input file redoes only the chunk that holds it.
        used = sorted({0, *self.chunks[cid]})
        text = json.dumps([self.settings, [self.frame_fps[k] for k in used]], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()


def _make_plan(
    frames, config, warm_config, *, region, spacing, iterations, warm_iterations, seed, chunk, arch
) -> SeriesPlan:
    """The :class:`SeriesPlan` of :func:`reconstruct_series`'s arguments (checked)."""
    from ..core.config import to_toml
    from ..fit.plan import adapt_to_response, output_spacing, resolve_region

    items, chunk = _checked_frames(frames, chunk)
    cold_cfg, warm_cfg = _configs(config, warm_config)
    _refuse_timing_params(cold_cfg, warm_cfg)
    seed = int(cold_cfg["init"]["seed"] if seed is None else seed)
    # One grid for all frames, fixed here, so the volumes stack.
    first = _load(items[0])
    # A band-limited response may need a finer res (the same for every frame).
    cold_cfg = adapt_to_response(cold_cfg, first)
    warm_cfg = _same_res(warm_cfg, cold_cfg)
    res = float(cold_cfg["region"]["res"])
    lo, hi = resolve_region(region, cold_cfg, first, res)
    out_spacing = output_spacing(cold_cfg, spacing)
    origin, spc, shape = grid_for_region(lo, hi, out_spacing)
    opts = {
        "region": (np.asarray(lo, float), np.asarray(hi, float)),
        "spacing": out_spacing,
        "shape": tuple(shape),
        "iterations": iterations,
        "warm_iterations": warm_iterations,
        "seed": seed,
        "arch": arch or os.environ.get("SLINGBAG_ARCH") or None,
        "cpu_threads": None,
    }
    settings = {
        "chunk": chunk,
        "region": [list(map(float, lo)), list(map(float, hi))],
        "spacing": out_spacing,
        "cold": to_toml(cold_cfg),
        "warm": to_toml(warm_cfg),
        "iterations": iterations,
        "warm_iterations": warm_iterations,
        "seed": seed,
    }
    return SeriesPlan(
        items=items,
        chunk=chunk,
        chunks=_chunks(len(items), chunk),
        cold_cfg=cold_cfg,
        warm_cfg=warm_cfg,
        seed=seed,
        lo=lo,
        hi=hi,
        origin=origin,
        spacing=spc,
        opts=opts,
        settings=settings,
        frame_fps=[_fingerprint_item(i) for i in items],
    )


def _checked_frames(frames, chunk) -> tuple[list, int]:
    """The frames as items and the chunk length, refusing no frames and empty chunks."""
    items = [_as_item(f) for f in frames]
    if not items:
        raise InputError("frames", None, "at least one frame")
    chunk = int(chunk)
    if chunk < 1:
        raise InputError("--chunk", None, "a positive number of frames per chunk", got=chunk)
    return items, chunk


def _chunks(n_frames: int, chunk: int) -> list:
    return [list(range(s, min(s + chunk, n_frames))) for s in range(0, n_frames, chunk)]


def _configs(config, warm_config):
    from ..core.config import load_config

    cold = load_config() if config is None else config
    if isinstance(cold, str):
        cold = load_config(cold)
    warm = load_config("warm") if warm_config is None else warm_config
    if isinstance(warm, str):
        warm = load_config(warm)
    return cold, _same_res(warm, cold)


def _same_res(warm: dict, cold: dict) -> dict:
    """The warm configuration with the cold one's ``region.res`` (a copy if it differed)."""
    if warm["region"]["res"] != cold["region"]["res"]:
        # Ball sizes and steps are in units of res: one frame to the next must agree.
        log.info("warm config: region.res set to the cold config's %g m", cold["region"]["res"])
        warm = json.loads(json.dumps(warm))
        warm["region"]["res"] = cold["region"]["res"]
    return warm


def _refuse_timing_params(*cfgs) -> None:
    """Refuse configurations that learn the sound speed or t0."""
    from ..fit.params import timing_params

    for cfg in cfgs:
        timing = timing_params(cfg)
        if timing:
            # Learned per frame they would move each frame's grid; a series shares one.
            raise InputError(
                "calibrate.params",
                None,
                "no sound_speed or t0 in a series",
                timing,
                hint="calibrate one frame with `slingbag reconstruct --calibrate` and pass "
                "the values to the series (--sound-speed; t0 in the files)",
            )


def _finished_parts(output, plan: SeriesPlan) -> tuple[Path | None, dict]:
    """The folder of part files beside ``output`` (created) and the chunks a previous run
    finished there for this plan (chunk id -> its frames); ``(None, {})`` without output."""
    if output is None:
        return None, {}
    out_path = Path(output)
    if not out_path.parent.exists():
        raise InputError(str(out_path), None, "an output path in an existing folder")
    parts_dir = out_path.with_name(out_path.name + ".parts")
    finished = {}
    if parts_dir.is_dir():
        for cid, indices in enumerate(plan.chunks):
            p = _part_path(parts_dir, cid)
            if p.exists():
                got = _read_part(p, plan.fingerprint(cid), indices)
                if got is not None:
                    finished[cid] = got
        if finished:
            log.info("resuming: %d of %d chunks already done", len(finished), len(plan.chunks))
    parts_dir.mkdir(exist_ok=True)
    return parts_dir, finished


# --------------------------------------------------------------------------- client side: submit


class _Progress:
    """Frames done, per-frame time and ETA; fed by worker events and finished chunks.

    A frame reported by a worker that later dies is counted once: the bar counts distinct
    frame indices.
    """

    def __init__(self, total, initial, enabled):
        self.lock = threading.Lock()
        self.done = set(initial)
        self.seconds = {}
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=len(self.done),
                desc="series",
                unit="frame",
                dynamic_ncols=True,
            )

    def frame(self, index, seconds):
        with self.lock:
            self.seconds[index] = seconds
            if index in self.done:
                return
            self.done.add(index)
            if self.bar is not None:
                self.bar.update(1)
                mean = np.mean(list(self.seconds.values()))
                self.bar.set_postfix(frame_s=f"{mean:.2f}", refresh=False)

    def event(self, event):
        try:
            msg = event[1]
            self.frame(int(msg["frame"]), float(msg["seconds"]))
        except Exception:  # noqa: BLE001 - a malformed message must not stop the run
            pass

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _open_client(client, scheduler, workers, arch):
    """The client to use and whatever this call must close afterwards."""
    from distributed import Client, LocalCluster

    if client is not None:
        return client, [], None
    if scheduler is not None:
        c = Client(scheduler)
        return c, [c], None
    n = int(workers or os.cpu_count() or 1)
    if n < 1:
        raise InputError("--workers", None, "a positive number of workers", got=workers)
    cores = os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    c = Client(cluster)
    return c, [c, cluster], max(1, cores // n)


def _reconstruct_unfinished(
    plan: SeriesPlan, finished: dict, parts_dir, client, scheduler, workers, progress
) -> None:
    """Run the chunks not in ``finished`` on Dask, adding each to ``finished`` (and to
    ``parts_dir``) as it ends; raise once all ended if any failed."""
    todo = [cid for cid in range(len(plan.chunks)) if cid not in finished]
    if not todo:
        return
    failures = _run_chunks(plan, todo, finished, client, scheduler, workers, progress, parts_dir)
    if failures:
        first_id = min(failures)
        chunks = plan.chunks
        kept = f"; {len(finished)} finished chunk(s) kept in {parts_dir}" if parts_dir else ""
        raise ReconstructionError(
            f"{len(failures)} of {len(chunks)} chunks failed (chunk {first_id}, frames "
            f"{chunks[first_id][0]}-{chunks[first_id][-1]}: {failures[first_id]}){kept}"
        )


def _run_chunks(
    plan: SeriesPlan, todo, finished, client, scheduler, workers, progress, parts_dir
) -> dict:
    """Submit the unfinished chunks, store each as it finishes; return the failures."""
    client, owned, cpu_threads = _open_client(client, scheduler, workers, plan.opts["arch"])
    opts = dict(plan.opts, cpu_threads=cpu_threads)
    token = uuid.uuid4().hex[:12]
    topic = f"slingbag-series-{token}"
    done_frames = [k for cid in finished for k in plan.chunks[cid]]
    bar = _Progress(len(plan.items), done_frames, progress)
    try:
        client.register_plugin(TaichiPlugin(opts["arch"], cpu_threads), name=TaichiPlugin.name)
        if progress:
            client.subscribe_topic(topic, bar.event)
        futures = _submit_chunks(client, plan, todo, finished, opts, token, topic)
        return _gather_chunks(futures, plan, finished, parts_dir, bar)
    finally:
        bar.close()
        if progress:
            try:
                client.unsubscribe_topic(topic)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        for thing in owned:
            thing.close()


def _submit_chunks(client, plan: SeriesPlan, todo, finished, opts, token, topic) -> dict:
    """Submit the reference (unless finished before) and the chunks ``todo``; returns
    future -> chunk id."""
    # In-memory frames and a reference read back from disk travel inside the tasks
    # rather than scattered: data scattered to a worker that dies is gone for good and
    # would cancel the chunks that need it, while a task's arguments stay with the
    # scheduler and let it rerun the chunk anywhere.
    items = plan.items
    if 0 in finished:
        reference = finished[0]["frames"][0]
    else:
        reference = _submit(
            client, _reference_task, items[0], plan.cold_cfg, opts, topic,
            key=f"series-{token}-reference",
        )  # fmt: skip
    futures = {}
    for cid in todo:
        indices = plan.chunks[cid]
        chunk_items = [items[k] for k in indices]
        fut = _submit(
            client,
            _chunk_task,
            cid,
            indices,
            chunk_items,
            reference,
            plan.warm_cfg,
            opts,
            topic,
            key=f"series-{token}-chunk-{cid:04d}",
        )
        futures[fut] = cid
    return futures


def _submit(client, func, *args, key):
    """``client.submit`` onto the workers' Taichi thread (see :class:`TaichiPlugin`)."""
    import dask

    with dask.annotate(executor=EXECUTOR):
        return client.submit(func, *args, key=key)


def _gather_chunks(futures: dict, plan: SeriesPlan, finished, parts_dir, bar) -> dict:
    """Take each chunk as it ends: write its part file, add it to ``finished`` and to the
    progress bar; return the failures (chunk id -> what went wrong)."""
    from distributed import as_completed

    failures = {}
    for fut in as_completed(list(futures)):
        cid = futures[fut]
        if fut.status != "finished":
            exc = fut.exception() if fut.status == "error" else None
            failures[cid] = f"{type(exc).__name__}: {exc}" if exc else fut.status
            log.warning("chunk %d failed: %s", cid, failures[cid])
            continue
        result = fut.result()
        if parts_dir is not None:
            _write_part(_part_path(parts_dir, cid), result, plan.fingerprint(cid))
        finished[cid] = result
        for index in plan.chunks[cid]:
            bar.frame(index, result["frames"][index]["seconds"])
        fut.release()
    return failures


# --------------------------------------------------------------------------- client side: collect


def _collect(plan: SeriesPlan, finished: dict) -> SeriesResult:
    """The series of every chunk's frames, in frame order."""
    from ..core.config import to_toml

    frames_out = {}
    for cid in range(len(plan.chunks)):
        frames_out.update(finished[cid]["frames"])
    n = len(plan.items)
    attrs = {
        "region_lo": np.asarray(plan.lo, float),
        "region_hi": np.asarray(plan.hi, float),
        "chunk": plan.chunk,
        "seed": plan.seed,
        "config": to_toml(plan.cold_cfg),
        "warm_config": to_toml(plan.warm_cfg),
        "sources": [i.label() if isinstance(i, FrameRef) else (i.source or "") for i in plan.items],
        "warm": np.array([bool(frames_out[k]["warm"]) for k in range(n)]),
        "signal_scale": np.array([frames_out[k]["signal_scale"] for k in range(n)]),
    }
    return SeriesResult(
        volumes=np.stack([np.asarray(frames_out[k]["volume"], np.float32) for k in range(n)]),
        origin=np.asarray(plan.origin, float),
        spacing=np.asarray(plan.spacing, float),
        clouds=[frames_out[k]["cloud"] for k in range(n)],
        histories=[frames_out[k]["history"] for k in range(n)],
        frame_seconds=np.array([frames_out[k]["seconds"] for k in range(n)]),
        attrs=attrs,
    )
