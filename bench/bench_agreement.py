"""GPU vs CPU predictions of the trained models on their test sets (issue 9's agreement check).

For every setting of a finished results folder (``train/<setting>/model.pt`` and
``dataset/<setting>/test.npy`` + ``test.tsv``), the reference is the CPU in
float32 (:func:`datxai.model.evaluate.predict`). Compared with it:

* ``cpu bf16``: the CPU with bf16 autocast -- the rounding that the GPU's default
  (``train.amp: true``) adds, measurable without a GPU;
* ``cuda fp32`` and ``cuda bf16`` (the workflow's evaluation on a GPU) when one is present.

Per mode: test cases, cases whose predicted class differs from the reference,
the largest and mean absolute difference of P(reduced), both accuracies, the test case
closest to the decision boundary, and the largest reference margin |P - 0.5| among the
cases whose class differs (a difference is rounding when that margin is below max |dP|).

    python bench/bench_agreement.py --results results [--out agreement.tsv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from datxai.model.evaluate import predict
from datxai.model.net import load_model
from datxai.model.train import load_dataset


class Bf16Autocast(torch.nn.Module):
    """The model under bf16 autocast on the device of its input (also the CPU, which the workflow never uses)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x)


def compare(results: Path) -> list[dict]:
    rows = []
    settings = sorted(p.parent.name for p in (results / "train").glob("*/model.pt"))
    if not settings:
        raise SystemExit(f"{results}: no train/<setting>/model.pt found (run the workflow first)")
    for setting in settings:
        model, _ = load_model(results / "train" / setting / "model.pt")
        data = load_dataset(results / "dataset" / setting / "test.npy", results / "dataset" / setting / "test.tsv")
        ref_pred, ref_p = predict(model, data.x, device="cpu")
        modes = {"cpu bf16": lambda: predict(Bf16Autocast(model), data.x, device="cpu")}
        if torch.cuda.is_available():
            modes["cuda fp32"] = lambda: predict(model, data.x, device="cuda", amp=False)
            modes["cuda bf16"] = lambda: predict(model, data.x, device="cuda", amp=True)
        for mode, run in modes.items():
            pred, p = run()
            model.to("cpu")
            differ = pred != ref_pred
            rows.append({"setting": setting, "mode": mode, "n": len(data), "labels_differ": int((pred != ref_pred).sum()),
                         "max_abs_dp": float(np.abs(p - ref_p).max()), "mean_abs_dp": float(np.abs(p - ref_p).mean()),
                         "accuracy_cpu_fp32": float((ref_pred == data.y).mean()),
                         "accuracy_mode": float((pred == data.y).mean()),
                         "closest_to_boundary": float(np.abs(ref_p - 0.5).min()),
                         "differing_margin": float(np.abs(ref_p[differ] - 0.5).max()) if differ.any() else float("nan")})
    if not torch.cuda.is_available():
        rows.append({"setting": "all", "mode": "cuda", "n": 0, "labels_differ": -1, "max_abs_dp": float("nan"),
                     "mean_abs_dp": float("nan"), "accuracy_cpu_fp32": float("nan"), "accuracy_mode": float("nan"),
                     "closest_to_boundary": float("nan"), "differing_margin": float("nan")})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--out", type=Path, help="also write the table as TSV")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    rows = compare(args.results)
    print(f"# torch {torch.__version__}; GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(f"{'setting':11s} {'mode':10s} {'n':>4s} {'labels differ':>13s} {'max |dP|':>9s} {'mean |dP|':>9s} "
          f"{'acc cpu':>7s} {'acc mode':>8s} {'min |P-0.5|':>11s} {'differing |P-0.5|':>17s}")
    for r in rows:
        if r["mode"] == "cuda" and r["n"] == 0:
            print(f"{'all':11s} {'cuda':10s}  not measured: no GPU")
            continue
        print(f"{r['setting']:11s} {r['mode']:10s} {r['n']:4d} {r['labels_differ']:13d} {r['max_abs_dp']:9.2e} "
              f"{r['mean_abs_dp']:9.2e} {r['accuracy_cpu_fp32']:7.3f} {r['accuracy_mode']:8.3f} "
              f"{r['closest_to_boundary']:11.2e} {r['differing_margin']:17.2e}")
    if args.out:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
