"""Training that goes NaN or is killed, and a registration that diverges, through the stage functions.

* NaN loss: :func:`datxai.model.train.run_training` (what the train rule calls)
  stops with a message naming the epoch and the checkpoint it keeps, writes
  none of its outputs, and a rerun with the problem gone resumes from that
  checkpoint.
* Killed training: interrupted after a checkpoint or in the middle of an
  epoch, the rerun with the same arguments resumes and ends with the weights
  and history of an uninterrupted run, bit for bit (CPU).
* Diverging registration: flagged per subject (affine JSON, QC table, log),
  resliced with the centre-of-mass start (``fallback``) or refused (``error``)
  without writing anything.
"""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from reliability_helpers import assert_clear_error, assert_nothing_written, assert_untouched, tree_state

from datxai.io import save_npy, write_tsv
from datxai.model import load_model
from datxai.model import train as train_mod
from datxai.model.train import TrainingError, run_training

SHAPE = (8, 9, 7)
MODEL_CFG = {"conv_filters": 4, "n_conv": 4, "fc_widths": {"full": [8, 4]}, "dropout": 0.2}
TRAIN_CFG = {"learning_rate": 3e-3, "batch_size": 4, "epochs": {"full": 4}, "device": "cpu"}
OUT_NAMES = {"model": "model.pt", "history": "history.tsv", "hyperparameters": "hyperparameters.json",
             "checkpoint": "checkpoint.pt"}


class Killed(BaseException):
    """Stands for SIGKILL inside the process: nothing after it runs (not an Exception, so nothing catches it)."""


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    d = tmp_path_factory.mktemp("datasets")
    for subset, (n, seed) in {"train": (16, 0), "val": (8, 1)}.items():
        rng = np.random.default_rng(seed)
        x = rng.normal(1.0, 0.3, size=(n, *SHAPE)).astype(np.float32)
        y = np.arange(n) % 2
        x[y == 1, 1:4, 2:6, 2:5] -= 0.8
        save_npy(x, d / f"{subset}.npy")
        write_tsv(pd.DataFrame({"subject": [f"sub-{i:04d}" for i in range(n)],
                                "label": np.where(y, "reduced", "normal"), "y": y}), d / f"{subset}.tsv")
    return d


def _train(datasets, out, **kw):
    torch.set_num_threads(1)
    outputs = {k: out / v for k, v in OUT_NAMES.items()}
    return run_training(datasets / "train.npy", datasets / "train.tsv", datasets / "val.npy", datasets / "val.tsv",
                        outputs, MODEL_CFG, TRAIN_CFG, setting="full", master_seed=20211, **kw)


@pytest.fixture(scope="module")
def uninterrupted(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    _train(datasets, out)
    return out


def _loss_hook(monkeypatch, when):
    """Wrap the training loss (cross-entropy with reduction 'mean'): ``when(call)`` -> 'nan' | 'kill' | None."""
    real = torch.nn.functional.cross_entropy
    calls = {"n": 0}

    def hooked(logits, target, *a, **kw):
        loss = real(logits, target, *a, **kw)
        if kw.get("reduction", "mean") != "mean":  # validation (reduction='sum') is left alone
            return loss
        calls["n"] += 1
        what = when(calls["n"])
        if what == "kill":
            raise Killed()
        return loss * float("nan") if what == "nan" else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", hooked)
    return calls


def _same_model(a, b):
    sa, sb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _history(path):
    return pd.read_csv(path, sep="\t").drop(columns="seconds")


def test_nan_loss_stops_keeps_the_last_good_checkpoint_and_writes_nothing(datasets, uninterrupted, tmp_path,
                                                                          monkeypatch, capsys):
    out = tmp_path / "out"
    before = tree_state(datasets)
    _loss_hook(monkeypatch, lambda call: "nan" if call == 6 else None)  # 4 batches per epoch: epoch 2, batch 2
    with pytest.raises(TrainingError) as err:
        _train(datasets, out)
    resume = out / "resume" / "checkpoint.pt"
    msg = assert_clear_error(err, resume, r"training loss is nan in epoch 2 .*stopping: the checkpoint of epoch 1 is kept")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["resume/checkpoint.pt"]
    ck = torch.load(resume, weights_only=True)
    assert ck["epoch"] == 1 and len(ck["history"]) == 1 and np.isfinite(ck["history"][0]["train_loss"])
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert_untouched(before, datasets)
    with capsys.disabled():
        print(f"\n[bad input] training NaN loss: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")
    # the cause removed, the same call resumes from the kept checkpoint and ends where an uninterrupted run ends
    monkeypatch.undo()
    result = _train(datasets, out)
    assert result.resumed_from_epoch == 1
    assert _same_model(out / "model.pt", uninterrupted / "model.pt")
    pd.testing.assert_frame_equal(_history(out / "history.tsv"), _history(uninterrupted / "history.tsv"))


def test_a_real_divergence_is_stopped_too(datasets, tmp_path):
    """No hook: a learning rate far too large drives the weights to overflow; training refuses to go on."""
    out = tmp_path / "out"
    outputs = {k: out / v for k, v in OUT_NAMES.items()}
    cfg = {**TRAIN_CFG, "learning_rate": 1e6}
    with pytest.raises(TrainingError, match=r"training loss is (nan|inf) in epoch 1 \(learning rate 1000000.0\); "
                                             r"stopping: no checkpoint was written"):
        run_training(datasets / "train.npy", datasets / "train.tsv", datasets / "val.npy", datasets / "val.tsv",
                     outputs, MODEL_CFG, cfg, setting="full", master_seed=20211)
    assert not any(p.exists() for p in outputs.values())


@pytest.mark.parametrize("kill_at", ["after the checkpoint of epoch 2", "in the middle of epoch 3"])
def test_killed_training_resumes_to_the_uninterrupted_result(datasets, uninterrupted, tmp_path, monkeypatch,
                                                             kill_at):
    out = tmp_path / "out"
    if kill_at.startswith("after"):
        real_save = train_mod._save_checkpoint

        def save_then_die(path, model, optimizer, epoch, *a):
            real_save(path, model, optimizer, epoch, *a)
            if epoch == 2:
                raise Killed()

        monkeypatch.setattr(train_mod, "_save_checkpoint", save_then_die)
    else:
        _loss_hook(monkeypatch, lambda call: "kill" if call == 10 else None)  # epoch 3, batch 2
    with pytest.raises(Killed):
        _train(datasets, out)
    assert not any((out / v).exists() for v in OUT_NAMES.values())  # no output of a killed run
    assert torch.load(out / "resume" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    monkeypatch.undo()
    result = _train(datasets, out)  # the rerun: same arguments
    assert result.resumed_from_epoch == 2
    assert _same_model(out / "model.pt", uninterrupted / "model.pt")
    pd.testing.assert_frame_equal(_history(out / "history.tsv"), _history(uninterrupted / "history.tsv"))
    assert json.loads((out / "hyperparameters.json").read_text())["resumed_from_epoch"] == 2
    assert not (out / "resume").exists()


# ----------------------------------------------------------------------------- registration

@pytest.fixture(scope="module")
def registration_inputs(tmp_path_factory):
    from datxai.grid import Grid
    from datxai.io import save_nifti
    from datxai.register.template import phantom_image

    grid = Grid((18, 22, 18), 8.0)
    native = np.diag([6.0, 6.0, 6.0, 1.0])
    native[:3, 3] = -6.0 * (np.array((24, 24, 20)) - 1) / 2
    d = tmp_path_factory.mktemp("reg")
    save_nifti(phantom_image(grid.shape, grid.affine, scale=0.75, fwhm_mm=8.0), grid.affine, d / "template.nii.gz")
    # a scan with no brain in it (noise only, e.g. the wrong series exported): nothing to register to
    save_nifti(np.random.default_rng(1).normal(0, 1, (24, 24, 20)).astype(np.float32), native,
               d / "sub-0007_spect.nii.gz")
    return grid, d


OPTIONS = dict(fwhm_mm=6.0, sampling_mm=[8.0], regularization=0.01, max_iterations=30, order=1)


def test_diverging_registration_is_flagged_per_subject(registration_inputs, tmp_path, caplog, capsys):
    from datxai.register.qc import registration_table
    from datxai.register.workflow import run_normalize

    grid, d = registration_inputs
    before = tree_state(d)
    out_img, out_json = tmp_path / "sub-0007_space-MNI_spect.nii.gz", tmp_path / "sub-0007_affine.json"
    with caplog.at_level(logging.WARNING):
        info = run_normalize(d / "sub-0007_spect.nii.gz", d / "template.nii.gz", out_img, out_json, grid,
                             work_dir=tmp_path, subject="sub-0007", **OPTIONS)
    assert info["diverged"] and info["fallback"] and info["flags"]
    assert info["matrix"] == info["initial_matrix"]  # resliced with the centre-of-mass start, not the bad estimate
    saved = json.loads(out_json.read_text())
    assert saved["subject"] == "sub-0007" and saved["diverged"] and saved["fallback"]
    warned = [r.getMessage() for r in caplog.records if "sub-0007" in r.getMessage() and "diverged" in r.getMessage()]
    assert warned, "no per-subject warning in the log"
    row = registration_table({"sub-0007": saved}).iloc[0]  # qc/registration.tsv, shown in the report
    assert (row["diverged"], row["fallback"]) == ("yes", "yes") and row["flags"] != "none"
    assert_untouched(before, d)
    with capsys.disabled():
        print(f"\n[bad input] registration diverges (fallback): log: {warned[0]}; "
              f"QC row: diverged={row['diverged']} fallback={row['fallback']} flags={row['flags']}")


def test_diverging_registration_with_policy_error_writes_nothing(registration_inputs, tmp_path, capsys):
    from datxai.register.workflow import run_normalize

    grid, d = registration_inputs
    before = tree_state(d)
    out, work = tmp_path / "out", tmp_path / "work"
    work.mkdir()
    with pytest.raises(Exception) as err:
        run_normalize(d / "sub-0007_spect.nii.gz", d / "template.nii.gz", out / "sub-0007_space-MNI_spect.nii.gz",
                      out / "sub-0007_affine.json", grid, work_dir=work, subject="sub-0007",
                      on_divergence="error", **OPTIONS)
    assert_clear_error(err, "sub-0007", r"affine registration diverged \(")
    assert_nothing_written(out)
    assert_nothing_written(work)
    assert_untouched(before, d)
    line = [x for x in str(err.value).splitlines() if "sub-0007: affine registration diverged" in x][-1].strip()
    with capsys.disabled():
        print(f"\n[bad input] registration diverges (on_divergence: error): {type(err.value).__name__}: {line}")
