"""The relevance audit's file-level entry (datxai.explain.audit): inputs, outputs and the paired rows."""

import numpy as np
import pandas as pd
import pytest

from datxai.explain.audit import run_faithfulness
from datxai.io import InputError, read_tsv, save_npy, write_tsv
from datxai.model import build_model, save_model

SHAPE = (8, 10, 8)
CHECKS = {"patch_voxels": 2, "steps": 5, "fraction_per_step": 0.05, "random_seeds": 2, "randomisation_cases": 3,
          "max_cases": 0, "n_boot": 200}


def _files(tmp_path, n=6):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (n, *SHAPE)).astype(np.float32)
    save_npy(x, tmp_path / "test.npy")
    save_npy(rng.uniform(0.5, 1.5, (10, *SHAPE)).astype(np.float32), tmp_path / "train.npy")
    labels = np.array(["normal", "reduced"] * (n // 2))
    write_tsv(pd.DataFrame({"subject": [f"sub-{i:04d}" for i in range(1, n + 1)], "label": labels,
                            "y": (labels == "reduced").astype(int)}), tmp_path / "test.tsv")
    save_model(build_model(SHAPE, conv_filters=2, fc_widths=(8, 4), seed=1), tmp_path / "model.pt", setting="full")


def _run(tmp_path, **over):
    out = tmp_path / "out"
    return run_faithfulness(tmp_path / "model.pt", tmp_path / "test.npy", tmp_path / "test.tsv",
                            over.get("train", tmp_path / "train.npy"), out / "curves.tsv", out / "aopc.tsv",
                            out / "randomisation.tsv", out / "fig.png", "full", {}, {**CHECKS, **over.get("checks", {})},
                            seed=3, device="cpu"), out


def test_outputs_and_paired_rows(tmp_path):
    _files(tmp_path)
    (aopc, rnd), out = _run(tmp_path)
    curves = read_tsv(out / "curves.tsv")
    assert set(curves["ranking"]) == {"lrp", "gradient_x_input", "random"}
    assert len(curves) == 6 * 6 * 4  # cases x (steps + 1) x (lrp, gxi, 2 random seeds)
    assert set(curves["case"]) == {f"sub-{i:04d}" for i in range(1, 7)}
    assert list(aopc["ranking"]) == ["lrp", "gradient_x_input", "random", "lrp - random", "lrp - gradient_x_input"]
    per = aopc.set_index("ranking")["aopc_mean"]
    assert per["lrp - random"] == pytest.approx(per["lrp"] - per["random"], abs=1e-12)
    assert (aopc["ci_low"] <= aopc["aopc_mean"] + 1e-12).all() and (aopc["aopc_mean"] <= aopc["ci_high"] + 1e-12).all()
    r = read_tsv(out / "randomisation.tsv")
    assert set(r["check"]) == {"cascading", "random_logit"} and set(r["method"]) == {"lrp", "gradient_x_input"}
    first = r[(r["check"] == "cascading") & (r["step"] == 0)]
    assert np.allclose(first["spearman"], 1.0) and len(first) == 2 * 3  # both methods x 3 cases
    assert (out / "fig.png").stat().st_size > 10_000
    # same seed, same tables
    (aopc2, _), _ = _run(tmp_path)
    pd.testing.assert_frame_equal(aopc, aopc2)


def test_bad_inputs_are_named(tmp_path):
    _files(tmp_path)
    save_npy(np.zeros((3, 4, 4, 4), np.float32), tmp_path / "other.npy")
    with pytest.raises(InputError, match="other.npy"):
        _run(tmp_path, train=tmp_path / "other.npy")
    with pytest.raises(InputError, match="missing.npy"):
        _run(tmp_path, train=tmp_path / "missing.npy")
