"""Seed stability of the relevance clusters (datxai.group.stability, run_cluster_stability): hand-computed cases."""

import numpy as np
import pytest

from datxai.group.stability import cluster_stability, dice, pairwise_dice, stability_map


def test_dice_by_hand():
    a = np.zeros((4, 4, 4), bool)
    b = np.zeros_like(a)
    a[0, 0, :2] = True  # 2 voxels
    b[0, 0, 1:4] = True  # 3 voxels, 1 shared
    assert dice(a, b) == pytest.approx(2 * 1 / 5)
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0
    assert dice(np.zeros_like(a), np.zeros_like(a)) == 1.0  # both nets see nothing: they agree
    assert dice(a.astype(int) * 3, b.astype(int) * 7) == pytest.approx(0.4)  # label images: > 0 is in


def test_pairwise_and_stability_map():
    m = [np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])]
    table = pairwise_dice(dict(enumerate(m)))
    assert list(zip(table.repeat_a, table.repeat_b)) == [(0, 1), (0, 2), (1, 2)]
    assert list(table.dice) == pytest.approx([0.5, 1.0, 0.5])
    assert list(table.voxels_both) == [1, 2, 1]
    s = stability_map(m)
    assert s.dtype == np.float32 and list(s) == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    labels = np.array([1, 1, 2, 0])
    assert cluster_stability(labels, s) == pytest.approx({1: (1 + 2 / 3) / 2, 2: 1 / 3})
    with pytest.raises(ValueError):
        stability_map([])
