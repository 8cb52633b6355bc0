"""The synthetic cohort: participants, subject parameters and the truth table.

Everything random is drawn once per cohort from
``derive_seed(seed, "simulate", "cohort")`` (vectorised over subjects), so the
table does not depend on the order in which subject jobs run.

Binding model (specific binding relative to the non-displaceable background)::

    putamen_s  = P0 * f_str * age_str * sex * asym_s * (1 - loss_s)
    caudate_s  = ratio * P0 * f_str * age_str * sex * asym_s * (1 - c * loss_s)
    region_r,s = b_r * f_ext * age_r * sex * (1 - planted_r,s)

with ``P0 ~ U(putamen_sbr)``, ``f_str = exp(latent_sd z + individual_sd e1)``,
``f_ext = exp(latent_sd z + individual_sd e2)`` (``z`` the latent factor
shared by striatum and extrastriatal regions), ``age = max(0.2, 1 - decline
(age - reference_age) / 10)``, ``sex = 1 + female_excess`` for women, ``asym`` a small
natural left/right asymmetry, ``loss`` the disease loss of a reduced subject
(more affected side ``L ~ U(putamen_loss)``, other side ``L * U(other_side_fraction)``),
``c`` = ``caudate_fraction``.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

from ..checks import check_choice
from ..config import derive_seed

log = logging.getLogger(__name__)

SIDES = ("L", "R")
PARTICIPANT_COLUMNS = ["subject", "age", "sex", "label", "dose_mbq"]


def _other(side: str) -> str:
    return "R" if side == "L" else "L"


def _age_factor(age, decline, reference_age):
    """Binding relative to that at ``reference_age``: ``1 - decline`` per decade, at least 0.2."""
    return np.maximum(0.2, 1.0 - decline * (np.asarray(age, float) - reference_age) / 10.0)


def subject_ids(n: int) -> list[str]:
    return [f"sub-{i:04d}" for i in range(1, n + 1)]


def draw_cohort(sim: dict, seed: int):
    """Draw the whole cohort: one row per subject with every parameter the simulation needs.

    Parameters
    ----------
    sim : the ``simulate`` config section.
    seed : the master seed.

    Returns
    -------
    pandas.DataFrame, the truth table (``cohort_truth.tsv``): subject, age,
    sex, true_class, label (the visual read), reader_flip, dose_mbq,
    counts_mcounts, affected_side (L/R: the side with the lower putamen
    binding), sbr_putamen_L/R, sbr_caudate_L/R (true mean specific binding),
    putamen_loss_L/R, caudate_loss_L/R, latent, f_striatum, f_extrastriatal,
    putamen_base, head_scale, rot_x/y/z_deg, trans_x/y/z_mm.
    """
    import pandas as pd

    rng = np.random.default_rng(derive_seed(seed, "simulate", "cohort"))
    n = int(sim["n_subjects"])
    nrm, dis, pose = sim["normal"], sim["disease"], sim["pose"]

    reduced = np.zeros(n, bool)
    reduced[rng.permutation(n)[: int(round(n * sim["fraction_reduced"]))]] = True
    female = np.zeros(n, bool)
    female[rng.permutation(n)[: int(round(n * sim["fraction_female"]))]] = True
    lo, hi = sim["age_range"]
    age = np.clip(np.round(rng.normal(sim["age_mean"], sim["age_sd"], n)), lo, hi)
    # dose: S1 reports 184 +- 10 MBq within 139-199 -> centre at 3/4 of the range, sd = range / 6
    dlo, dhi = sim["dose_mbq"]
    dose = np.round(np.clip(rng.normal(dlo + 0.75 * (dhi - dlo), (dhi - dlo) / 6.0, n), dlo, dhi), 1)
    # total counts: within counts_mcounts, half set by the dose, half by chance (uptake, timing)
    clo, chi = sim["camera"]["counts_mcounts"]
    dose_frac = (dose - dlo) / max(dhi - dlo, 1e-9)
    counts = clo + (chi - clo) * (0.5 * dose_frac + 0.5 * rng.uniform(0, 1, n))

    latent = rng.normal(0, 1, n)
    e = rng.normal(0, 1, (2, n))
    f_str = np.exp(nrm["latent_sd"] * latent + nrm["individual_sd"] * e[0])
    f_ext = np.exp(nrm["latent_sd"] * latent + nrm["individual_sd"] * e[1])
    p0 = rng.uniform(*nrm["putamen_sbr"], n)
    asym = np.exp(nrm.get("asymmetry_sd", 0.03) * rng.normal(0, 1, n) / 2)  # L multiplier; R = 1 / asym
    sex_f = np.where(female, 1.0 + nrm["female_excess"], 1.0)
    ref_age = nrm.get("reference_age", sim["age_mean"])
    age_str = _age_factor(age, nrm["age_decline_striatum"], ref_age)

    side_aff = np.where(rng.uniform(0, 1, n) < 0.5, "L", "R")
    loss_aff = np.where(reduced, rng.uniform(*dis["putamen_loss"], n), 0.0)
    loss_other = loss_aff * rng.uniform(*dis["other_side_fraction"], n)
    loss = {s: np.where(side_aff == s, loss_aff, loss_other) for s in SIDES}

    base = p0 * f_str * age_str * sex_f
    asym_s = {"L": asym, "R": 1.0 / asym}
    put = {s: base * asym_s[s] * (1 - loss[s]) for s in SIDES}
    cau = {s: nrm["caudate_over_putamen"] * base * asym_s[s] * (1 - dis["caudate_fraction"] * loss[s]) for s in SIDES}
    # the more affected side of a normal subject is its (naturally) lower side
    affected = np.where(reduced, side_aff, np.where(put["L"] <= put["R"], "L", "R"))

    mr, mt = pose["max_rotation_deg"], pose["max_translation_mm"]
    rot = rng.uniform(-mr, mr, (n, 3))
    trans = rng.uniform(-mt, mt, (n, 3))
    scale = np.exp(rng.normal(0, pose["head_scale_sd"], n))

    table = pd.DataFrame({
        "subject": subject_ids(n),
        "age": age.astype(int),
        "sex": np.where(female, "F", "M"),
        "true_class": np.where(reduced, "reduced", "normal"),
        "dose_mbq": dose,
        "counts_mcounts": np.round(counts, 4),
        "affected_side": affected,
        "sbr_putamen_L": put["L"], "sbr_putamen_R": put["R"],
        "sbr_caudate_L": cau["L"], "sbr_caudate_R": cau["R"],
        "putamen_loss_L": loss["L"], "putamen_loss_R": loss["R"],
        "caudate_loss_L": dis["caudate_fraction"] * loss["L"], "caudate_loss_R": dis["caudate_fraction"] * loss["R"],
        "latent": latent, "f_striatum": f_str, "f_extrastriatal": f_ext, "putamen_base": p0,
        "head_scale": scale,
        "rot_x_deg": rot[:, 0], "rot_y_deg": rot[:, 1], "rot_z_deg": rot[:, 2],
        "trans_x_mm": trans[:, 0], "trans_y_mm": trans[:, 1], "trans_z_mm": trans[:, 2],
    })
    flip = _reader_flips(np.minimum(put["L"], put["R"]), reduced, sim["reader_disagreement"])
    table.insert(4, "label", np.where(reduced ^ flip, "reduced", "normal"))
    table.insert(5, "reader_flip", np.where(flip, "yes", "no"))
    log.info("cohort: %d subjects, %d reduced (true), %d reader flips, %d female",
             n, reduced.sum(), flip.sum(), female.sum())
    return table


def _reader_flips(score: np.ndarray, reduced: np.ndarray, fraction: float) -> np.ndarray:
    """Borderline cases whose visual read disagrees with the truth.

    The threshold on the lower putamen binding that best separates the classes
    is found; the ``round(fraction * n)`` subjects closest to it flip.
    """
    n = len(score)
    n_flip = int(round(fraction * n))
    flip = np.zeros(n, bool)
    if n_flip == 0 or reduced.all() or not reduced.any():
        return flip
    cand = np.sort(score)
    cand = (cand[1:] + cand[:-1]) / 2
    errors = [np.sum((score < t) != reduced) for t in cand]
    t = cand[int(np.argmin(errors))]
    flip[np.argsort(np.abs(score - t), kind="stable")[:n_flip]] = True
    return flip


def participants(truth):
    """The participants sheet (what a clinic would have): subject, age, sex, label, dose_mbq."""
    return truth[PARTICIPANT_COLUMNS].copy()


def subject_row(truth, subject: str) -> dict:
    """One subject's row of the truth table as a dict (KeyError naming the subject if absent)."""
    rows = truth[truth["subject"] == subject]
    if len(rows) != 1:
        raise KeyError(f"subject {subject!r} is not in the cohort truth table ({len(truth)} subjects)")
    return rows.iloc[0].to_dict()


def subject_pose(row: dict) -> np.ndarray:
    """The 4x4 pose ``native_mm = pose @ mni_mm`` (``geometry.rigid_affine`` with the head scale)."""
    from ..geometry import rigid_affine

    return rigid_affine([row["rot_x_deg"], row["rot_y_deg"], row["rot_z_deg"]],
                        [row["trans_x_mm"], row["trans_y_mm"], row["trans_z_mm"]], row["head_scale"])


def planted_effects(row: dict, sim: dict) -> list[dict]:
    """Planted extrastriatal reductions of one subject, with sides resolved to L/R.

    Returns ``[{region, side (L|R), relation (ipsi|contra), reduction}]``;
    empty for a truly normal subject.
    """
    if row["true_class"] != "reduced":
        return []
    out = []
    ipsi = row["affected_side"]
    for item in sim["disease"].get("planted", []) or []:
        rel = check_choice("simulate.disease.planted: side", item["side"], ("ipsi", "contra", "both"))
        sides = {"ipsi": [ipsi], "contra": [_other(ipsi)], "both": [ipsi, _other(ipsi)]}[rel]
        for region in item["regions"]:
            for s in sides:
                out.append({"region": region, "side": s, "relation": "ipsi" if s == ipsi else "contra",
                            "reduction": float(item["reduction"])})
    return out


def regional_binding(row: dict, sim: dict) -> dict:
    """``{(base, side): specific binding}`` of one subject (putamen before its loss gradient).

    Striatal values come from the truth row; extrastriatal ones from
    ``normal.regional_binding`` scaled by the subject's factors and reduced
    by the planted effects. Regions planted but without a baseline binding
    take ``cortex_gm``.
    """
    nrm = sim["normal"]
    sex_f = 1.0 + nrm["female_excess"] if row["sex"] == "F" else 1.0
    out = {}
    for s in SIDES:
        loss = row[f"putamen_loss_{s}"]
        out[("Putamen", s)] = row[f"sbr_putamen_{s}"] / (1 - loss) if loss < 1 else 0.0
        out[("Caudate", s)] = row[f"sbr_caudate_{s}"]
        out[("Accumbens", s)] = row[f"sbr_caudate_{s}"]
    base_binding = {k: v for k, v in nrm["regional_binding"].items() if k != "cortex_gm"}
    planted = planted_effects(row, sim)
    for p in planted:
        base_binding.setdefault(p["region"], nrm["regional_binding"].get("cortex_gm", 0.0))
    for region, b in base_binding.items():
        decline = nrm["age_decline_thalamus"] if region == "Thalamus" else nrm.get("age_decline_extrastriatal", 0.03)
        age_f = float(_age_factor(row["age"], decline, nrm.get("reference_age", sim["age_mean"])))
        f = row["f_extrastriatal"] * age_f * sex_f if b > 0 else 1.0
        for s in SIDES:
            out[(region, s)] = b * f
    for p in planted:
        out[(p["region"], p["side"])] *= 1 - p["reduction"]
    return out


def example_subjects(sim: dict, seed: int) -> tuple[str, str]:
    """The first truly normal and the first truly reduced subject (for the montage); cheap, no atlas."""
    t = draw_cohort(sim, seed)
    normal = t.loc[(t.true_class == "normal") & (t.label == "normal"), "subject"]
    reduced = t.loc[(t.true_class == "reduced") & (t.label == "reduced"), "subject"]
    if normal.empty or reduced.empty:
        raise ValueError("the synthetic cohort needs at least one normal and one reduced subject")
    return normal.iloc[0], reduced.iloc[0]


def simulate_subject(row: dict, anat, sim: dict, seed: int) -> dict:
    """Simulate one subject: phantom, camera, noise.

    Parameters
    ----------
    row : the subject's row of the truth table (:func:`draw_cohort`).
    anat : :class:`~datxai.simulate.phantom.PhantomAnatomy`.
    sim : the ``simulate`` config section.
    seed : master seed (the noise takes ``derive_seed(seed, "simulate", "noise", subject)``).

    Returns
    -------
    dict with ``activity`` (noise-free, phantom grid, MNI), ``binding``,
    ``pose`` (4x4), ``planted`` (list), ``expected`` and ``counts``
    (``(n_views, n_rows, n_bins)``), ``camera``, ``noise_free_sbr``
    (probability-weighted mean binding per striatal region and side).
    """
    from . import phantom
    from .camera import Camera, add_noise, project

    subject = row["subject"]
    nrm, dis = sim["normal"], sim["disease"]
    regional = regional_binding(row, sim)
    loss = {s: row[f"putamen_loss_{s}"] for s in SIDES} if row["true_class"] == "reduced" else None
    binding = phantom.binding_map(anat, regional, loss, dis["posterior_gradient"],
                                  nrm["regional_binding"].get("cortex_gm", 0.0))
    activity = phantom.activity_map(anat, binding, nrm.get("shell_uptake", 0.3))
    pose = subject_pose(row)
    camera = Camera.from_config(sim["camera"])
    log.info("%s: projecting %d views of %d x %d bins", subject, camera.n_views, camera.n_bins, camera.n_rows)
    expected = project(activity, anat.grid, camera, pose=pose, head=anat.head)
    rng = np.random.default_rng(derive_seed(seed, "simulate", "noise", subject))
    counts = add_noise(expected, row["counts_mcounts"] * 1e6, rng)
    sbr = {}  # mean binding over the voxels of probability >= 0.5 (includes the atlas' partial volume)
    for base in ("Putamen", "Caudate"):
        for s in SIDES:
            m = anat.prob[(base, s)] >= 0.5
            sbr[f"{base.lower()}_{s}"] = float(binding[m].mean()) if m.any() else float("nan")
    return {"subject": subject, "activity": activity, "binding": binding, "pose": pose,
            "planted": planted_effects(row, sim), "expected": expected, "counts": counts,
            "camera": camera, "noise_free_sbr": sbr, "regional_binding": regional}


def truth_record(row: dict, result: dict, identity: dict) -> dict:
    """The per-subject truth (``{subject}_truth.json``).

    Keys: ``pose`` (4x4, ``native_mm = pose @ mni_mm``) and its parameters,
    ``planted`` (``region, side L|R, relation ipsi|contra, reduction``),
    ``regional_binding``, ``noise_free_binding`` (mean binding over atlas
    voxels of probability >= 0.5), the true class/side/SBR, counts and
    ``dicom_identifiers`` (the fake identifiers written into the DICOM).
    """
    keep = ("true_class", "label", "affected_side", "age", "sex", "dose_mbq", "head_scale",
            "rot_x_deg", "rot_y_deg", "rot_z_deg", "trans_x_mm", "trans_y_mm", "trans_z_mm",
            "sbr_putamen_L", "sbr_putamen_R", "sbr_caudate_L", "sbr_caudate_R", "latent")
    return {
        "subject": result["subject"],
        **{k: row[k] for k in keep},
        "pose": np.asarray(result["pose"]).tolist(),
        "pose_convention": "native_mm = pose @ mni_mm (datxai.geometry)",
        "planted": result["planted"],
        "regional_binding": [{"region": b, "side": s, "binding": float(v)}
                             for (b, s), v in sorted(result["regional_binding"].items())],
        "noise_free_binding": result["noise_free_sbr"],
        "total_counts": int(result["counts"].sum()),
        "expected_counts": float(row["counts_mcounts"]) * 1e6,
        "dicom_identifiers": identity,
    }


def write_participants(sim: dict, seed: int, participants_path, truth_path):
    """Draw the cohort and write ``participants.tsv`` and ``truth/cohort_truth.tsv``. Returns the truth table."""
    from ..io import write_tsv

    truth = draw_cohort(sim, seed)
    write_tsv(truth, truth_path)
    write_tsv(participants(truth), participants_path)
    return truth


def _file_stamp(path) -> tuple:
    """``(path, mtime_ns, size)``: a cache key that changes when the file is rewritten."""
    st = os.stat(path)
    return (os.fspath(path), st.st_mtime_ns, st.st_size)


def _batch_inputs(truth_tsv, anatomy_npz):
    """The truth table and the phantom anatomy, read once per batch (see :func:`_read_batch_inputs`)."""
    from ..io import InputError

    for path, what in ((truth_tsv, "cohort truth table"), (anatomy_npz, "phantom anatomy")):
        if not os.path.isfile(path):
            raise InputError(f"{path}: {what} not found")
    return _read_batch_inputs(_file_stamp(truth_tsv), _file_stamp(anatomy_npz))


@functools.lru_cache(maxsize=1)
def _read_batch_inputs(truth_stamp: tuple, anatomy_stamp: tuple):
    """Read the shared inputs of a batch of subjects; keyed on path, mtime and size.

    Reading the compressed anatomy took ~0.2 s per subject (a fifth of its
    simulation). The anatomy's arrays are returned read-only, so no subject can
    change what the next one sees.
    """
    from ..io import read_tsv
    from . import phantom

    truth = read_tsv(truth_stamp[0], required=["subject", "true_class", "affected_side"])
    anat = phantom.PhantomAnatomy.load(anatomy_stamp[0])
    for arr in (anat.intracranial, anat.shell, anat.gm, *anat.prob.values()):
        arr.flags.writeable = False
    return truth, anat


def write_subject(subject: str, truth_tsv, anatomy_npz, sim: dict, grid_cfg: dict, seed: int,
                  dicom_path, truth_json, activity_nii) -> dict:
    """Simulate one subject and write its DICOM, truth JSON and noise-free activity (analysis grid, unposed).

    Returns the subject's truth record. Outputs are written atomically.
    """
    from ..grid import Grid
    from ..io import save_nifti, write_json
    from . import dicom, phantom

    truth, anat = _batch_inputs(truth_tsv, anatomy_npz)
    row = subject_row(truth, subject)
    result = simulate_subject(row, anat, sim, seed)
    identity = dicom.fake_identity(seed, subject, int(row["age"]), row["sex"])
    dicom.write_nm(dicom_path, result["counts"], result["camera"], subject, identity, seed,
                   int(row["age"]), row["sex"], float(row["dose_mbq"]))
    grid = Grid.from_config(grid_cfg)
    save_nifti(phantom.to_analysis_grid(result["activity"], anat.grid, grid), grid.affine, activity_nii,
               header_extra={"mni": True})
    record = truth_record(row, result, identity)
    write_json(record, truth_json)
    log.info("%s (%s): %d counts in %d frames", subject, row["true_class"], record["total_counts"], result["counts"].shape[0])
    return record
