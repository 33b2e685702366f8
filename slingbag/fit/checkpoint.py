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

from .config import to_toml
from .errors import InputError
from .optim import Adam
from .response import SensorResponse
from .strategy import CloudState

#: Names in the file that are not encoded values.
_META = "meta"


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
    if "$adam" in value:
        adam = Adam()
        adam.t = int(value["$adam"]["t"])
        adam.eps = dict(value["$adam"]["eps"])
        return adam
    if "$response" in value:
        return SensorResponse(**decode(value["$response"], data))
    return {k: decode(v, data) for k, v in value.items()}


def save_checkpoint(path, state, adam, it, p0_unit, lr_scale, retries, history, rng, cfg, loop):
    """Write a checkpoint atomically.

    ``loop`` holds the rest of the loop's state, any values :func:`encode` takes: the
    calibration's snapshot (``cal``), the L1 weight, the best and rollback snapshots, how
    the calibration pass started (``pass_start``) and its index (``pass``).
    """
    from .atomic import atomic_path

    arrays = {"xyz": state.xyz, "p0": state.p0, "sigma": state.sigma}
    for name, (m, v) in state.moments.items():
        arrays[f"m_{name}"] = m
        arrays[f"v_{name}"] = v
    for k, v in history.items():
        arrays[f"h_{k}"] = np.asarray(v)
    meta = {
        "it": it,
        "adam_t": adam.t,
        "adam_eps": adam.eps,
        "p0_unit": p0_unit,
        "lr_scale": lr_scale,
        "retries": retries,
        "rng": rng.bit_generator.state,
        "config": to_toml(cfg),
        "pass": int(loop.get("pass", 0)),
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


def load_checkpoint(path):
    """``(state, adam, it, p0_unit, lr_scale, retries, history, rng, loop)`` as saved."""
    data, meta = open_checkpoint(path)
    if "loop" not in meta:
        raise InputError(
            str(path), None, "a checkpoint of this slingbag version", "an older layout"
        )
    with data:
        state = CloudState(data["xyz"], data["p0"], data["sigma"])
        for name in ("xyz", "p0", "sigma"):
            if f"m_{name}" in data:
                state.moments[name] = (data[f"m_{name}"], data[f"v_{name}"])
        history = {k[2:]: list(data[k]) for k in data.files if k.startswith("h_")}
        loop = decode(meta.get("loop", {}), data)
    adam = Adam()
    adam.t = int(meta["adam_t"])
    adam.eps = {k: float(v) for k, v in meta["adam_eps"].items()}
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    return (
        state,
        adam,
        int(meta["it"]),
        float(meta["p0_unit"]),
        float(meta["lr_scale"]),
        int(meta["retries"]),
        history,
        rng,
        loop,
    )
