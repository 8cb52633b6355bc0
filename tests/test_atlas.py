"""The packaged atlases load offline and land on the grid where anatomy says."""

import numpy as np
import pytest

from datxai import atlas as A


def test_atlas_files_ship_with_the_packages():
    files = A.atlas_files()  # raises if any is missing; nothing is downloaded
    assert all(p.stat().st_size > 1000 for p in files.values())
    names = A.region_names()
    assert len(names) == 113
    assert {"Left_Putamen", "Right_Putamen", "Left_Lateral_Ventricle", "Brain-Stem"} <= set(names)
    assert {"Insular_Cortex", "Amygdala", "Thalamus", "Caudate"} <= A.base_names()


def test_regions_fall_on_the_expected_side_and_volume(small_grid):
    at = A.AtlasOnGrid(small_grid)
    xyz = small_grid.coords_mm()
    for side, sign in (("L", -1), ("R", 1)):
        p = at.prob("Putamen", side)
        com_x = (xyz[0] * p).sum() / p.sum()
        # putamen centroids lie ~25 mm off the midline in MNI space
        assert sign * com_x == pytest.approx(25, abs=5)
        # Harvard-Oxford putamen ~6.5 ml per side (probability-weighted volume)
        assert p.sum() * small_grid.voxel_ml == pytest.approx(6.5, rel=0.2)
    # an unsided region split at x = 0 keeps its total
    bs = at.prob("Brain-Stem")
    assert (at.prob("Brain-Stem", "L") + at.prob("Brain-Stem", "R")).sum() == pytest.approx(bs.sum(), rel=1e-5)
    with pytest.raises(KeyError, match="unknown Harvard-Oxford region"):
        at.prob("Nucleus_Imaginarius")


def test_reference_region_excludes_striatum_and_is_most_of_the_brain(small_grid):
    at = A.AtlasOnGrid(small_grid)
    ref, striatum, brain = at.reference_mask, at.striatum_mask, at.brain_mask
    assert striatum.any() and not (ref & striatum).any()
    assert 0.8 < ref.sum() / brain.sum() < 1.0
    # the MNI152 brain is ~1.8 l (GM+WM >= 0.5 or inside the T1 brain)
    assert 1500 < brain.sum() * small_grid.voxel_ml < 2100
    # tissue maps are probabilities, not masks
    gm = at.gm
    assert 0 <= gm.min() and gm.max() <= 1 and ((gm > 0.05) & (gm < 0.95)).mean() > 0.05
    labels = at.label_image
    assert labels.max() <= 113 and labels[brain].astype(bool).mean() > 0.5


def test_bundle_round_trip_matches_direct_computation(small_grid, tmp_path):
    at = A.AtlasOnGrid(small_grid)
    path = tmp_path / "atlas.npz"
    A.save_bundle(at, path)
    back = A.load_bundle(path, grid=small_grid)
    np.testing.assert_array_equal(back.label_image, at.label_image)
    np.testing.assert_array_equal(back.reference_mask, at.reference_mask)
    np.testing.assert_array_equal(back.prob("Putamen", "L"), at.prob("Putamen", "L"))
    from datxai.grid import Grid

    with pytest.raises(ValueError, match="atlas bundle is for grid"):
        A.load_bundle(path, grid=Grid((18, 23, 19), 4.0))
