"""The face of a sensor element: a point, a disc or a rectangle.

A flat element records the pressure averaged over its face.  :class:`Element` holds the
geometry of every sensor's face (SPEC section 7): the shape (one for the whole array), the
size per sensor and, for rectangles, the axis of the width in the face.  The normals that
orient the faces belong to the array (:class:`~slingbag.core.acquisition.SensorArray`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

SHAPES = ("point", "disc", "rect")
#: Shape ids of the radiator kernels.
SHAPE_IDS = {"point": 0, "disc": 1, "rect": 2}

#: The largest element face (diameter, width or height) taken for metres, not millimetres.
MAX_ELEMENT_SIZE = 0.1

_SPEC = re.compile(r"^(point|disc|rect)(?::(\S+))?$")


@dataclass
class Element:
    """Every sensor's face.

    Parameters
    ----------
    shape : {"point", "disc", "rect"}
        One shape for the whole array.
    size : ndarray
        ``(n_sensors,)`` disc diameters, or ``(n_sensors, 2)`` rectangle width and height,
        in metres; ignored for points.
    axis : ndarray, shape (n_sensors, 3), optional
        For rectangles, the unit vector in the face along the width (the height runs along
        ``normal x axis``).  When absent, the width runs along the x axis projected into
        the face (the y axis for a face whose normal is the x axis).
    """

    shape: str
    size: np.ndarray | None = None
    axis: np.ndarray | None = None

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise InputError("element", "shape", "one of " + ", ".join(SHAPES), self.shape)
        if self.size is not None:
            self.size = np.asarray(self.size, np.float64)
        if self.axis is not None:
            self.axis = np.asarray(self.axis, np.float64).reshape(-1, 3)

    @property
    def is_point(self) -> bool:
        """True for point sensors (no face to average over)."""
        return self.shape == "point"

    def describe(self) -> str:
        """A short text for logs.

        Returns
        -------
        str
            E.g. ``rect 2 x 1 mm`` or ``disc 3 mm`` (the first sensor's, marked when the
            sizes vary), ``point`` for points.
        """
        if self.is_point or self.size is None or not len(self.size):
            return "point"
        size = np.atleast_2d(self.size.T).T * 1e3
        first = size[0]
        text = " x ".join(f"{v:.3g}" for v in np.atleast_1d(first))
        same = np.allclose(size, first)
        return f"{self.shape} {text} mm" + ("" if same else " (first sensor; sizes vary)")

    def take(self, index) -> Element:
        """The faces of some sensors only.

        Parameters
        ----------
        index : array_like of int or bool, or slice
            The sensors to keep, as NumPy indexes.

        Returns
        -------
        Element
            Their sizes and axes (a point element is returned as it is).
        """
        if self.is_point:
            return self
        return Element(
            self.shape,
            None if self.size is None else self.size[index],
            None if self.axis is None else self.axis[index],
        )

    def half_extents(self) -> np.ndarray:
        """The faces' half-widths.

        Returns
        -------
        ndarray, shape (n_sensors, 2)
            (radius, radius) for discs, (width / 2, height / 2) for rectangles, zeros for
            points.
        """
        if self.is_point or self.size is None:
            return np.zeros((0 if self.size is None else len(self.size), 2))
        if self.shape == "disc":
            r = 0.5 * self.size.reshape(-1)
            return np.stack([r, r], axis=1)
        return 0.5 * self.size.reshape(-1, 2)

    def width_axes(self, normals: np.ndarray) -> np.ndarray:
        """The unit width axis in each face.

        Parameters
        ----------
        normals : array_like, shape (n_sensors, 3)
            The faces' unit normals.

        Returns
        -------
        ndarray, shape (n_sensors, 3)
            ``axis`` made orthogonal to the normal, or the default of the class docstring.
        """
        normals = np.asarray(normals, np.float64).reshape(-1, 3)
        if self.axis is not None:
            e1 = np.broadcast_to(self.axis, normals.shape).copy()
        else:
            e1 = np.tile([1.0, 0.0, 0.0], (len(normals), 1))
            along_x = np.abs(normals[:, 0]) > 0.9
            e1[along_x] = [0.0, 1.0, 0.0]
        e1 -= np.sum(e1 * normals, axis=1, keepdims=True) * normals
        return e1 / np.linalg.norm(e1, axis=1, keepdims=True)

    def table(self, normals: np.ndarray) -> np.ndarray:
        """The per-sensor face table of the radiator kernels.

        Parameters
        ----------
        normals : array_like, shape (n_sensors, 3)
            The faces' normals (scaled to unit length here).

        Returns
        -------
        ndarray, float32, shape (n_sensors, 11)
            Normal, width axis, height axis (normal x width), half-width, half-height.
        """
        normals = np.asarray(normals, np.float64).reshape(-1, 3)
        normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        e1 = self.width_axes(normals)
        e2 = np.cross(normals, e1)
        half = self.half_extents()
        return np.ascontiguousarray(np.hstack([normals, e1, e2, half]), dtype=np.float32)


def parse_element(spec: str, n_sensors: int, source: str = "--element") -> Element:
    """An :class:`Element` from a command-line spec, the same face for every sensor.

    Parameters
    ----------
    spec : str
        ``point``, ``disc:DIAMETER`` or ``rect:WIDTHxHEIGHT`` (``rect:W`` for a square),
        metres: ``disc:3e-3``, ``rect:2e-3x1e-3``.
    n_sensors : int
        How many sensors share it.
    source : str
        What to name in an error.

    Returns
    -------
    Element
        The face ``spec`` names, repeated for each of the ``n_sensors`` sensors.

    Raises
    ------
    InputError
        For a spec that does not parse, or a size that is not positive and finite.
    """
    expected = "point, disc:DIAMETER or rect:WIDTHxHEIGHT in metres (e.g. disc:3e-3)"
    m = _SPEC.match(str(spec).strip())
    if not m or (m.group(1) != "point" and not m.group(2)):
        raise InputError(source, None, expected, spec)
    shape, size_text = m.group(1), m.group(2)
    if shape == "point":
        return Element("point")
    try:
        values = [float(v) for v in size_text.lower().split("x")]
    except ValueError:
        raise InputError(source, None, expected, spec) from None
    if shape == "disc" and len(values) != 1 or shape == "rect" and len(values) not in (1, 2):
        raise InputError(source, None, expected, spec)
    if not all(np.isfinite(v) and 0 < v < MAX_ELEMENT_SIZE for v in values):
        raise InputError(source, None, f"sizes between 0 and {MAX_ELEMENT_SIZE:g} m", spec)
    if shape == "disc":
        return Element("disc", np.full(n_sensors, values[0]))
    w, h = (values * 2)[:2] if len(values) == 1 else values
    return Element("rect", np.tile([w, h], (n_sensors, 1)))


def element_for(
    spec: str, normals, n_sensors: int, *, source, field="sensors/normals", option="--element",
    got="none",
) -> Element | None:  # fmt: skip
    """The faces an ``--element`` spec gives sensors with these ``normals``.

    Parameters
    ----------
    spec : str
        As :func:`parse_element` takes it.
    normals : ndarray or None
        The sensors' normals; a disc or rectangle needs them.
    n_sensors : int
        How many sensors.
    source, field : str
        The file (or array) and its field to name when the normals are missing.
    option : str
        The option to name in an error.
    got : str
        What the message says was found instead of normals.

    Returns
    -------
    Element or None
        None for ``point``.

    Raises
    ------
    InputError
        For a spec that does not parse, or a disc or rectangle without normals.
    """
    element = parse_element(spec, n_sensors, option)
    if element.is_point:
        return None
    if normals is None:
        raise InputError(
            source,
            field,
            f"sensor normals to orient the {element.shape} faces of {option} {spec}",
            got=got,
            hint=f"{option} point, or sensors whose normals are known",
        )
    return element
