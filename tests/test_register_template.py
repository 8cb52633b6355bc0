"""Template building: symmetrisation, balanced subject choice, the atlas seed, iterative refinement."""

import numpy as np
import pandas as pd
import pytest

from datxai.geometry import rigid_affine
from datxai.grid import Grid
from datxai.io import InputError
from datxai.register.affine import resample_affine, smooth_mm
from datxai.register.template import build_template, phantom_image, seed_template, select_template_subjects, symmetrise

GRID = Grid((28, 34, 26), 5.0, (0.0, -13.0, 9.0))
NATIVE_SHAPE = (36, 36, 34)
NATIVE = np.diag([5.0, 5.0, 5.0, 1.0])
NATIVE[:3, 3] = -5.0 * (np.array(NATIVE_SHAPE) - 1) / 2


def test_symmetrise_is_a_symmetric_projection():
    img = np.random.default_rng(0).random((7, 8, 9)).astype(np.float32)
    sym = symmetrise(img)
    np.testing.assert_array_equal(sym, sym[::-1])  # symmetric about x = 0 (axis 0)
    np.testing.assert_allclose(symmetrise(sym), sym)  # idempotent
    assert sym.mean() == pytest.approx(img.mean(), rel=1e-6)  # preserves the total


def participants(n_normal, n_reduced):
    subj = [f"sub-{i:04d}" for i in range(1, n_normal + n_reduced + 1)]
    return pd.DataFrame({"subject": subj, "label": ["normal"] * n_normal + ["reduced"] * n_reduced,
                         "true_class": ["reduced"] * n_normal + ["normal"] * n_reduced})


def test_template_subjects_balanced_and_reproducible():
    df = participants(30, 25)
    a = select_template_subjects(df, 10, seed=5)
    lab = df.set_index("subject").loc[a, "label"]
    assert (lab == "normal").sum() == 5 and (lab == "reduced").sum() == 5
    assert a == select_template_subjects(df.sample(frac=1, random_state=1), 10, seed=5)  # row order irrelevant
    assert a != select_template_subjects(df, 10, seed=6)


def test_template_subjects_use_the_visual_read_only():
    df = participants(30, 25)
    other = df.assign(true_class=df["true_class"][::-1].to_numpy())
    assert select_template_subjects(df, 10, seed=5) == select_template_subjects(other, 10, seed=5)


def test_template_subjects_fill_a_shortage_and_reject_bad_labels():
    chosen = select_template_subjects(participants(20, 2), 10, seed=1)
    assert len(chosen) == 10 and {"sub-0021", "sub-0022"} <= set(chosen)
    with pytest.raises(InputError, match="label"):
        select_template_subjects(pd.DataFrame({"subject": ["sub-1", "sub-2"], "label": ["normal", "abnormal"]}), 2, 0)


def test_build_template_is_symmetric_and_close_to_the_truth():
    rng = np.random.default_rng(1)
    truth = phantom_image(GRID.shape, GRID.affine, scale=0.75, fwhm_mm=8.0)
    images = []
    for k in range(3):
        pose = rigid_affine(rng.uniform(-6, 6, 3), rng.uniform(-8, 8, 3), 1.0)
        src = phantom_image(NATIVE_SHAPE, np.linalg.inv(pose) @ NATIVE, scale=0.75, fwhm_mm=0.0)
        src = smooth_mm(src, NATIVE, 8.0) * (20 + 10 * k)  # different gains: normalised away
        images.append((src + rng.normal(0, 0.5, src.shape).astype(np.float32), NATIVE))
    seed = smooth_mm(truth, GRID.affine, 10.0)  # a blurred start
    ref = truth > 0.5
    tpl, records = build_template(images, seed, GRID, ref, iterations=1, fwhm_mm=6.0)
    np.testing.assert_array_equal(tpl, tpl[::-1])
    assert len(records) == 3 and not any(r["diverged"] for r in records)
    assert tpl[ref].mean() == pytest.approx(seed[ref].mean(), rel=1e-5)  # keeps the seed's units
    # registered and averaged, the template is sharper than the seed: closer to the truth
    assert np.abs(tpl - truth).mean() < np.abs(seed - truth).mean()
    assert np.corrcoef(tpl.ravel(), truth.ravel())[0, 1] > 0.98
    tpl0, rec0 = build_template(images, seed, GRID, ref, iterations=0)
    np.testing.assert_allclose(tpl0, symmetrise(seed))
    assert rec0 == []
    # the same template when the registrations run as one torch batch (normalize.engine torch)
    tpl_b, rec_b = build_template(images, seed, GRID, ref, iterations=1, fwhm_mm=6.0, device="cpu")
    assert np.abs(tpl_b - tpl).max() < 1e-3 * tpl.max()
    assert [r["diverged"] for r in rec_b] == [r["diverged"] for r in records]
    np.testing.assert_allclose([r["cost"] for r in rec_b], [r["cost"] for r in records], rtol=1e-4)


def test_seed_template_from_atlas():
    from datxai.atlas import atlas_on_grid

    grid = Grid((24, 30, 24), 6.0)
    atlas = atlas_on_grid(grid)
    seed = seed_template(atlas)
    np.testing.assert_array_equal(seed, seed[::-1])
    striatum = atlas.striatum_mask
    bg = atlas.reference_mask
    # DAT-like: striatum well above the brain background, background ~1 after 12 mm smoothing, empty outside
    assert seed[striatum].mean() > 2.0 * seed[bg].mean()
    assert 0.6 < seed[bg].mean() < 1.1
    assert seed[~atlas.brain_mask].mean() < 0.5 * seed[bg].mean()
    assert seed[atlas.mask("Lateral_Ventricle", threshold=0.5)].mean() < seed[atlas.mask("Thalamus")].mean()


def test_the_template_keeps_the_frame_of_its_seed():
    # every scan 10 % larger than the seed (like the enlargement without attenuation correction): the average of
    # scans registered to the seed lies in the seed's frame, so registrations to the built template keep size 1.1
    # (the frame is the seed's: the workflow seeds with, and places the template on, the MNI anchor)
    from datxai.register.affine import register

    rng = np.random.default_rng(2)
    truth = phantom_image(GRID.shape, GRID.affine, scale=0.75, fwhm_mm=8.0)
    images = []
    for _ in range(2):
        pose = rigid_affine(rng.uniform(-5, 5, 3), rng.uniform(-5, 5, 3), 1.1)
        src = smooth_mm(phantom_image(NATIVE_SHAPE, np.linalg.inv(pose) @ NATIVE, scale=0.75, fwhm_mm=0.0), NATIVE, 8.0)
        images.append((src, NATIVE))
    ref = truth > 0.5
    tpl, _ = build_template(images, truth, GRID, ref, iterations=1, fwhm_mm=6.0)
    m = register(*images[0], tpl, GRID.affine, fwhm_mm=6.0).matrix
    # 5 mm voxels: size within 2 % (about 1 mm at the edge of the 0.75-size head)
    assert np.cbrt(np.linalg.det(m[:3, :3])) == pytest.approx(1.1, abs=0.02)
