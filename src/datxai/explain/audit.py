"""File-level entry of the relevance maps' audit (issue 21): faithfulness and sanity of one setting's maps.

Reads a trained model and its test set, runs :mod:`datxai.explain.faithfulness`
(region perturbation with LRP, gradient x input and random rankings; cascading
parameter randomisation and the random-logit check) and writes tables and one
figure. The metrics themselves are defined and tested in
:mod:`datxai.explain.faithfulness`.

Choices (stated in the report's captions):

* **Target**: the class each case is predicted as (its softmax probability is
  what region perturbation tracks; the maps of LRP and gradient x input are of
  that logit, whatever ``explain.target`` chose for the study's maps).
* **Reference** of a removed patch: the mean training image of the setting, so
  that removal moves a region towards the average scan (of both classes)
  instead of to an out-of-distribution zero, which a CNN reads as a strong
  signal of its own.
* **Random ranking**: ``random_seeds`` seeds derived from the master seed; each
  case's AOPC averaged over them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..io import InputError, write_tsv
from .lrp import LRPConfig

logger = logging.getLogger(__name__)


def paired_rows(table, n_boot: int, seed: int, level: float = 0.95) -> list[dict]:
    """LRP's AOPC minus random's and minus gradient x input's, paired over cases, with bootstrap CIs."""
    from .faithfulness import paired_aopc_difference

    rows = []
    for other in ("random", "gradient_x_input"):
        if other in set(table["ranking"]) and "lrp" in set(table["ranking"]):
            d = paired_aopc_difference(table, a="lrp", b=other, n_boot=n_boot, seed=seed, level=level)
            rows.append({"ranking": f"lrp - {other}", "aopc_mean": d["mean_difference"], "ci_low": d["ci_low"],
                         "ci_high": d["ci_high"], "n_cases": d["n_cases"], "fraction_lrp_larger": d["fraction_a_larger"]})
    return rows


def run_faithfulness(model_path, images_npy, table_tsv, train_npy, out_curves, out_aopc, out_randomisation,
                     out_figure, setting: str, explain: dict, checks: dict, seed: int, device: str = "cpu"):
    """Region perturbation (AOPC) and randomisation checks of one setting's test cases -> 3 TSVs + a figure."""
    import pandas as pd
    import torch

    from ..model import load_model
    from ..model.train import load_dataset
    from .faithfulness import cascading_randomisation, perturbation_experiment, random_logit_similarity

    cfg = LRPConfig.from_config(explain)
    model, _ = load_model(model_path)
    model = model.to(torch.device(device)).eval()
    ds = load_dataset(images_npy, table_tsv)
    if tuple(ds.x.shape[1:]) != tuple(model.input_shape):
        raise InputError(f"{images_npy}: images of shape {ds.x.shape[1:]} do not fit the model {model_path}")
    try:
        train = np.load(train_npy, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InputError(f"{train_npy}: not a readable .npy ({exc})") from exc
    if tuple(train.shape[1:]) != tuple(ds.x.shape[1:]):
        raise InputError(f"{train_npy}: training images {train.shape[1:]} differ from the test images {ds.x.shape[1:]}")
    reference = np.asarray(train, np.float64).mean(axis=0).astype(np.float32)
    n = len(ds.subjects) if not checks["max_cases"] else min(len(ds.subjects), int(checks["max_cases"]))
    x = np.array(ds.x[:n], np.float32)  # a writable copy of the memory map
    seeds = [int(seed) + i for i in range(int(checks["random_seeds"]))]
    patch = (int(checks["patch_voxels"]),) * 3
    logger.info("%s: region perturbation of %d test cases, patches of %s voxels, %d steps of %.3g of the patches, "
                "reference = mean of %d training images; random rankings with seeds %s", setting, n, patch,
                checks["steps"], checks["fraction_per_step"], len(train), seeds)
    curves, summary = perturbation_experiment(
        model, x, reference=reference, rankings=("lrp", "gradient_x_input", "random"), random_seeds=seeds,
        patch=patch, steps=int(checks["steps"]), fraction_per_step=float(checks["fraction_per_step"]),
        case_ids=list(ds.subjects[:n]), lrp_config=cfg, n_boot=int(checks["n_boot"]), boot_seed=int(seed))
    aopc = pd.concat([summary, pd.DataFrame(paired_rows(curves, int(checks["n_boot"]), int(seed)))],
                     ignore_index=True)
    for r in aopc.itertuples():
        logger.info("%s AOPC %-26s %.4f [%.4f, %.4f]", setting, r.ranking, r.aopc_mean, r.ci_low, r.ci_high)
    m = min(n, int(checks["randomisation_cases"]))
    parts = []
    for method in ("lrp", "gradient_x_input"):
        res = cascading_randomisation(model, x[:m], seed=int(seed), method=method, lrp_config=cfg)
        f = res.to_frame()
        f.insert(0, "check", "cascading")
        parts.append(f)
        logit = random_logit_similarity(model, x[:m], seed=int(seed), method=method, lrp_config=cfg)
        parts.append(pd.DataFrame({"check": "random_logit", "method": method, "step": -1, "layer": "other logit",
                                   "case": logit["case"], "spearman": logit["spearman"], "ssim": logit["ssim"]}))
        means = res.mean()
        logger.info("%s %s randomisation, mean Spearman by layers randomised: %s", setting, method,
                    ", ".join(f"{lay} {v:.2f}" for lay, v in zip(means["layer"], means["spearman_mean"])))
    randomisation = pd.concat(parts, ignore_index=True)
    randomisation.insert(0, "setting", setting)
    curves.insert(0, "setting", setting)
    aopc.insert(0, "setting", setting)
    write_tsv(curves, out_curves)
    write_tsv(aopc, out_aopc)
    write_tsv(randomisation, out_randomisation)
    plot_audit(curves, aopc, randomisation, setting, out_figure)
    return aopc, randomisation


def plot_audit(curves, aopc, randomisation, setting: str, path) -> None:
    """Left: mean P(predicted class) against the share of patches removed, per ranking (random: mean of its
    seeds); right: mean Spearman and SSIM of |R| against the trained maps, layer by layer randomised."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = {"lrp": "LRP", "gradient_x_input": "gradient x input", "random": "random"}
    colours = {"lrp": "C3", "gradient_x_input": "C0", "random": "0.4"}
    for ranking, g in curves.groupby("ranking", sort=False):
        mean = g.groupby("fraction_removed")["p_target"].mean()
        row = aopc[aopc["ranking"] == ranking]
        label = names.get(ranking, ranking)
        if len(row):
            r = row.iloc[0]
            label += f": AOPC {r.aopc_mean:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
        a.plot(100 * mean.index, mean.values, marker=".", color=colours.get(ranking), label=label)
    a.set_xlabel("patches removed (%), most relevant first")
    a.set_ylabel("mean P(predicted class)")
    a.set_title(f"{setting}: region perturbation (test set)")
    a.legend(fontsize=8)
    cas = randomisation[randomisation["check"] == "cascading"]
    for method, g in cas.groupby("method", sort=False):
        means = g.groupby("step").agg(layer=("layer", "first"), spearman=("spearman", "mean"), ssim=("ssim", "mean"))
        c = colours.get(method)
        b.plot(means.index, means["spearman"], marker="o", color=c, label=f"{names.get(method, method)}: Spearman")
        b.plot(means.index, means["ssim"], marker="s", ls="--", color=c, label=f"{names.get(method, method)}: SSIM")
        b.set_xticks(means.index, means["layer"], rotation=45, ha="right", fontsize=7)
    b.set_ylim(-0.5, 1.05)
    b.set_xlabel("layers randomised (cumulative, top first)")
    b.set_ylabel("similarity of |R| to the trained maps")
    b.set_title("cascading parameter randomisation")
    b.legend(fontsize=7)
    fig.tight_layout()
    from ..io import atomic_path

    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
