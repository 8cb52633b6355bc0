"""Training: it learns, it is deterministic, it resumes exactly, it stops on NaN, it checks its input."""

import numpy as np
import pytest
import torch

from datxai.io import InputError, save_npy, write_tsv
from datxai.model import load_model
from datxai.model.train import Dataset, TrainingError, TrainSettings, load_dataset, train_model, \
    write_training_outputs

torch.set_num_threads(1)

SHAPE = (8, 9, 7)  # non-cubic: an axis mix-up would fail the architecture's shape checks
ARCH = dict(conv_filters=4, fc_widths=(8, 4), dropout=0.2)  # small but the same topology


def _toy(n=16, seed=0, shape=SHAPE):
    """Noise images; 'reduced' cases (y = 1) have a dimmer block on the low-x side (a planted difference)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 0.3, size=(n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 1:4, 2:6, 2:5] -= 0.8
    return Dataset(x=x, y=y, subjects=[f"sub-{i:04d}" for i in range(n)], name="toy")


def _settings(epochs, **kw):
    return TrainSettings(**{"epochs": epochs, "learning_rate": 3e-3, "batch_size": 4, "seed": 11,
                            "device": "cpu", **kw})


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # bit-identical, not merely close


def test_tiny_model_overfits_a_tiny_dataset():
    data = _toy()
    result = train_model(data, _toy(8, seed=1), _settings(25), **ARCH)
    hist = result.history_frame()
    assert list(hist["epoch"]) == list(range(1, 26))
    assert hist["train_loss"].iloc[-1] < 0.5 * hist["train_loss"].iloc[0]
    # final model in eval mode (no dropout) separates the 16 training images
    with torch.no_grad():
        pred = result.model(torch.from_numpy(data.x)).argmax(1).numpy()
    assert (pred == data.y).all()
    assert hist["val_accuracy"].iloc[-1] == 1.0  # the planted block is large: unseen images too


def test_same_seed_same_model_other_seed_other_model():
    a = train_model(_toy(), None, _settings(2), **ARCH)
    b = train_model(_toy(), None, _settings(2), **ARCH)
    c = train_model(_toy(), None, _settings(2, seed=12), **ARCH)
    _assert_same_weights(a.model, b.model)
    assert a.history_frame().drop(columns="seconds").equals(b.history_frame().drop(columns="seconds"))
    assert not torch.equal(a.model.classifier.out.weight, c.model.classifier.out.weight)
    assert a.history_frame()["val_loss"].isna().all()  # no validation set: NaN columns


class _Killed(Exception):
    pass


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    data, val = _toy(), _toy(8, seed=1)
    full = train_model(data, val, _settings(3), checkpoint=tmp_path / "a.pt", **ARCH)

    def kill_in_epoch_3(epoch, row):
        if epoch == 2:
            raise _Killed  # as if the job died right after epoch 2's checkpoint
    ck = tmp_path / "b.pt"
    with pytest.raises(_Killed):
        train_model(data, val, _settings(3), checkpoint=ck, on_epoch_end=kill_in_epoch_3, **ARCH)
    assert torch.load(ck, weights_only=True)["epoch"] == 2
    resumed = train_model(data, val, _settings(3), checkpoint=ck, **ARCH)
    assert resumed.resumed_from_epoch == 2
    _assert_same_weights(full.model, resumed.model)
    cols = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    assert full.history_frame()[cols].equals(resumed.history_frame()[cols])
    # a checkpoint of another run (different learning rate) is not resumed
    other = train_model(data, val, _settings(3, learning_rate=1e-3), checkpoint=ck, **ARCH)
    assert other.resumed_from_epoch == 0


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    ck = tmp_path / "ck.pt"
    data = _toy()
    train_model(data, None, _settings(1), checkpoint=ck, **ARCH)
    good = torch.load(ck, weights_only=True)
    bad = Dataset(x=data.x.copy(), y=data.y, subjects=data.subjects, name="toy")
    bad.x[3, 0, 0, 0] = np.nan  # the same run otherwise; NaN reaches the loss in epoch 2
    with pytest.raises(TrainingError, match=r"training loss is nan in epoch 2.*checkpoint of epoch 1 is kept"):
        train_model(bad, None, _settings(2), checkpoint=ck, **ARCH)
    kept = torch.load(ck, weights_only=True)
    assert kept["epoch"] == 1
    for k, v in good["model"].items():
        assert torch.equal(kept["model"][k], v)


def test_outputs_are_written_and_reload(tmp_path):
    result = train_model(_toy(), _toy(8, seed=1), _settings(1), **ARCH)
    write_training_outputs(result, tmp_path / "model.pt", tmp_path / "history.tsv", tmp_path / "hp.json",
                           setting="striatum")
    model, info = load_model(tmp_path / "model.pt")
    _assert_same_weights(model, result.model)
    assert info["setting"] == "striatum" and info["arch"]["input_shape"] == list(SHAPE)
    import json
    hp = json.loads((tmp_path / "hp.json").read_text())
    assert hp["n_parameters"] == sum(p.numel() for p in model.parameters())
    assert hp["training"]["learning_rate"] == 3e-3 and hp["training"]["seed"] == 11
    assert {"python", "torch", "numpy"} <= set(hp["versions"]) and hp["device_used"].startswith("cpu")
    header = (tmp_path / "history.tsv").read_text().splitlines()[0].split("\t")
    assert header == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]


def test_load_dataset_checks_the_files(tmp_path):
    import pandas as pd

    data = _toy(4)
    save_npy(data.x, tmp_path / "train.npy")
    table = pd.DataFrame({"subject": data.subjects, "label": np.where(data.y, "reduced", "normal"), "y": data.y})
    write_tsv(table, tmp_path / "train.tsv")
    loaded = load_dataset(tmp_path / "train.npy", tmp_path / "train.tsv")
    assert isinstance(loaded.x, np.memmap) and loaded.shape == SHAPE
    assert np.array_equal(loaded.y, data.y) and loaded.subjects == data.subjects
    write_tsv(table.iloc[:3], tmp_path / "short.tsv")
    with pytest.raises(InputError, match="short.tsv: 3 rows but train.npy holds 4"):
        load_dataset(tmp_path / "train.npy", tmp_path / "short.tsv")
    write_tsv(table.assign(y=1 - table["y"]), tmp_path / "flip.tsv")
    with pytest.raises(InputError, match="flip.tsv: columns label and y disagree"):
        load_dataset(tmp_path / "train.npy", tmp_path / "flip.tsv")
    x = data.x.copy()
    x[2, 1, 1, 1] = np.inf
    save_npy(x, tmp_path / "inf.npy")
    with pytest.raises(InputError, match=r"inf.npy: image 2 \(sub-0002\) contains NaN"):
        load_dataset(tmp_path / "inf.npy", tmp_path / "train.tsv")
    save_npy(data.x.astype(np.float64), tmp_path / "f64.npy")
    with pytest.raises(InputError, match="expected float32"):
        load_dataset(tmp_path / "f64.npy", tmp_path / "train.tsv")


def test_run_training_and_evaluation_from_files(tmp_path):
    """The adapters' path: dataset files in, model/history/hyperparameters/checkpoint and predictions out."""
    import pandas as pd

    from datxai.model.evaluate import run_evaluation

    for subset, (n, seed) in {"train": (16, 0), "val": (8, 1), "test": (6, 2)}.items():
        data = _toy(n, seed=seed)
        save_npy(data.x, tmp_path / f"{subset}.npy")
        write_tsv(pd.DataFrame({"subject": data.subjects, "label": np.where(data.y, "reduced", "normal"),
                                "y": data.y}), tmp_path / f"{subset}.tsv")
    out = {k: tmp_path / "out" / f for k, f in [("model", "model.pt"), ("history", "history.tsv"),
                                               ("hyperparameters", "hp.json"), ("checkpoint", "checkpoint.pt")]}
    model_cfg = {"conv_filters": 4, "n_conv": 4, "fc_widths": {"full": [8, 4]}, "dropout": 0.2}
    train_cfg = {"learning_rate": 3e-3, "batch_size": 4, "epochs": {"full": 2}, "device": "cpu"}
    from datxai.model.train import run_training
    run_training(tmp_path / "train.npy", tmp_path / "train.tsv", tmp_path / "val.npy", tmp_path / "val.tsv", out,
                 model_cfg, train_cfg, setting="full", master_seed=20211)
    assert all(p.is_file() for p in out.values())
    assert not (tmp_path / "out" / "resume").exists()  # the running checkpoint became checkpoint.pt
    assert torch.load(out["checkpoint"], weights_only=True)["epoch"] == 2
    pred = run_evaluation(out["model"], tmp_path / "test.npy", tmp_path / "test.tsv", tmp_path / "pred.tsv",
                          device="cpu")
    assert list(pred["subject"]) == [f"sub-{i:04d}" for i in range(6)]
    assert set(pred["outcome"]) <= {"TP", "TN", "FP", "FN"}
    save_npy(np.zeros((6, 9, 8, 7), np.float32), tmp_path / "wrong.npy")
    with pytest.raises(InputError, match=r"wrong.npy: images of shape \(9, 8, 7\) but .*model.pt was trained on"):
        run_evaluation(out["model"], tmp_path / "wrong.npy", tmp_path / "test.tsv", tmp_path / "p2.tsv", device="cpu")
    assert not (tmp_path / "p2.tsv").exists()


def test_centred_training_keeps_the_training_mean_and_resumes(tmp_path):
    """center_input: the model carries the voxel-wise training mean (float64-averaged), saved and reloaded with
    the weights; a killed centred run resumes to the same weights."""
    data, val = _toy(), _toy(8, seed=1)
    full = train_model(data, val, _settings(2), checkpoint=tmp_path / "a.pt", center_input=True, **ARCH)
    mean = full.model.center.mean.numpy()[0, 0]
    np.testing.assert_allclose(mean, data.x.astype(np.float64).mean(axis=0), rtol=0, atol=1e-6)
    ck = tmp_path / "b.pt"

    def kill(epoch, row):
        if epoch == 1:
            raise _Killed
    with pytest.raises(_Killed):
        train_model(data, val, _settings(2), checkpoint=ck, on_epoch_end=kill, center_input=True, **ARCH)
    resumed = train_model(data, val, _settings(2), checkpoint=ck, center_input=True, **ARCH)
    assert resumed.resumed_from_epoch == 1
    _assert_same_weights(full.model, resumed.model)
    # an uncentred checkpoint is a different run
    assert train_model(data, val, _settings(2), checkpoint=ck, **ARCH).resumed_from_epoch == 0
    write_training_outputs(full, tmp_path / "m.pt", tmp_path / "h.tsv", tmp_path / "hp.json", setting="full")
    model, info = load_model(tmp_path / "m.pt")
    assert info["arch"]["center_input"] is True
    x = torch.from_numpy(val.x[:3]).unsqueeze(1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), full.model(x), rtol=0, atol=0)


def test_fused_adam_matches_the_per_tensor_loop():
    """train_model's optimizer (fused kernel where torch has one) makes PyTorch's Adam update within float32 rounding."""
    from datxai.model.train import adam

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 2))
    b = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 2))
    b.load_state_dict(a.state_dict())
    start = [p.detach().clone() for p in a.parameters()]
    opt_a, opt_b = adam(a.parameters(), 1e-3), torch.optim.Adam(b.parameters(), lr=1e-3, foreach=False)
    assert opt_a.defaults.get("fused") is True  # torch 2.13 has the CPU kernel
    x, y = torch.randn(64, 40), torch.randint(0, 2, (64,))
    for _ in range(20):
        for model, opt in ((a, opt_a), (b, opt_b)):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=0, atol=1e-5)
    moved = max(float((pa.detach() - p0).abs().max()) for pa, p0 in zip(a.parameters(), start))
    assert moved > 1e-2  # 20 steps of lr 1e-3 moved the weights: the comparison is not between two idle nets
