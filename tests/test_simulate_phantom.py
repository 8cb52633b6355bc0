"""The phantom: packaged atlases offline, anatomy, and the noise-free disease pattern (coarse 6 mm grid)."""

import copy
import socket

import numpy as np
import pytest

from datxai.config import load_config
from datxai.simulate import cohort, phantom


@pytest.fixture(scope="module")
def cfg(repo_root):
    return load_config(repo_root / "config" / "config.yaml")


@pytest.fixture(scope="module")
def anat(cfg):
    mp = pytest.MonkeyPatch()

    def no_network(*args, **kwargs):
        raise AssertionError("the phantom must not touch the network")

    mp.setattr(socket.socket, "connect", no_network)  # the atlases load offline, from installed packages
    try:
        grid = phantom.phantom_grid(cfg["grid"], 6.0)
        return phantom.build_anatomy(grid, phantom.required_regions(cfg["simulate"]))
    finally:
        mp.undo()


def test_atlas_files_are_packaged():
    from datxai.atlas import atlas_files

    assert all(p.is_file() for p in atlas_files().values())


def test_phantom_grid_covers_the_head(cfg, anat):
    g = anat.grid
    assert g.center_mm == tuple(cfg["grid"]["center_mm"]) and g.voxel_mm == 6.0
    head = anat.head
    faces = [head[0], head[-1], head[:, 0], head[:, -1], head[:, :, 0], head[:, :, -1]]
    assert max(float(f.max()) for f in faces) < 0.05  # nothing of the head touches the border
    # the MNI152 brain is 1.83 l; closing the sulci and filling the ventricles adds a little
    assert 1800 < anat.intracranial.sum() * g.voxel_ml < 2200
    assert anat.shell.sum() > 0.3 * anat.intracranial.sum()
    assert np.all(anat.intracranial + anat.shell <= 1 + 1e-6)


def test_anatomy_round_trips(anat, tmp_path):
    path = anat.save(tmp_path / "anat.npz")
    back = phantom.PhantomAnatomy.load(path)
    assert back.grid == anat.grid and set(back.prob) == set(anat.prob)
    np.testing.assert_array_equal(back.intracranial, anat.intracranial)
    with pytest.raises(Exception, match="not found"):
        phantom.PhantomAnatomy.load(tmp_path / "missing.npz")


def _rows(cfg):
    """A normal subject and the same subject with the disease (everything else equal)."""
    sim = copy.deepcopy(cfg["simulate"])
    sim["n_subjects"] = 20
    t = cohort.draw_cohort(sim, 1)
    normal = t[t["true_class"] == "normal"].iloc[0].to_dict()
    reduced = dict(normal, true_class="reduced", affected_side="L", putamen_loss_L=0.7, putamen_loss_R=0.4)
    for s, loss in (("L", 0.7), ("R", 0.4)):
        reduced[f"sbr_putamen_{s}"] = normal[f"sbr_putamen_{s}"] * (1 - loss)
    return sim, normal, reduced


def _maps(anat, sim, row):
    b = cohort.regional_binding(row, sim)
    loss = {s: row[f"putamen_loss_{s}"] for s in "LR"} if row["true_class"] == "reduced" else None
    return phantom.binding_map(anat, b, loss, sim["disease"]["posterior_gradient"],
                               sim["normal"]["regional_binding"]["cortex_gm"])


def _mean(anat, m, base, side):
    w = anat.prob[(base, side)]
    return float((m * w).sum() / w.sum())


def test_disease_pattern_in_the_noise_free_truth(cfg, anat):
    sim, normal, reduced = _rows(cfg)
    bn, br = _maps(anat, sim, normal), _maps(anat, sim, reduced)
    # putamen: reduced below normal, more on the affected (L) side; mean loss = the drawn loss
    for side, loss in (("L", 0.7), ("R", 0.4)):
        assert _mean(anat, br, "Putamen", side) < _mean(anat, bn, "Putamen", side)
    ratio_l = _mean(anat, br, "Putamen", "L") / _mean(anat, bn, "Putamen", "L")
    assert ratio_l < _mean(anat, br, "Putamen", "R") / _mean(anat, bn, "Putamen", "R")
    # posterior putamen loses more than anterior (posterior_gradient > 0)
    p = anat.prob[("Putamen", "L")] >= 0.3
    y = np.broadcast_to(anat.grid.axis_mm(1)[None, :, None], p.shape)
    post, ant = p & (y < np.median(y[p])), p & (y >= np.median(y[p]))
    assert (br[post] / bn[post]).mean() < (br[ant] / bn[ant]).mean()
    # planted: insula (both sides) and amygdala (ipsi = L) reduced by about the planted fraction
    # (diluted by the unchanged grey-matter background and neighbours at 6 mm)
    for base, side in (("Insular_Cortex", "L"), ("Insular_Cortex", "R"), ("Amygdala", "L"), ("Thalamus", "L")):
        assert _mean(anat, br, base, side) < 0.9 * _mean(anat, bn, base, side), (base, side)
    # everything else is untouched: identical wherever no striatal or planted region reaches
    changed = sum(anat.prob[(b, s)] for b in ("Putamen", "Caudate", "Accumbens") for s in "LR")
    changed = changed + sum(anat.prob[(p["region"], p["side"])] for p in cohort.planted_effects(reduced, sim))
    same = changed == 0
    for base, side in (("Amygdala", "R"), ("Hippocampus", "R"), ("Brain-Stem", "R")):
        core = same & (anat.prob[(base, side)] >= 0.3)
        assert core.sum() >= 2, (base, side)
        np.testing.assert_allclose(br[core], bn[core], rtol=1e-6)  # float32 summation order only
    np.testing.assert_allclose(br[same], bn[same], rtol=1e-6, atol=1e-7)


def test_activity_is_relative_to_the_background(cfg, anat):
    sim, normal, _ = _rows(cfg)
    act = phantom.activity_map(anat, _maps(anat, sim, normal), sim["normal"]["shell_uptake"])
    # deep white matter, away from every modelled region: concentration = background = 1
    regions = sum(anat.prob.values())
    wm = phantom._tissue("mni152_wm", anat.grid)
    deep = (wm > 0.9) & (regions < 0.01) & (anat.intracranial > 0.99)
    assert deep.sum() > 20
    assert np.median(act[deep]) == pytest.approx(1.0, abs=0.03)
    # the striatum is the hottest structure, the shell is low
    assert act[anat.prob[("Putamen", "L")] >= 0.5].mean() > 1.8
    assert act[(anat.shell > 0.9)].mean() == pytest.approx(sim["normal"]["shell_uptake"], rel=0.05)


def test_missing_region_is_named(anat):
    with pytest.raises(KeyError, match="Occipital_Pole"):
        phantom.binding_map(anat, {("Occipital_Pole", "L"): 0.2})
