"""The GPU paths against their CPU references; skipped where no CUDA device is present (CI, laptops).

Run on a GPU machine with ``python -m pytest tests/test_gpu.py`` (``bench/gpu_session.sh``
does). Tolerances: float32 on both sides unless stated; cuDNN may use TF32 for
convolutions (10-bit mantissa), hence the 1e-2-of-the-scale bounds where convolutions
are involved, and bf16 autocast (8-bit mantissa) for the predictions of ``train.amp``.
"""

import os
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

sys.path.insert(0, os.path.dirname(__file__))
from lrp_reference import tiny_model  # noqa: E402

from datxai.explain.lrp import LRPConfig, explain_array  # noqa: E402
from datxai.geometry import mean_displacement_mm  # noqa: E402
from datxai.model import build_model  # noqa: E402
from datxai.model.evaluate import predict  # noqa: E402
from datxai.model.train import Dataset, TrainSettings, train_model  # noqa: E402
from datxai.register.affine import estimate_affine, smooth_mm, spm_matrix  # noqa: E402
from datxai.register.batched import estimate_affine_batch  # noqa: E402
from datxai.register.template import phantom_image  # noqa: E402
from test_register_affine import GRID, NATIVE, SCALE, make_source, random_params  # noqa: E402

SHAPE = (12, 14, 10)


def test_batched_registration_on_the_gpu_matches_numpy():
    template = smooth_mm(phantom_image(GRID.shape, GRID.affine, scale=SCALE, fwhm_mm=8.0), GRID.affine, 6.0)
    points = GRID.coords_mm()[:, template > 0.5 * template.max()].T
    rng = np.random.default_rng(21)
    ms = [spm_matrix(random_params(rng)) for _ in range(3)]
    sources = [smooth_mm(make_source(m, rng), NATIVE, 6.0) for m in ms]
    out = estimate_affine_batch(sources, [NATIVE] * 3, template, GRID.affine, device="cuda")
    for m, src, res in zip(ms, sources, out):
        ref = estimate_affine(src, NATIVE, template, GRID.affine)
        assert res.flags == ref.flags
        assert mean_displacement_mm(res.matrix, ref.matrix, points) < 0.01  # as the workflow test allows
        assert mean_displacement_mm(res.matrix, m, points) < 1.0


def test_predictions_on_the_gpu_match_the_cpu():
    model = build_model(SHAPE, seed=5)
    x = np.random.default_rng(3).normal(size=(64, *SHAPE)).astype(np.float32)
    cpu_pred, cpu_p = predict(model, x, device="cpu")
    for amp, tol in ((False, 1e-3), (True, 2e-2)):
        pred, p = predict(model, x, device="cuda", amp=amp)
        model.to("cpu")
        assert np.abs(p - cpu_p).max() < tol, (amp, np.abs(p - cpu_p).max())
        clear = np.abs(cpu_p - 0.5) > tol  # a class may flip only for a case within the tolerance of 0.5
        np.testing.assert_array_equal(pred[clear], cpu_pred[clear])


def test_relevance_on_the_gpu_matches_the_cpu():
    model = tiny_model(SHAPE, seed=3)
    data = np.random.default_rng(4).uniform(0, 2, size=(5, *SHAPE)).astype(np.float32)
    cpu = list(explain_array(model, data, LRPConfig(), device="cpu", backend="direct"))
    gpu = list(explain_array(model, data, LRPConfig(), device="cuda", backend="direct"))
    for a, b in zip(cpu, gpu):
        assert a.index == b.index and a.target == b.target
        np.testing.assert_allclose(b.relevance, a.relevance, rtol=0, atol=1e-2 * np.abs(a.relevance).max())


def test_training_runs_on_the_gpu_and_says_so():
    rng = np.random.default_rng(6)
    y = np.arange(32) % 2
    x = rng.normal(size=(32, *SHAPE)).astype(np.float32) + y[:, None, None, None].astype(np.float32)
    train = Dataset(x[:24], y[:24], name="gpu-train")
    val = Dataset(x[24:], y[24:], name="gpu-val")
    res = train_model(train, val, TrainSettings(epochs=3, seed=0, device="cuda", deterministic=False, amp=True),
                      conv_filters=4, fc_widths=(8, 4))
    assert len(res.history) == 3 and all(np.isfinite(r["train_loss"]) for r in res.history)
    assert res.device == torch.cuda.get_device_name(0)  # what the model's metadata and the log record
