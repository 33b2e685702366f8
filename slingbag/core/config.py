"""Reconstruction presets: TOML files layered over the default.

``load_config("default")`` reads ``slingbag/core/presets/default.toml``; a named preset or a user
file overrides any of its keys (and only those: an unknown section or key is an error, so a
typo never passes silently).
"""

from __future__ import annotations

import copy
import sys
from importlib import resources
from pathlib import Path

from ..errors import InputError
from .cloud import MODELS
from .geometry import parse_region

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: ``response.kind``: "auto" takes the file's ``sensors/impulse_response`` when it has one.
RESPONSE_KINDS = ("auto", "none", "file", "bandpass")


def preset_names() -> list[str]:
    files = resources.files("slingbag.core") / "presets"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _read_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, None, "a valid TOML file", str(exc)) from None


def _preset(name: str) -> dict:
    path = resources.files("slingbag.core") / "presets" / f"{name}.toml"
    if not path.is_file():
        raise InputError(
            "--config", None, "a preset (" + ", ".join(preset_names()) + ") or a .toml file", name
        )
    return _read_toml(path.read_text(), f"preset {name}")


def _merge(base: dict, over: dict, source: str, prefix: str = "") -> dict:
    for key, val in over.items():
        where = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise InputError(source, where, f"a known key ({known})", key)
        if isinstance(base[key], dict):
            if not isinstance(val, dict):
                raise InputError(source, where, "a table", type(val).__name__)
            _merge(base[key], val, source, where + ".")
        else:
            base[key] = _coerce(base[key], val, source, where)
    return base


def _coerce(default, val, source, where):
    if isinstance(default, bool):
        if not isinstance(val, bool):
            raise InputError(source, where, "true or false", val)
        return val
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise InputError(source, where, "a number", repr(val))
        if val != val or val in (float("inf"), float("-inf")):
            raise InputError(source, where, "a finite number", val)
        if val < 0:
            raise InputError(source, where, "a number >= 0", val)
        return type(default)(val) if isinstance(default, float) else val
    if isinstance(default, str):
        if not isinstance(val, str):
            raise InputError(source, where, "a string", repr(val))
        return val
    if isinstance(default, list):
        if not isinstance(val, list):
            raise InputError(source, where, "a list", repr(val))
        return val
    return val


def load_config(preset: str | None = "default", path=None, overrides: dict | None = None) -> dict:
    """The reconstruction configuration as a nested dict.

    Parameters
    ----------
    preset : str
        A built-in preset name (``default``, ``paper``, ``fast``, or ``warm`` for
        warm-started frames) or the path of a TOML file.
    path : str or Path, optional
        A TOML file applied after the preset.
    overrides : dict, optional
        ``{"section": {"key": value}}`` applied last (e.g. from CLI options).

    Returns
    -------
    dict
        Every section and key of the default preset, overridden in turn by ``preset``,
        ``path`` and ``overrides``, and checked.

    Raises
    ------
    InputError
        For an unknown preset, section or key, a value of the wrong type or out of range,
        or a file that is not valid TOML.
    """
    cfg = _preset("default")
    layers = []
    if preset and preset != "default":
        if str(preset).endswith(".toml") or Path(str(preset)).is_file():
            layers.append((str(preset), _read_file(preset)))
        else:
            layers.append((f"preset {preset}", _preset(preset)))
    if path:
        layers.append((str(path), _read_file(path)))
    if overrides:
        layers.append(("options", overrides))
    for source, layer in layers:
        _merge(cfg, copy.deepcopy(layer), source)
    validate(cfg)
    return cfg


def _read_file(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputError(str(path), None, "an existing TOML file", "no such file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, "a readable UTF-8 TOML file", str(exc)) from None
    return _read_toml(text, str(path))


def validate(cfg: dict, source: str = "config") -> None:
    """Check the values that the merge cannot (ranges, choices, shapes)."""
    if cfg["region"]["res"] <= 0 or cfg["region"]["res"] > 0.05:
        raise InputError(
            source, "region.res", "a resolution in metres in (0, 0.05]", cfg["region"]["res"]
        )
    if cfg["region"]["bounds"]:
        parse_region(cfg["region"]["bounds"], source, "region.bounds")
    if cfg["init"]["method"] not in ("backprojection", "uniform"):
        raise InputError(
            source, "init.method", '"backprojection" or "uniform"', cfg["init"]["method"]
        )
    for key in ("sigma", "p0"):
        v = cfg["init"][key]
        if len(v) != 2 or not all(isinstance(x, (int, float)) for x in v) or v[0] > v[1]:
            raise InputError(source, f"init.{key}", "[low, high] numbers", v)
    if cfg["output"]["model"] not in MODELS:
        expected = " or ".join(f'"{m}"' for m in MODELS)
        raise InputError(source, "output.model", expected, cfg["output"]["model"])
    known = {"sound_speed", "t0", "gain", "response"}
    bad = [p for p in cfg["calibrate"]["params"] if p not in known]
    if bad:
        raise InputError(source, "calibrate.params", "names from " + ", ".join(sorted(known)), bad)
    if cfg["response"]["kind"] not in RESPONSE_KINDS:
        expected = '"auto", "none", "file" or "bandpass"'
        raise InputError(source, "response.kind", expected, cfg["response"]["kind"])
    if "response" in cfg["calibrate"]["params"] and cfg["response"]["kind"] != "bandpass":
        raise InputError(source, "calibrate.params", 'a "bandpass" response to learn', "response")
    if not 0 < cfg["fine"]["decay"] <= 1:
        raise InputError(source, "fine.decay", "a factor in (0, 1]", cfg["fine"]["decay"])
    if cfg["density"]["every"] < 1:
        raise InputError(source, "density.every", "an integer >= 1", cfg["density"]["every"])
    passes = cfg["calibrate"]["passes"]
    if not isinstance(passes, int) or passes < 1:
        raise InputError(source, "calibrate.passes", "an integer >= 1", passes)


def to_toml(cfg: dict) -> str:
    import tomli_w

    return tomli_w.dumps(cfg)
