"""fastgan.data.fit: arrays of another size are resized once, at load, the same from a read-only map."""

from __future__ import annotations

import warnings

import numpy as np

from fastgan.data.fit import fit_array


def test_a_read_only_array_resizes_like_a_writable_one_without_a_warning() -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    expected = fit_array(images.copy(), 1, 64)
    images.setflags(write=False)  # as np.load(..., mmap_mode="r") gives it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on a non-writable array given to from_numpy
        got = fit_array(images, 1, 64)
    assert got.shape == (5, 1, 64, 64) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
