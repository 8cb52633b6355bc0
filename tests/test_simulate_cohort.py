"""Cohort-level draws: participants, binding model, reader flips, planted effects, poses (no atlas)."""

import copy

import numpy as np
import pytest

from datxai import geometry
from datxai.config import load_config
from datxai.simulate import cohort


@pytest.fixture(scope="module")
def cfg(repo_root):
    return load_config(repo_root / "config" / "config.yaml")


def _sim(cfg, n):
    sim = copy.deepcopy(cfg["simulate"])
    sim["n_subjects"] = n
    return sim


def test_participants_follow_the_config(cfg):
    sim = _sim(cfg, 1000)
    t = cohort.draw_cohort(sim, 11)
    p = cohort.participants(t)
    assert list(p.columns) == ["subject", "age", "sex", "label", "dose_mbq"]
    assert p["subject"].tolist()[:2] == ["sub-0001", "sub-0002"] and p["subject"].is_unique
    assert (t["true_class"] == "reduced").sum() == round(1000 * sim["fraction_reduced"])
    assert (t["sex"] == "F").sum() == round(1000 * sim["fraction_female"])
    assert p["age"].between(*sim["age_range"]).all()
    # clipped normal: the mean stays within 3 standard errors (SE = 11.2 / sqrt(1000) = 0.35)
    assert p["age"].mean() == pytest.approx(sim["age_mean"], abs=1.1)
    assert p["dose_mbq"].between(*sim["dose_mbq"]).all()
    lo, hi = sim["camera"]["counts_mcounts"]
    assert t["counts_mcounts"].between(lo, hi).all()
    assert np.corrcoef(t["dose_mbq"], t["counts_mcounts"])[0, 1] > 0.3  # counts scale with dose


def test_same_seed_same_cohort(cfg):
    sim = _sim(cfg, 50)
    a, b, c = cohort.draw_cohort(sim, 5), cohort.draw_cohort(sim, 5), cohort.draw_cohort(sim, 6)
    assert a.equals(b) and not a.equals(c)


def test_reader_disagreement_sits_at_the_borderline(cfg):
    sim = _sim(cfg, 1000)
    t = cohort.draw_cohort(sim, 3)
    flips = t["reader_flip"] == "yes"
    assert flips.sum() == round(1000 * sim["reader_disagreement"])
    assert ((t["label"] != t["true_class"]) == flips).all()
    score = np.minimum(t["sbr_putamen_L"], t["sbr_putamen_R"])
    normal, reduced = t["true_class"] == "normal", t["true_class"] == "reduced"
    # flipped normals are low normals, flipped reduced are high reduced
    assert (score[flips & normal] < score[normal].median()).all()
    assert (score[flips & reduced] > score[reduced].median()).all()


def test_disease_lowers_the_more_affected_putamen_most(cfg):
    t = cohort.draw_cohort(_sim(cfg, 600), 4)
    red = t[t["true_class"] == "reduced"]
    nor = t[t["true_class"] == "normal"]
    put = lambda d, s: d[f"sbr_putamen_{s}"]  # noqa: E731
    assert red[["sbr_putamen_L", "sbr_putamen_R"]].mean().max() < 0.7 * nor[["sbr_putamen_L", "sbr_putamen_R"]].mean().min()
    aff = red["affected_side"]
    lower = np.where(put(red, "L") < put(red, "R"), "L", "R")
    assert (aff == lower).all()
    # caudate loses less than putamen (caudate_fraction = 0.5)
    for s in "LR":
        assert (red[f"caudate_loss_{s}"] <= red[f"putamen_loss_{s}"] + 1e-12).all()
    assert (nor[["putamen_loss_L", "putamen_loss_R"]] == 0).all().all()


def test_age_decline_and_latent_factor(cfg):
    sim = _sim(cfg, 4000)
    t = cohort.draw_cohort(sim, 9)
    nor = t[t["true_class"] == "normal"]
    put = (nor["sbr_putamen_L"] + nor["sbr_putamen_R"]) / 2
    slope = np.polyfit(nor["age"], put, 1)[0]
    # SBR = P0 (1 - 0.05 (age - 67.5) / 10) x ...: slope = -0.005 / year x mean(P0 x factors); 20 % for sampling
    expected = -sim["normal"]["age_decline_striatum"] / 10 * put.mean() / np.mean(1 - 0.005 * (nor["age"] - 67.5))
    assert slope == pytest.approx(expected, rel=0.2)
    # the shared latent factor makes extrastriatal binding correlate with putamen SBR in both groups
    for cls in ("normal", "reduced"):
        d = t[t["true_class"] == cls]
        r = np.corrcoef(np.log(d["f_extrastriatal"]), np.log(np.minimum(d["sbr_putamen_L"], d["sbr_putamen_R"])))[0, 1]
        assert r > 0.1, cls  # expected ~0.2-0.45 (SE ~0.02 with n ~2000)
    # no latent factor -> no correlation in normals
    sim0 = copy.deepcopy(sim)
    sim0["normal"]["latent_sd"] = 0.0
    t0 = cohort.draw_cohort(sim0, 9)
    d = t0[(t0["true_class"] == "normal") & (t0["age"].between(60, 75))]
    assert abs(np.corrcoef(np.log(d["f_extrastriatal"]), np.log(d["sbr_putamen_L"]))[0, 1]) < 0.1


def test_planted_sides_follow_the_affected_striatum(cfg):
    sim = _sim(cfg, 40)
    t = cohort.draw_cohort(sim, 2)
    row = t[t["true_class"] == "reduced"].iloc[0].to_dict()
    ipsi = row["affected_side"]
    contra = "R" if ipsi == "L" else "L"
    planted = cohort.planted_effects(row, sim)
    got = {(p["region"], p["side"], p["relation"]) for p in planted}
    assert ("Insular_Cortex", ipsi, "ipsi") in got and ("Insular_Cortex", contra, "contra") in got  # both
    assert ("Amygdala", ipsi, "ipsi") in got and ("Amygdala", contra, "contra") not in got  # ipsi only
    b = cohort.regional_binding(row, sim)
    red = {item["regions"][0]: item["reduction"] for item in sim["disease"]["planted"]}
    assert b[("Amygdala", ipsi)] == pytest.approx(b[("Amygdala", contra)] * (1 - red["Amygdala"]))
    assert b[("Hippocampus", ipsi)] == pytest.approx(b[("Hippocampus", contra)])  # not planted
    normal = t[t["true_class"] == "normal"].iloc[0].to_dict()
    assert cohort.planted_effects(normal, sim) == []
    with pytest.raises(KeyError, match="sub-9999"):
        cohort.subject_row(t, "sub-9999")


def test_pose_is_the_geometry_convention(cfg):
    t = cohort.draw_cohort(_sim(cfg, 20), 1)
    row = t.iloc[3].to_dict()
    pose = cohort.subject_pose(row)
    ref = geometry.rigid_affine([row["rot_x_deg"], row["rot_y_deg"], row["rot_z_deg"]],
                                [row["trans_x_mm"], row["trans_y_mm"], row["trans_z_mm"]], row["head_scale"])
    np.testing.assert_allclose(pose, ref)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(row["head_scale"] ** 3)
    mr, mt = cfg["simulate"]["pose"]["max_rotation_deg"], cfg["simulate"]["pose"]["max_translation_mm"]
    assert t[["rot_x_deg", "rot_y_deg", "rot_z_deg"]].abs().max().max() <= mr
    assert t[["trans_x_mm", "trans_y_mm", "trans_z_mm"]].abs().max().max() <= mt
