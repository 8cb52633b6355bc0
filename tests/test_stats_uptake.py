"""Cluster means against a loop reference on a non-cubic grid, file round trip, merging, the focus cluster."""

import numpy as np
import pandas as pd
import pytest

from datxai.io import InputError, read_tsv, save_nifti
from datxai.stats.uptake import choose_focus, cluster_means, compute_uptake, load_clusters, merge_uptake

SHAPE = (7, 8, 9)


@pytest.fixture
def labels(rng):
    lab = np.zeros(SHAPE, np.int32)
    lab[1:3, 2:5, 1:4] = 1
    lab[4:6, 0:2, 5:9] = 2
    lab[0, 7, 0] = 3  # a one-voxel cluster at a corner (axis mix-ups would miss it)
    return lab


def test_cluster_means_against_loop(rng, labels):
    imgs = rng.normal(1.0, 0.2, (5, *SHAPE))
    out = cluster_means(imgs, labels, [1, 2, 3])
    ref = np.array([[img[labels == k].mean() for k in (1, 2, 3)] for img in imgs])
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    # a permuted cluster order permutes the columns
    np.testing.assert_allclose(cluster_means(imgs, labels, [3, 1]), ref[:, [2, 0]], rtol=1e-12)
    with pytest.raises(ValueError, match="no voxel"):
        cluster_means(imgs, labels, [1, 9])


def _write_case(tmp_path, labels, rng, sides=("I", "C", "I"), aff=None):
    aff = np.diag([6.0, 6.0, 6.0, 1.0]) if aff is None else aff
    save_nifti(labels, aff, tmp_path / "clusters.nii.gz", dtype=np.int16)
    pd.DataFrame({"cluster": [1, 2, 3], "n_voxels": [18, 16, 1], "side": list(sides),
                  "label": ["Insular_Cortex", "Amygdala", "Thalamus"]}).to_csv(
        tmp_path / "clusters.tsv", sep="\t", index=False)
    paths, imgs = [], []
    for s in ("sub-0001", "sub-0002", "sub-0003"):
        img = rng.uniform(0.5, 1.5, SHAPE)
        p = tmp_path / f"{s}_space-MNI_desc-scaled_spect.nii.gz"
        save_nifti(img, aff, p)
        paths.append(p)
        imgs.append(img.astype(np.float32))
    return paths, np.array(imgs)


def test_compute_uptake_files(tmp_path, rng, labels):
    paths, imgs = _write_case(tmp_path, labels, rng)
    subjects = ["sub-0001", "sub-0002", "sub-0003"]
    out = compute_uptake(subjects, paths, tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")
    assert list(out.columns) == ["subject", "cluster", "cluster_label", "side", "uptake"]
    assert len(out) == 9
    row = out[(out["subject"] == "sub-0002") & (out["cluster"] == 2)].iloc[0]
    # float32 images: relative tolerance 1e-6
    assert row["uptake"] == pytest.approx(imgs[1][labels == 2].mean(), rel=1e-6)
    assert row["cluster_label"] == "Amygdala" and row["side"] == "C"


def test_compute_uptake_from_the_stack_equals_the_files(tmp_path, rng, labels):
    from datxai.dataset import ImageStack, write_image_stack
    from datxai.grid import Grid

    grid = Grid(SHAPE, 6.0)
    paths, _ = _write_case(tmp_path, labels, rng, aff=grid.affine)
    subjects = ["sub-0001", "sub-0002", "sub-0003"]
    write_image_stack(paths, subjects, grid, tmp_path / "stack.npy", tmp_path / "stack.json")
    stack = ImageStack(tmp_path / "stack.npy", tmp_path / "stack.json")
    ref = compute_uptake(subjects, paths, tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")
    # a subset in another order reads the right rows
    out = compute_uptake(subjects[::-1], stack, tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")
    pd.testing.assert_frame_equal(out.sort_values(["subject", "cluster"]).reset_index(drop=True),
                                  ref.sort_values(["subject", "cluster"]).reset_index(drop=True))
    with pytest.raises(ValueError, match="no image for subject"):
        compute_uptake(["sub-0009"], stack, tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")


def test_load_clusters_errors(tmp_path, rng, labels):
    _write_case(tmp_path, labels, rng, sides=("I", "L", "C"))
    with pytest.raises(InputError, match=r"side must be I, C or M, got \[.L.\]"):
        load_clusters(tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")
    lab = labels.copy()
    lab[lab == 3] = 0
    _write_case(tmp_path, lab, rng)
    with pytest.raises(InputError, match=r"cluster\(s\) \[3\] have no voxel"):
        load_clusters(tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")


def test_compute_uptake_wrong_grid(tmp_path, rng, labels):
    paths, _ = _write_case(tmp_path, labels, rng)
    save_nifti(np.ones((7, 8, 10)), np.eye(4), paths[1])
    with pytest.raises(InputError, match="sub-0002.*expected shape"):
        compute_uptake(["a", "b", "c"], paths, tmp_path / "clusters.nii.gz", tmp_path / "clusters.tsv")


def test_merge_names_missing_subject():
    up = pd.DataFrame({"subject": ["s1", "s2"], "cluster": 1, "cluster_label": "A", "side": "I", "uptake": 1.0})
    part = pd.DataFrame({"subject": ["s1"], "label": ["normal"]})
    with pytest.raises(InputError, match=r"participants.tsv: no row for subject\(s\) \['s2'\]"):
        merge_uptake(up, part, sources={"participants": "participants.tsv"})
    part = pd.DataFrame({"subject": ["s1", "s2"], "label": ["normal", "abnormal"]})
    with pytest.raises(InputError, match="normal|reduced"):
        merge_uptake(up, part)


def test_merge_takes_label_from_participants_even_if_the_table_has_one():
    """sbr.tsv carries a label column too; the participants sheet wins and no label_x/label_y appear."""
    sbr = pd.DataFrame({"subject": ["s1", "s2"], "sbr_putamen_ipsi": [1.0, 2.0], "label": ["stale", "stale"]})
    part = pd.DataFrame({"subject": ["s1", "s2"], "label": ["reduced", "normal"]})
    out = merge_uptake(sbr, part)
    assert out["label"].tolist() == ["reduced", "normal"]
    assert not {"label_x", "label_y"} & set(out.columns)


CLUSTERS = pd.DataFrame({"cluster": [1, 2, 3, 4], "label": ["Insular_Cortex", "Amygdala", "Insular_Cortex", "Insular_Cortex"],
                         "side": ["C", "I", "I", "I"], "n_voxels": [10, 20, 5, 8]})
TTESTS = pd.DataFrame({"cluster": [1, 2, 3, 4, 1, 2], "subset": ["train"] * 4 + ["test"] * 2,
                       "cohen_d": [-0.3, -0.9, 0.1, 0.2, -2.0, 0.0]})


def test_focus_by_label_and_side():
    f = choose_focus(CLUSTERS, TTESTS, "Insular_Cortex", "I")
    # two insula clusters on side I: the larger (8 voxels, cluster 4) is chosen
    assert f["cluster"] == 4 and not f["fallback"]
    assert "stats.focus" in f["reason"] and "largest of 2" in f["reason"]
    assert choose_focus(CLUSTERS, TTESTS, "Insular_Cortex", "C")["cluster"] == 1


def test_focus_fallback_when_label_missing():
    f = choose_focus(CLUSTERS, TTESTS, "Hippocampus", "I")
    # largest |d| in the TRAINING set is cluster 2 (0.9), not cluster 1 (2.0 in test)
    assert f["cluster"] == 2 and f["fallback"]
    assert "no cluster labelled Hippocampus" in f["reason"] and "0.90" in f["reason"]
    assert f["cluster_label"] == "Amygdala" and f["side"] == "I"
    empty = choose_focus(CLUSTERS.iloc[:0], TTESTS.iloc[:0], "Insular_Cortex", "I")
    assert empty["cluster"] is None


def test_uptake_tsv_roundtrip(tmp_path, rng, labels):
    from datxai.io import write_tsv

    paths, _ = _write_case(tmp_path, labels, rng)
    out = compute_uptake(["sub-0001", "sub-0002", "sub-0003"], paths, tmp_path / "clusters.nii.gz",
                         tmp_path / "clusters.tsv")
    write_tsv(out, tmp_path / "uptake.tsv")
    back = read_tsv(tmp_path / "uptake.tsv")
    np.testing.assert_allclose(back["uptake"], out["uptake"], rtol=1e-5)  # %.6g in the TSV
    assert back["subject"].tolist() == out["subject"].tolist()
