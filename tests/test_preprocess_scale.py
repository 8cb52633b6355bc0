"""Scaling to a percentile of the reference region."""

import numpy as np
import pytest

from datxai.preprocess.scale import reference_value, scale_image


def test_reference_value_matches_a_hand_computed_percentile():
    img = np.zeros((7, 8, 9), dtype=np.float32)
    mask = np.zeros(img.shape, dtype=bool)
    vals = [5.0, 1.0, 7.0, 3.0, 2.0, 8.0, 4.0, 6.0]  # 8 values, sorted 1..8
    idx = [(0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 6), (5, 6, 7), (6, 7, 8), (6, 0, 0)]
    for v, i in zip(vals, idx):
        img[i], mask[i] = v, True
    img[3, 3, 3] = 1000.0  # outside the mask: must not count
    # 75th percentile, linear between order statistics: position 0.75 * (8 - 1) = 5.25
    # -> x(5) + 0.25 * (x(6) - x(5)) = 6 + 0.25 * 1 = 6.25 (0-based sorted values 1..8)
    assert reference_value(img, mask, 75) == pytest.approx(6.25, abs=1e-12)
    # 50th: position 3.5 -> 4.5
    assert reference_value(img, mask, 50) == pytest.approx(4.5, abs=1e-12)


def test_scale_image_sets_the_reference_percentile_to_one_and_keeps_the_input(rng):
    img = rng.gamma(4.0, 1.0, (7, 8, 9)).astype(np.float32)
    mask = rng.random(img.shape) < 0.4
    before = img.copy()
    scaled, ref = scale_image(img, mask, 75)
    assert scaled.dtype == np.float32
    # float32 storage of the scaled image: relative error ~6e-8 per voxel
    assert np.percentile(scaled[mask], 75) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(scaled * ref, img, rtol=1e-6)
    np.testing.assert_array_equal(img, before)


def test_bad_inputs_raise_clearly(rng):
    img = rng.random((7, 8, 9))
    with pytest.raises(ValueError, match="empty"):
        reference_value(img, np.zeros(img.shape, bool))
    with pytest.raises(ValueError, match="must be > 0"):
        reference_value(np.zeros((7, 8, 9)), np.ones((7, 8, 9), bool))
    with pytest.raises(ValueError, match="shape"):
        reference_value(img, np.ones((7, 8, 8), bool))
    with pytest.raises(ValueError, match="reference_percentile"):
        reference_value(img, np.ones(img.shape, bool), 0)
