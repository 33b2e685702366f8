"""Phantoms: the vessel tree, volume -> cloud conversion and loading by name or file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy import ndimage

from slingbag.core.cloud import GaussianCloud, profile_integral_factor
from slingbag.core.volume import Volume
from slingbag.errors import InputError
from slingbag.io.ply import write_ply
from slingbag.phantoms import Phantom, load_phantom, vessels_phantom, volume_to_cloud


@pytest.fixture(scope="module")
def default_phantom():
    # Its speed is measured by `slingbag bench`, not asserted here.
    return vessels_phantom(seed=0)


def test_default_vessels_grid(default_phantom):
    volume = default_phantom.volume
    assert volume.shape == (201, 201, 61)
    np.testing.assert_allclose(volume.origin, [-10e-3, -10e-3, 12e-3])
    np.testing.assert_allclose(volume.spacing, 1e-4)
    np.testing.assert_allclose(volume.extent()[:, 1], [10e-3, 10e-3, 18e-3], atol=1e-12)


def test_vessels_look_like_vessels(default_phantom):
    data = default_phantom.volume.data
    assert 0.9 <= data.max() <= 1.15
    assert data.min() >= 0
    filled = (data > 0.5).mean()
    assert 0.002 < filled < 0.1  # thin tubes, not a blob nor empty
    # One connected tree per trunk at most (branches join their parents).
    _, n_parts = ndimage.label(data > 0.5)
    assert 1 <= n_parts <= 3
    # Vessels reach the region's sides (trunks enter there) but stay off its floor/ceiling.
    assert data[0].max() > 0.5 or data[-1].max() > 0.5 or data[:, 0].max() > 0.5
    assert data[:, :, 0].max() < 0.05 and data[:, :, -1].max() < 0.05
    # Soft edges: values between 0.1 and 0.9 exist around every tube.
    assert ((data > 0.1) & (data < 0.9)).sum() > 0.2 * (data > 0.9).sum()


def test_vessel_radii_range(default_phantom):
    data = default_phantom.volume.data > 0.5
    # Half-width of the thickest and thinnest vessels via the distance transform.
    depth = ndimage.distance_transform_edt(data) * 0.1e-3
    assert 0.3e-3 <= depth.max() <= 0.6e-3
    skeleton_like = depth[(depth > 0) & (ndimage.maximum_filter(depth, 3) == depth)]
    assert np.percentile(skeleton_like, 5) < 0.25e-3


def test_vessels_seeded():
    a = vessels_phantom(seed=3, spacing=0.2e-3)
    b = vessels_phantom(seed=3, spacing=0.2e-3)
    c = vessels_phantom(seed=4, spacing=0.2e-3)
    np.testing.assert_array_equal(a.volume.data, b.volume.data)
    assert not np.array_equal(a.volume.data, c.volume.data)


def test_vessels_custom_region():
    phantom = vessels_phantom(region=(0, 4e-3, 0, 6e-3, 1e-3, 3e-3), spacing=0.2e-3, seed=1)
    assert phantom.volume.shape == (21, 31, 11)
    lo, hi = phantom.cloud.xyz.min(axis=0), phantom.cloud.xyz.max(axis=0)
    assert (lo >= [0, 0, 1e-3]).all() and (hi <= [4e-3, 6e-3, 3e-3 + 1e-12]).all()


def test_volume_to_cloud_preserves_integral():
    data = np.zeros((5, 6, 7), dtype=np.float32)
    data[2, 3, 4] = 2.0
    data[1, 1, 1] = 0.5
    volume = Volume(data, [1e-3, 2e-3, 3e-3], 2e-4)
    cloud = volume_to_cloud(volume)
    assert len(cloud) == 2
    np.testing.assert_allclose(cloud.sigma, 2e-4)
    integral = cloud.p0 * profile_integral_factor() * cloud.sigma**3
    np.testing.assert_allclose(np.sort(integral), [0.5 * 8e-12, 2.0 * 8e-12], rtol=1e-6)
    centre = cloud.xyz[np.argmax(cloud.p0)]
    np.testing.assert_allclose(centre, [1e-3 + 4e-4, 2e-3 + 6e-4, 3e-3 + 8e-4])
    assert len(volume_to_cloud(volume, threshold=1.0)) == 1


def test_volume_to_cloud_sums_back_to_the_volume():
    # A smooth blob: the overlapping balls re-add to about the voxel values.
    axis = np.arange(-10, 11) * 1e-4
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    blob = np.exp(-(x**2 + y**2 + z**2) / (2 * (4e-4) ** 2))
    volume = Volume(blob, [axis[0]] * 3, 1e-4)
    cloud = volume_to_cloud(volume, threshold=1e-4)
    centre_value = np.sum(cloud.p0 * np.exp(-np.sum(cloud.xyz**2, axis=1) / (2 * cloud.sigma**2)))
    # Within the ~4 % ripple of summing sigma = h/2 Gaussians on a grid of pitch h.
    assert centre_value == pytest.approx(1.0, rel=0.05)


def test_phantom_cloud_matches_volume(default_phantom):
    phantom = default_phantom
    assert isinstance(phantom, Phantom)
    vol = phantom.volume
    assert (phantom.cloud.p0 > 0).all()
    # Every ball sits on a voxel of the truth that it lights up.
    ijk = np.round((phantom.cloud.xyz - vol.origin) / vol.spacing).astype(int)
    assert (vol.data[tuple(ijk.T)] > 0).all()
    # The truth volume holds the cloud's mass (balls cut at the region's faces aside).
    mass = (phantom.cloud.p0 * profile_integral_factor() * phantom.cloud.sigma**3).sum()
    assert vol.data.sum() * np.prod(vol.spacing) == pytest.approx(mass, rel=0.1)


def test_load_phantom_sources(tmp_path):
    assert load_phantom("vessels", spacing=0.25e-3).volume.spacing[0] == 0.25e-3
    ply = tmp_path / "c.ply"
    write_ply(ply, GaussianCloud([[0, 0, 0]], [1], [1e-4]))
    from_ply = load_phantom(ply)
    assert from_ply.volume is None and len(from_ply.cloud) == 1
    h5 = tmp_path / "v.h5"
    with h5py.File(h5, "w") as f:
        f["volume"] = np.pad(np.ones((2, 2, 2)), 1)
        f["volume"].attrs["origin"] = [0, 0, 0.01]
        f["volume"].attrs["spacing"] = [1e-4, 1e-4, 1e-4]
    from_h5 = load_phantom(str(h5))
    assert from_h5.volume.shape == (4, 4, 4) and len(from_h5.cloud) == 8
    with pytest.raises(InputError, match="vessels"):
        load_phantom("veins")


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"region": (0, 1e-3, 0, 1e-3, 1e-3)}, "--region"),
        ({"region": (1e-3, 0, 0, 1e-3, 0, 1e-3)}, "--region"),
        ({"region": (-10, 10, -10, 10, 12, 18)}, "--region"),
        ({"spacing": 0.0}, "--spacing"),
        ({"spacing": 1e-6}, "--spacing"),
    ],
)
def test_vessels_bad_options(kwargs, option):
    with pytest.raises(InputError) as info:
        vessels_phantom(**kwargs)
    assert str(info.value).startswith(option)
