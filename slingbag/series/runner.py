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
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from ..core.acquisition import Acquisition
from ..core.cloud import GaussianCloud
from ..core.volume import Volume, grid_for_region
from ..errors import InputError, ReconstructionError
from ..io.atomic import atomic_path
from ..io.native import _plain, write_cloud_history

log = logging.getLogger("slingbag")

SERIES_FORMAT = "slingbag-series"
PART_FORMAT = "slingbag-series-part"
FORMAT_VERSION = 1
DEFAULT_CHUNK = 8


@dataclass(frozen=True)
class FrameRef:
    """A frame stored in a file, read by whichever worker reconstructs it.

    Shipping the name instead of the signals keeps the task graph small; the worker needs
    to see the same file system as the client.
    """

    path: str
    frame: int = 0
    wavelength: int = 0

    def load(self) -> Acquisition:
        from ..io.ipasc import load_acquisition

        return load_acquisition(self.path, frame=self.frame, wavelength=self.wavelength)

    def label(self) -> str:
        return f"{self.path}[{self.frame}]"


@dataclass
class SeriesResult:
    """The result of :func:`reconstruct_series`.

    Attributes
    ----------
    volumes : ndarray, float32, shape (n_frames, nx, ny, nz)
        One volume per frame, all on one grid.
    origin, spacing : ndarray, shape (3,)
        Placement of that grid (metres).
    clouds : list of GaussianCloud
        The fitted balls of each frame (p0 in signal units).
    histories : list of dict
        Each frame's per-iteration history (see :class:`slingbag.Reconstruction`).
    frame_seconds : ndarray, shape (n_frames,)
        Wall time of each frame's reconstruction on its worker.
    attrs : dict
        Region, chunking, configurations and the like, for the series file.
    """

    volumes: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    clouds: list
    histories: list
    frame_seconds: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.volumes)

    def volume(self, k: int) -> Volume:
        """Frame ``k`` as a :class:`~slingbag.Volume`."""
        return Volume(self.volumes[k], self.origin, self.spacing)


# --------------------------------------------------------------------------- frames


def expand_inputs(inputs) -> list:
    """The frames named by files, folders and multi-frame files, in order.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Acquisition files (a slingbag file whose ``signals`` is 3-D counts as one frame
        per entry of its first axis) and folders (their ``.h5``/``.hdf5`` files, in natural
        order of their names).

    Returns
    -------
    list of FrameRef
    """
    from ..io.ipasc import _natural_key

    refs = []
    for item in inputs:
        path = Path(os.fspath(item))
        if path.is_dir():
            files = sorted(
                (p for p in path.iterdir() if p.suffix.lower() in (".h5", ".hdf5")),
                key=lambda p: _natural_key(p.name),
            )
            if not files:
                raise InputError(str(path), None, "a folder holding .h5 acquisition files")
            for f in files:
                refs.extend(_frames_of_file(f))
        elif path.exists():
            refs.extend(_frames_of_file(path))
        else:
            raise InputError(str(path), None, "an existing acquisition file or folder")
    return refs


def _frames_of_file(path: Path) -> list:
    """One FrameRef per frame of ``path`` (several only for 3-D slingbag ``signals``)."""
    n = 1
    try:
        with h5py.File(path, "r") as f:
            item = f.get("signals")
            if isinstance(item, h5py.Dataset) and item.ndim == 3:
                n = int(item.shape[0])
    except OSError:
        pass  # not HDF5 (e.g. the text layout): the reader reports problems later
    return [FrameRef(str(path), k) for k in range(n)]


def _load(item) -> Acquisition:
    return item if isinstance(item, Acquisition) else item.load()


def _as_item(frame):
    if isinstance(frame, Acquisition):
        # The ground truth of simulated frames is not needed on the workers and can be
        # many times the size of the signals.
        return frame.replace(truth_volume=None, truth_cloud=None)
    if isinstance(frame, FrameRef):
        return frame
    if isinstance(frame, (str, os.PathLike)):
        refs = _frames_of_file(Path(frame))
        if len(refs) != 1:
            raise InputError(
                os.fspath(frame),
                "signals",
                "one frame per entry of `frames`",
                got=f"{len(refs)} frames",
                hint="expand it with slingbag.series.expand_inputs",
            )
        return refs[0]
    raise InputError("frames", None, "Acquisitions, FrameRefs or paths", got=type(frame).__name__)


def _fingerprint_item(item) -> str:
    """What identifies a frame's input, so a rerun never reuses parts of other data."""
    if isinstance(item, Acquisition):
        h = hashlib.sha1(np.ascontiguousarray(item.signals).tobytes())
        h.update(np.ascontiguousarray(item.positions).tobytes())
        h.update(repr((item.fs, item.sound_speed, item.t0)).encode())
        return "mem:" + h.hexdigest()
    st = os.stat(item.path)
    return (
        f"{os.path.abspath(item.path)}:{item.frame}:{item.wavelength}:{st.st_size}:{st.st_mtime_ns}"
    )


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
    from ..reconstruct import reconstruct

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


# --------------------------------------------------------------------------- part files


def _part_path(parts_dir: Path, chunk_id: int) -> Path:
    return parts_dir / f"chunk_{chunk_id:04d}.h5"


def _write_frame(group, out: dict) -> None:
    write_cloud_history(group, out["cloud"], out["history"])
    group.attrs["seconds"] = float(out["seconds"])
    group.attrs["warm"] = bool(out["warm"])
    group.attrs["signal_scale"] = float(out["signal_scale"])


def _read_frame(group) -> dict:
    c = group["cloud"]
    cloud = GaussianCloud(c["xyz"][()], c["p0"][()], c["sigma"][()])
    history = {name: group["history"][name][()] for name in group["history"]}
    return {
        "cloud": cloud,
        "history": history,
        "seconds": float(group.attrs["seconds"]),
        "warm": bool(group.attrs["warm"]),
        "signal_scale": float(group.attrs["signal_scale"]),
    }


def _write_part(path: Path, result: dict, fingerprint: str) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = PART_FORMAT
        f.attrs["version"] = FORMAT_VERSION
        f.attrs["fingerprint"] = fingerprint
        f.attrs["chunk"] = int(result["chunk"])
        for index, out in result["frames"].items():
            g = f.create_group(f"frames/{index}")
            g.create_dataset("volume", data=np.asarray(out["volume"], np.float32))
            _write_frame(g, out)


def _read_part(path: Path, fingerprint: str, indices) -> dict | None:
    """A finished chunk, or None when the part belongs to another run (then redone)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != PART_FORMAT or f.attrs.get("fingerprint") != fingerprint:
                log.warning("%s: from a different series run; redoing this chunk", path)
                return None
            frames = {}
            for index in indices:
                g = f[f"frames/{index}"]
                out = _read_frame(g)
                out["volume"] = g["volume"][()]
                frames[index] = out
            return {"chunk": int(f.attrs["chunk"]), "frames": frames}
    except (OSError, KeyError) as exc:
        log.warning("%s: unreadable part (%s); redoing this chunk", path, exc)
        return None


# --------------------------------------------------------------------------- client side


def _chunks(n_frames: int, chunk: int) -> list:
    return [list(range(s, min(s + chunk, n_frames))) for s in range(0, n_frames, chunk)]


def _configs(config, warm_config):
    from ..config import load_config

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

    Raises
    ------
    ReconstructionError
        When a chunk fails; the other chunks still finish, and with ``output`` their part
        files stay for the next run.
    """
    from ..fit.params import timing_params
    from ..fit.plan import adapt_to_response, resolve_region

    items = [_as_item(f) for f in frames]
    if not items:
        raise InputError("frames", None, "at least one frame")
    chunk = int(chunk)
    if chunk < 1:
        raise InputError("--chunk", None, "a positive number of frames per chunk", got=chunk)
    cold_cfg, warm_cfg = _configs(config, warm_config)
    for cfg in (cold_cfg, warm_cfg):
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
    seed = int(cold_cfg["init"]["seed"] if seed is None else seed)
    # One grid for all frames, fixed here, so the volumes stack.
    first = _load(items[0])
    # A band-limited response may need a finer res (the same for every frame).
    cold_cfg = adapt_to_response(cold_cfg, first)
    warm_cfg = _same_res(warm_cfg, cold_cfg)
    res = float(cold_cfg["region"]["res"])
    lo, hi = resolve_region(region, cold_cfg, first, res)
    out_spacing = float(spacing or cold_cfg["output"]["spacing"] or res)
    origin, spc, shape = grid_for_region(lo, hi, out_spacing)
    arch = arch or os.environ.get("SLINGBAG_ARCH") or None
    opts = {
        "region": (np.asarray(lo, float), np.asarray(hi, float)),
        "spacing": out_spacing,
        "shape": tuple(shape),
        "iterations": iterations,
        "warm_iterations": warm_iterations,
        "seed": seed,
        "arch": arch,
        "cpu_threads": None,
    }
    from ..config import to_toml

    fp_parts = {
        "chunk": chunk,
        "region": [list(map(float, lo)), list(map(float, hi))],
        "spacing": out_spacing,
        "cold": to_toml(cold_cfg),
        "warm": to_toml(warm_cfg),
        "iterations": iterations,
        "warm_iterations": warm_iterations,
        "seed": seed,
    }
    frame_fps = [_fingerprint_item(i) for i in items]

    n = len(items)
    chunks = _chunks(n, chunk)

    def fingerprint(cid):
        # A chunk depends on the settings, on frame 0 (its start) and on its own frames
        # only, so fixing one bad input file redoes only the chunk that holds it.
        used = sorted({0, *chunks[cid]})
        text = json.dumps([fp_parts, [frame_fps[k] for k in used]], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()

    parts_dir = None
    finished = {}
    if output is not None:
        out_path = Path(output)
        if not out_path.parent.exists():
            raise InputError(str(out_path), None, "an output path in an existing folder")
        parts_dir = out_path.with_name(out_path.name + ".parts")
        if parts_dir.is_dir():
            for cid, indices in enumerate(chunks):
                p = _part_path(parts_dir, cid)
                if p.exists():
                    got = _read_part(p, fingerprint(cid), indices)
                    if got is not None:
                        finished[cid] = got
            if finished:
                log.info("resuming: %d of %d chunks already done", len(finished), len(chunks))
        parts_dir.mkdir(exist_ok=True)

    todo = [cid for cid in range(len(chunks)) if cid not in finished]
    failures = {}
    if todo:
        failures = _run_chunks(
            items, chunks, todo, finished, cold_cfg, warm_cfg, opts, client, scheduler,
            workers, progress, parts_dir, fingerprint,
        )  # fmt: skip
    if failures:
        first_id = min(failures)
        kept = f"; {len(finished)} finished chunk(s) kept in {parts_dir}" if parts_dir else ""
        raise ReconstructionError(
            f"{len(failures)} of {len(chunks)} chunks failed (chunk {first_id}, frames "
            f"{chunks[first_id][0]}-{chunks[first_id][-1]}: {failures[first_id]}){kept}"
        )

    frames_out = {}
    for cid in range(len(chunks)):
        frames_out.update(finished[cid]["frames"])
    attrs = {
        "region_lo": np.asarray(lo, float),
        "region_hi": np.asarray(hi, float),
        "chunk": chunk,
        "seed": seed,
        "config": to_toml(cold_cfg),
        "warm_config": to_toml(warm_cfg),
        "sources": [i.label() if isinstance(i, FrameRef) else (i.source or "") for i in items],
        "warm": np.array([bool(frames_out[k]["warm"]) for k in range(n)]),
        "signal_scale": np.array([frames_out[k]["signal_scale"] for k in range(n)]),
    }
    result = SeriesResult(
        volumes=np.stack([np.asarray(frames_out[k]["volume"], np.float32) for k in range(n)]),
        origin=np.asarray(origin, float),
        spacing=np.asarray(spc, float),
        clouds=[frames_out[k]["cloud"] for k in range(n)],
        histories=[frames_out[k]["history"] for k in range(n)],
        frame_seconds=np.array([frames_out[k]["seconds"] for k in range(n)]),
        attrs=attrs,
    )
    if output is not None:
        write_series(output, result)
        shutil.rmtree(parts_dir, ignore_errors=True)
    return result


def _submit(client, func, *args, key):
    """``client.submit`` onto the workers' Taichi thread (see :class:`TaichiPlugin`)."""
    import dask

    with dask.annotate(executor=EXECUTOR):
        return client.submit(func, *args, key=key)


def _run_chunks(
    items, chunks, todo, finished, cold_cfg, warm_cfg, opts, client, scheduler, workers,
    progress, parts_dir, fingerprint,
) -> dict:  # fmt: skip
    """Submit the unfinished chunks, store each as it finishes; return the failures."""
    from distributed import as_completed

    client, owned, cpu_threads = _open_client(client, scheduler, workers, opts["arch"])
    opts = dict(opts, cpu_threads=cpu_threads)
    token = uuid.uuid4().hex[:12]
    topic = f"slingbag-series-{token}"
    done_frames = [k for cid in finished for k in chunks[cid]]
    bar = _Progress(len(items), done_frames, progress)
    failures = {}
    try:
        client.register_plugin(TaichiPlugin(opts["arch"], cpu_threads), name=TaichiPlugin.name)
        if progress:
            client.subscribe_topic(topic, bar.event)

        # In-memory frames and a reference read back from disk travel inside the tasks
        # rather than scattered: data scattered to a worker that dies is gone for good and
        # would cancel the chunks that need it, while a task's arguments stay with the
        # scheduler and let it rerun the chunk anywhere.
        if 0 in finished:
            reference = finished[0]["frames"][0]
        else:
            reference = _submit(
                client, _reference_task, items[0], cold_cfg, opts, topic,
                key=f"series-{token}-reference",
            )  # fmt: skip
        futures = {}
        for cid in todo:
            indices = chunks[cid]
            chunk_items = [items[k] for k in indices]
            fut = _submit(
                client,
                _chunk_task,
                cid,
                indices,
                chunk_items,
                reference,
                warm_cfg,
                opts,
                topic,
                key=f"series-{token}-chunk-{cid:04d}",
            )
            futures[fut] = cid
        for fut in as_completed(list(futures)):
            cid = futures[fut]
            if fut.status != "finished":
                exc = fut.exception() if fut.status == "error" else None
                failures[cid] = f"{type(exc).__name__}: {exc}" if exc else fut.status
                log.warning("chunk %d failed: %s", cid, failures[cid])
                continue
            result = fut.result()
            if parts_dir is not None:
                _write_part(_part_path(parts_dir, cid), result, fingerprint(cid))
            finished[cid] = result
            for index in chunks[cid]:
                bar.frame(index, result["frames"][index]["seconds"])
            fut.release()
    finally:
        bar.close()
        if progress:
            try:
                client.unsubscribe_topic(topic)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        for thing in owned:
            thing.close()
    return failures


# --------------------------------------------------------------------------- series file


def write_series(path, result: SeriesResult) -> None:
    """Write a series atomically.

    Layout: ``volumes`` ``(n_frames, nx, ny, nz)`` float32 with attributes ``origin`` and
    ``spacing``; ``frames/<k>/cloud/{xyz,p0,sigma}``; ``frames/<k>/history/<name>``;
    ``frame_seconds`` ``(n_frames,)``; root attributes ``format`` = ``slingbag-series``,
    ``version``, ``n_frames`` and ``result.attrs``.
    """
    from .._version import __version__
    from ..io.native import _write_attr

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in result.attrs.items():
            _write_attr(f.attrs, key, value)
        f.attrs["format"] = SERIES_FORMAT
        f.attrs["version"] = FORMAT_VERSION
        f.attrs["software_version"] = __version__
        f.attrs["n_frames"] = result.n_frames
        vols = f.create_dataset(
            "volumes",
            data=np.asarray(result.volumes, np.float32),
            chunks=(1, *result.volumes.shape[1:]),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        vols.attrs["origin"] = np.asarray(result.origin, np.float64)
        vols.attrs["spacing"] = np.asarray(result.spacing, np.float64)
        f.create_dataset("frame_seconds", data=np.asarray(result.frame_seconds, np.float64))
        n = result.n_frames
        warm = np.asarray(result.attrs.get("warm", np.arange(n) > 0)).reshape(-1)
        scale = np.asarray(result.attrs.get("signal_scale", np.full(n, np.nan))).reshape(-1)
        for k in range(n):
            g = f.create_group(f"frames/{k}")
            out = {
                "cloud": result.clouds[k],
                "history": result.histories[k],
                "seconds": result.frame_seconds[k],
                "warm": bool(warm[k]),
                "signal_scale": float(scale[k]),
            }
            _write_frame(g, out)


def read_series(path) -> SeriesResult:
    """Read a file written by :func:`write_series`."""
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise InputError(source, None, "an existing series HDF5 file")
    try:
        with h5py.File(source, "r") as f:
            fmt = _plain(f.attrs.get("format"))
            if fmt != SERIES_FORMAT:
                raise InputError(source, "attribute format", repr(SERIES_FORMAT), got=fmt)
            vols = f["volumes"]
            n = vols.shape[0]
            frames = [_read_frame(f[f"frames/{k}"]) for k in range(n)]
            attrs = {k: _plain(v) for k, v in f.attrs.items() if k not in ("format", "version")}
            return SeriesResult(
                volumes=vols[()],
                origin=np.asarray(vols.attrs["origin"], float),
                spacing=np.asarray(vols.attrs["spacing"], float),
                clouds=[fr["cloud"] for fr in frames],
                histories=[fr["history"] for fr in frames],
                frame_seconds=f["frame_seconds"][()],
                attrs=attrs,
            )
    except (OSError, KeyError) as exc:
        raise InputError(source, None, "a readable series file", got=str(exc)) from None
