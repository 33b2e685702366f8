"""Checkpoints of a reconstruction: everything a resumed run needs to step exactly as the
unbroken run, in one ``.npz`` of plain arrays and a JSON string of the rest (no pickle,
so loading a checkpoint never runs code).

Nested values (the calibration's state, snapshots, the start of a calibration pass) are
written with :func:`encode`: arrays go into the file under a path-like name, scalars,
strings, lists and dicts stay in the JSON, and the few other types carry a ``$`` tag.
"""

from __future__ import annotations

import json

import numpy as np

from ..core.config import to_toml
from ..errors import InputError
from ..model.response import SensorResponse
from .optim import Adam
from .state import Box, CloudState, Guard, RunState

#: Names in the file that are not encoded values.
_META = "meta"
#: The layout this version writes; others are refused with one clear error.
LAYOUT = 2


def encode(value, arrays: dict, name: str):
    """A JSON-able form of ``value``; its arrays are put into ``arrays`` under ``name``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        # NumPy scalars too, so their dtype (float32 sums) comes back unchanged.
        arrays[name] = np.asarray(value)
        return {"$a": name, "0d": isinstance(value, np.generic)}
    if isinstance(value, dict):
        if any(not isinstance(k, str) or k.startswith("$") for k in value):
            raise TypeError(f"checkpoint: dict keys must be plain strings at {name}")
        return {k: encode(v, arrays, f"{name}/{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [encode(v, arrays, f"{name}/{i}") for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"$t": items}
    if isinstance(value, (set, frozenset)):
        return {"$s": sorted(value)}
    if isinstance(value, CloudState):
        fields = {"xyz": value.xyz, "p0": value.p0, "sigma": value.sigma}
        return {"$cloud": encode({**fields, "moments": value.moments}, arrays, name)}
    if isinstance(value, Adam):
        return {"$adam": {"t": value.t, "eps": dict(value.eps)}}
    if isinstance(value, SensorResponse):
        fields = {
            "fs": value.fs,
            "kernel": value.kernel,
            "centre": value.centre,
            "bandwidth": value.bandwidth,
            "kernel_offset": value.kernel_offset,
        }
        return {"$response": encode(fields, arrays, name)}
    raise TypeError(f"checkpoint: cannot store {type(value).__name__} at {name}")


def decode(value, data):
    """The value :func:`encode` wrote, with its arrays read from ``data`` (an NpzFile)."""
    if isinstance(value, list):
        return [decode(v, data) for v in value]
    if not isinstance(value, dict):
        return value
    if "$a" in value:
        a = data[value["$a"]]
        return a[()] if value["0d"] else a
    if "$t" in value:
        return tuple(decode(v, data) for v in value["$t"])
    if "$s" in value:
        return set(value["$s"])
    if "$cloud" in value:
        return CloudState(**decode(value["$cloud"], data))
    if "$adam" in value:
        adam = Adam()
        adam.t = int(value["$adam"]["t"])
        adam.eps = dict(value["$adam"]["eps"])
        return adam
    if "$response" in value:
        return SensorResponse(**decode(value["$response"], data))
    return {k: decode(v, data) for k, v in value.items()}


def save_checkpoint(
    path, run: RunState, cfg: dict, pass_index: int = 0, pass_start=None, fingerprint=None
):
    """Write ``run`` atomically, with the configuration, the calibration pass's index,
    how that pass started (``pass_start``, for a resume inside it) and the fingerprint of
    the data and settings it belongs to (:meth:`~slingbag.fit.plan.Plan.fingerprint`)."""
    from ..io.atomic import atomic_path

    arrays = {}
    guard = run.guard
    loop = {
        "cloud": run.cloud,
        "params": run.params.snapshot(),
        "corners": run.box.corners,
        "l1_abs": run.l1_abs,
        "guard": {
            "best_loss": guard.best_loss,
            "best": guard.best,
            "best_stage": guard.best_stage,
            "best_fit": guard.best_fit,
            "fit_stage": guard.fit_stage,
            "rollback": guard.rollback,
            "retries": guard.retries,
        },
        "pass_start": pass_start,
    }
    for k, v in run.history.items():
        arrays[f"h_{k}"] = np.asarray(v)
    meta = {
        "layout": LAYOUT,
        "it": run.it,
        "adam": {"t": run.adam.t, "eps": run.adam.eps},
        "p0_unit": run.p0_unit,
        "lr_scale": run.lr_scale,
        "rng": run.rng.bit_generator.state,
        "config": to_toml(cfg),
        "pass": int(pass_index),
        "fingerprint": fingerprint,
        "loop": encode(loop, arrays, "loop"),
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{_META: np.frombuffer(json.dumps(meta).encode(), np.uint8)}, **arrays)


def open_checkpoint(path):
    """The checkpoint's arrays (an open ``NpzFile``) and its metadata."""
    try:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(bytes(data[_META]).decode())
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is one error
        raise InputError(str(path), None, "a slingbag checkpoint", str(exc)) from None
    return data, meta


def checkpoint_pass(path) -> tuple[int, dict | None]:
    """The calibration pass a checkpoint was written in, and how that pass started
    (None for checkpoints of single-pass runs)."""
    data, meta = open_checkpoint(path)
    with data:
        start = decode(meta.get("loop", {}).get("pass_start"), data)
    return int(meta.get("pass", 0)), start


def load_checkpoint(path, params, fingerprint=None) -> RunState:
    """The :class:`RunState` saved in ``path``; ``params`` (a fresh
    :class:`~slingbag.fit.params.Calibration`) is restored to its saved state.  With
    ``fingerprint``, a checkpoint written for other data or settings is refused."""
    data, meta = open_checkpoint(path)
    if meta.get("layout") != LAYOUT:
        raise InputError(
            str(path), None, "a checkpoint of this slingbag version", "an older layout"
        )
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise InputError(
            str(path),
            None,
            "a checkpoint of this run (the same signals, sensors and settings)",
            "one written for other data or settings",
            hint="drop --resume to start afresh, or resume with the data and settings it "
            "was written for",
        )
    with data:
        history = {k[2:]: list(data[k]) for k in data.files if k.startswith("h_")}
        loop = decode(meta["loop"], data)
    params.restore(loop["params"])
    box = Box(np.zeros(3), np.zeros(3))
    box.corners = loop["corners"]
    adam = Adam()
    adam.t = int(meta["adam"]["t"])
    adam.eps = {k: float(v) for k, v in meta["adam"]["eps"].items()}
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    g = loop["guard"]
    guard = Guard(
        best_loss=g["best_loss"],
        best=g["best"],
        best_stage=g["best_stage"],
        best_fit=g["best_fit"],
        fit_stage=g.get("fit_stage", ""),
        rollback=g["rollback"],
        retries=int(g["retries"]),
    )
    return RunState(
        cloud=loop["cloud"],
        params=params,
        box=box,
        rng=rng,
        p0_unit=float(meta["p0_unit"]),
        adam=adam,
        it=int(meta["it"]),
        lr_scale=float(meta["lr_scale"]),
        l1_abs=loop["l1_abs"],
        history=history,
        guard=guard,
    )
