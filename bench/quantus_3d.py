"""Does Quantus evaluate region perturbation on 3-D volumes? (issue 21, item 5: the reason datxai writes its own.)

A net that reads one voxel of an 8 x 8 x 8 volume and an attribution that ranks that voxel first: the known
answer is that removing the first patch removes the prediction. Quantus 0.6.0 (session 13, 2026-12-05) fails
before perturbing anything: ``RegionPerturbation`` pads and tiles height and width only, so a batch
``(N, 1, X, Y, Z)`` raises "pad_width and padded_axes have different lengths". datxai's own metric
(:mod:`datxai.explain.faithfulness`) passes the same known-answer case (tests/test_explain_faithfulness.py).

Quantus is not a project dependency; install it beside the project's environment:

    python -m pip install --target /tmp/qpkgs --no-deps quantus==0.6.0 opencv-python-headless scikit-learn tqdm cachetools
    PYTHONPATH=/tmp/qpkgs python bench/quantus_3d.py
"""

import traceback

import numpy as np
import torch

from datxai.explain.torchvision_compat import import_zennit

import_zennit()  # quantus imports zennit, whose torchvision import needs the project's stand-in on a CPU torch
import quantus  # noqa: E402


class OneVoxel(torch.nn.Module):
    """logit(reduced) = 5 x[v], logit(normal) = 0."""

    def __init__(self, v):
        super().__init__()
        self.v = v

    def forward(self, x):
        z = 5.0 * x[:, 0, self.v[0], self.v[1], self.v[2]]
        return torch.stack([torch.zeros_like(z), z], 1)


def main():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, (4, 1, 8, 8, 8)).astype(np.float32)
    y = np.ones(4, dtype=int)
    a = rng.uniform(0.0, 0.1, x.shape).astype(np.float32)
    a[:, 0, 3, 4, 5] = 1.0
    metric = quantus.RegionPerturbation(patch_size=2, regions_evaluation=10, order="morf", perturb_baseline="black",
                                        disable_warnings=True, display_progressbar=False)
    print(f"quantus {quantus.__version__}, input {x.shape}")
    try:
        out = metric(model=OneVoxel((3, 4, 5)).eval(), x_batch=x, y_batch=y, a_batch=a, device="cpu",
                     channel_first=True)
        print("RegionPerturbation on 3-D:", np.round(np.asarray(out), 3))
    except Exception:  # report what Quantus does with a volume, whatever it raises
        traceback.print_exc()
        print("RegionPerturbation on 3-D: failed (above)")


if __name__ == "__main__":
    main()
