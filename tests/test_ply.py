"""PLY clouds: the paper's file, both layouts, ASCII and binary, and round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from slingbag.core.cloud import GaussianCloud
from slingbag.errors import InputError
from slingbag.io.ply import read_ply, write_ply


def _cloud(rng, n=50):
    return GaussianCloud(
        rng.uniform(-0.01, 0.01, (n, 3)), rng.uniform(-5, 100, n), rng.uniform(1e-5, 1e-3, n)
    )


def test_rat_liver_phantom_loads(shared_data):
    cloud = read_ply(shared_data / "rat_liver_phantom.ply")
    assert len(cloud) == 21744
    np.testing.assert_allclose(cloud.sigma, 1e-4)
    size = cloud.xyz.max(axis=0) - cloud.xyz.min(axis=0)
    # ~16 x 4 x 10 mm, centred on the origin (SPEC section 8).
    np.testing.assert_allclose(size, [16e-3, 4e-3, 10e-3], atol=1.5e-3)
    assert np.abs(cloud.xyz.mean(axis=0)).max() < 3e-3
    np.testing.assert_allclose(cloud.xyz[0], [0.0016, -0.0004, -0.0046])
    assert cloud.p0[0] == pytest.approx(20.603846780)


@pytest.mark.parametrize("layout", ["slingbag", "paper"])
@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_float32(tmp_path, rng, layout, binary):
    cloud = _cloud(rng)
    path = tmp_path / "c.ply"
    write_ply(path, cloud, layout=layout, binary=binary)
    back = read_ply(path)
    for name in ("xyz", "p0", "sigma"):
        np.testing.assert_allclose(
            getattr(back, name), getattr(cloud, name).astype(np.float32), rtol=1e-7
        )
    header = path.read_bytes()[:300]
    assert (b"intensity" in header) == (layout == "paper")
    assert (b"binary_little_endian" in header) == binary


def test_round_trip_float64_is_exact(tmp_path, rng):
    cloud = _cloud(rng)
    for binary in (True, False):
        path = tmp_path / f"c{binary}.ply"
        write_ply(path, cloud, binary=binary, dtype="float64")
        back = read_ply(path)
        np.testing.assert_array_equal(back.xyz, cloud.xyz)
        np.testing.assert_array_equal(back.sigma, cloud.sigma)


def _binary_file(path, endian, names, types, columns, extra_elements=b""):
    header = ["ply", f"format binary_{endian}_endian 1.0", "comment test"]
    header.append(f"element vertex {len(columns[0])}")
    header += [f"property {t} {n}" for n, t in zip(names, types, strict=True)]
    header.append("end_header")
    code = "<" if endian == "little" else ">"
    ply_to_numpy = {"float": "f4", "double": "f8", "uchar": "u1", "int": "i4"}
    dtype = [(n, code + ply_to_numpy[t]) for n, t in zip(names, types, strict=True)]
    rows = np.empty(len(columns[0]), dtype=dtype)
    for name, column in zip(names, columns, strict=True):
        rows[name] = column
    path.write_bytes(("\n".join(header) + "\n").encode() + rows.tobytes() + extra_elements)


@pytest.mark.parametrize("endian", ["little", "big"])
def test_binary_any_order_extra_properties(tmp_path, rng, endian):
    cloud = _cloud(rng, 20)
    names = ["radius", "red", "z", "intensity", "x", "y"]
    types = ["double", "uchar", "float", "double", "double", "float"]
    columns = [
        cloud.sigma,
        np.arange(20) % 255,
        cloud.xyz[:, 2],
        cloud.p0,
        cloud.xyz[:, 0],
        cloud.xyz[:, 1],
    ]
    path = tmp_path / "c.ply"
    _binary_file(path, endian, names, types, columns)
    back = read_ply(path)
    np.testing.assert_array_equal(back.sigma, cloud.sigma)
    np.testing.assert_array_equal(back.p0, cloud.p0)
    np.testing.assert_array_equal(back.xyz[:, 0], cloud.xyz[:, 0])
    np.testing.assert_allclose(back.xyz[:, 2], cloud.xyz[:, 2], rtol=1e-7)


def test_ascii_with_faces_after_vertices(tmp_path):
    text = (
        "ply\nformat ascii 1.0\ncomment x\nelement vertex 2\nproperty float x\n"
        "property float y\nproperty float z\nproperty float p0\nproperty float sigma\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0 1 1e-4\n1e-3 0 0 2 2e-4\n3 0 1 1\n"
    )
    path = tmp_path / "f.ply"
    path.write_text(text)
    back = read_ply(path)
    np.testing.assert_allclose(back.p0, [1, 2])
    np.testing.assert_allclose(back.sigma, [1e-4, 2e-4])


def test_write_replaces_atomically_and_leaves_no_temp(tmp_path, rng):
    path = tmp_path / "c.ply"
    path.write_text("old")
    write_ply(path, _cloud(rng))
    assert path.read_bytes().startswith(b"ply")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ply"]


def test_bad_layout_is_input_error(tmp_path, rng):
    with pytest.raises(InputError, match="layout"):
        write_ply(tmp_path / "c.ply", _cloud(rng), layout="gsplat")
    assert not (tmp_path / "c.ply").exists()


_VALID_HEADER = (
    b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\n"
    b"property float y\nproperty float z\nproperty float p0\nproperty float sigma\nend_header\n"
)
finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 30),
    data=st.data(),
    layout=st.sampled_from(["slingbag", "paper"]),
    binary=st.booleans(),
)
def test_property_round_trip(tmp_path, n, data, layout, binary):
    xyz = data.draw(arrays(np.float32, (n, 3), elements=finite))
    p0 = data.draw(arrays(np.float32, n, elements=finite))
    sizes = st.floats(float(np.float32(1e-6)), 1.0, width=32)
    sigma = data.draw(arrays(np.float32, n, elements=sizes))
    cloud = GaussianCloud(xyz, p0, sigma)
    path = tmp_path / "h.ply"
    write_ply(path, cloud, layout=layout, binary=binary)
    back = read_ply(path)
    np.testing.assert_array_equal(back.xyz, cloud.xyz)
    np.testing.assert_array_equal(back.p0, cloud.p0)
    np.testing.assert_array_equal(back.sigma, cloud.sigma)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    garbage=st.binary(max_size=400),
    prefix=st.sampled_from([b"", b"ply\n", b"ply\nformat ", _VALID_HEADER]),
)
def test_property_garbage_is_input_error(tmp_path, garbage, prefix):
    path = tmp_path / "g.ply"
    path.write_bytes(prefix + garbage)
    try:
        read_ply(path)
    except InputError as err:
        assert str(path) in str(err)
        assert "\n" not in str(err)
