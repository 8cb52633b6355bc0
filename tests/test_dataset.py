"""Settings (full / striatum / nostriatum) and dataset stacking."""

import numpy as np
import pytest

from datxai.dataset import (ImageStack, box_mask, build_dataset, place_in_full, setting_shape, setting_view, to_full,
                            write_image_stack)
from datxai.grid import Grid
from datxai.io import save_nifti

GRID = Grid((9, 10, 7), 6.0, (0.0, -18.0, 11.0))  # x -24..24, y -45..9, z -7..29
BOX = [[-13.0, 13.0], [-30.0, 0.0], [-1.0, 18.0]]  # -> x -18..18 (5), y -27..-3 (5), z -1..17 (4)


def test_box_geometry():
    assert setting_shape("striatum", GRID, BOX) == (5, 5, 4)
    assert setting_shape("full", GRID, BOX) == setting_shape("nostriatum", GRID, BOX) == (9, 10, 7)
    m = box_mask(GRID, BOX)
    assert m.sum() == 5 * 5 * 4
    # every voxel centre inside the mask lies inside the mm box, every one outside does not
    xyz = GRID.coords_mm()
    inside = np.all([(xyz[a] >= BOX[a][0]) & (xyz[a] <= BOX[a][1]) for a in range(3)], axis=0)
    np.testing.assert_array_equal(m, inside)
    with pytest.raises(ValueError, match=r"setting must be one of \['full', 'striatum', 'nostriatum'\]"):
        setting_shape("cortex", GRID, BOX)


def test_crop_and_zeroing_agree_and_reassemble(rng):
    vol = rng.random(GRID.shape).astype(np.float32) + 0.5
    full = setting_view(vol, "full", GRID, BOX)
    crop = setting_view(vol, "striatum", GRID, BOX)
    rest = setting_view(vol, "nostriatum", GRID, BOX)
    np.testing.assert_array_equal(full, vol)
    assert crop.shape == (5, 5, 4)
    assert not setting_view(rest, "striatum", GRID, BOX).any()  # crop of the zeroed image is all zero
    np.testing.assert_array_equal(rest[~box_mask(GRID, BOX)], vol[~box_mask(GRID, BOX)])  # outside untouched
    np.testing.assert_array_equal(place_in_full(crop, GRID, BOX) + rest, vol)  # crop + rest = the image
    np.testing.assert_array_equal(to_full(crop, "striatum", GRID, BOX), place_in_full(crop, GRID, BOX))
    np.testing.assert_array_equal(to_full(rest, "nostriatum", GRID, BOX), rest)
    # views are copies: changing them leaves the input alone
    crop[:] = 0
    full[:] = 0
    assert vol.min() >= 0.5


def test_batches_use_the_last_three_axes(rng):
    batch = rng.random((4, 1, *GRID.shape))
    crops = setting_view(batch, "striatum", GRID, BOX)
    assert crops.shape == (4, 1, 5, 5, 4)
    np.testing.assert_array_equal(crops[2, 0], setting_view(batch[2, 0], "striatum", GRID, BOX))
    back = place_in_full(crops, GRID, BOX)
    assert back.shape == batch.shape
    with pytest.raises(ValueError, match="grid shape"):
        setting_view(rng.random((9, 10, 8)), "full", GRID, BOX)
    with pytest.raises(ValueError, match="box shape"):
        place_in_full(rng.random((5, 6, 3)), GRID, BOX)


@pytest.mark.parametrize("setting", ["full", "striatum", "nostriatum"])
def test_stacking_order_matches_the_table(tmp_path, setting):
    subjects = ["sub-0003", "sub-0001", "sub-0002"]  # split order, not sorted
    images, labels = {}, {}
    for i, s in enumerate(subjects):
        vol = np.full(GRID.shape, 10.0 * (i + 1), dtype=np.float32)  # a subject's id in its values
        images[s] = save_nifti(vol, GRID.affine, tmp_path / f"{s}.nii.gz")
        labels[s] = "reduced" if i == 1 else "normal"
    out = tmp_path / "ds" / f"{setting}.npy"
    table = build_dataset(images, subjects, labels, setting, GRID, BOX, out)
    arr = np.load(out, mmap_mode="r")
    assert arr.dtype == np.float32 and arr.shape == (3, *setting_shape(setting, GRID, BOX))
    assert list(table["subject"]) == subjects
    assert list(table["y"]) == [0, 1, 0] and list(table["label"]) == ["normal", "reduced", "normal"]
    for row, s in enumerate(table["subject"]):
        expect = setting_view(np.full(GRID.shape, 10.0 * (subjects.index(s) + 1), np.float32), setting, GRID, BOX)
        np.testing.assert_array_equal(arr[row], expect)


def test_stacking_fails_whole(tmp_path):
    s = "sub-0001"
    images = {s: save_nifti(np.ones(GRID.shape), GRID.affine, tmp_path / "a.nii.gz"),
              "sub-0002": save_nifti(np.ones((9, 10, 8)), np.eye(4), tmp_path / "b.nii.gz")}
    out = tmp_path / "ds" / "train.npy"
    with pytest.raises(Exception, match="b.nii.gz"):
        build_dataset(images, [s, "sub-0002"], {s: "normal", "sub-0002": "reduced"}, "full", GRID, BOX, out)
    assert not out.exists() and not list((tmp_path / "ds").iterdir())  # no partial or temporary file
    with pytest.raises(ValueError, match="no scaled image.*sub-0009"):
        build_dataset(images, ["sub-0009"], {}, "full", GRID, BOX, out)
    with pytest.raises(ValueError, match="valid label"):
        build_dataset(images, [s], {s: "abnormal"}, "full", GRID, BOX, out)
    # an empty subset (e.g. val of size 0) is a valid (0, ...) array
    build_dataset(images, [], {}, "striatum", GRID, BOX, out)
    assert np.load(out).shape == (0, 5, 5, 4)


def _cohort_nifti(tmp_path, rng, subjects):
    paths = [save_nifti(rng.uniform(0.5, 3.0, GRID.shape), GRID.affine, tmp_path / f"{s}.nii.gz") for s in subjects]
    return paths


@pytest.mark.parametrize("setting", ["full", "striatum", "nostriatum"])
def test_dataset_from_the_image_stack_equals_the_one_from_the_niftis(tmp_path, rng, setting):
    subjects = ["sub-0001", "sub-0002", "sub-0003", "sub-0004"]
    paths = _cohort_nifti(tmp_path, rng, subjects)
    write_image_stack(paths, subjects, GRID, tmp_path / "stack.npy", tmp_path / "stack.json")
    stack = ImageStack(tmp_path / "stack.npy", tmp_path / "stack.json")
    assert stack.subjects == subjects and stack.array.shape == (4, *GRID.shape)
    np.testing.assert_allclose(stack.affine, GRID.affine)
    labels = {s: ("reduced" if i % 2 else "normal") for i, s in enumerate(subjects)}
    order = ["sub-0003", "sub-0001", "sub-0004"]  # a subset in split order
    t_stack = build_dataset(stack, order, labels, setting, GRID, BOX, tmp_path / "a.npy")
    t_nifti = build_dataset(dict(zip(subjects, paths)), order, labels, setting, GRID, BOX, tmp_path / "b.npy")
    assert t_stack.equals(t_nifti)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_image_stack_errors_name_the_file_and_leave_nothing(tmp_path, rng):
    subjects = ["sub-0001", "sub-0002"]
    paths = _cohort_nifti(tmp_path, rng, subjects)
    save_nifti(np.ones(GRID.shape), np.diag([5.0, 5.0, 5.0, 1.0]), paths[1])  # right shape, wrong grid
    out = tmp_path / "st"
    with pytest.raises(ValueError, match="sub-0002.nii.gz: affine differs"):
        write_image_stack(paths, subjects, GRID, out / "stack.npy", out / "stack.json")
    assert not list(out.iterdir())  # no partial or temporary file
    with pytest.raises(ValueError, match="2 images for 3 subjects"):
        write_image_stack(paths, [*subjects, "sub-0003"], GRID, out / "stack.npy", out / "stack.json")
    paths = _cohort_nifti(tmp_path, rng, subjects)
    write_image_stack(paths, subjects, GRID, out / "stack.npy", out / "stack.json")
    stack = ImageStack(out / "stack.npy", out / "stack.json")
    with pytest.raises(ValueError, match=r"stack.npy: no image for subject\(s\) \['sub-0009'\]"):
        stack.rows(["sub-0001", "sub-0009"])
    with pytest.raises(ValueError, match="no scaled image.*sub-0009"):
        build_dataset(stack, ["sub-0009"], {"sub-0009": "normal"}, "full", GRID, BOX, out / "x.npy")
    other = Grid((9, 10, 7), 5.0, (0.0, -18.0, 11.0))
    with pytest.raises(ValueError, match="stack.npy: images of shape .* are not on the analysis grid"):
        build_dataset(stack, subjects, {s: "normal" for s in subjects}, "full", other, BOX, out / "x.npy")
    (out / "bad.json").write_text('{"subjects": ["sub-0001"], "affine": []}')
    with pytest.raises(ValueError, match="does not hold one image per subject of .*bad.json"):
        ImageStack(out / "stack.npy", out / "bad.json")
    (out / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not an image-stack sidecar"):
        ImageStack(out / "stack.npy", out / "broken.json")


def test_class_means_figure(tmp_path, rng):
    from datxai.dataset import plot_class_means

    np.save(tmp_path / "train.npy", rng.random((3, 5, 5, 4)).astype(np.float32))
    (tmp_path / "train.tsv").write_text("subject\tlabel\ty\nsub-1\tnormal\t0\nsub-2\treduced\t1\nsub-3\tnormal\t0\n")
    plot_class_means(tmp_path / "train.npy", tmp_path / "train.tsv", tmp_path / "f.png", "striatum")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "train.tsv").write_text("subject\tlabel\ty\nsub-1\tnormal\t0\n")
    with pytest.raises(ValueError, match="1 rows but"):
        plot_class_means(tmp_path / "train.npy", tmp_path / "train.tsv", tmp_path / "g.png", "striatum")
