"""``datxai train`` and ``datxai evaluate``: the train/evaluate stages outside the workflow."""

from __future__ import annotations

import argparse
from pathlib import Path


def _train(args) -> int:
    from ..config import load_config
    from ..numerics import pin_cpu_numerics
    from .train import run_training

    cfg = load_config(args.config)
    if args.device:
        cfg["train"]["device"] = args.device
    pin_cpu_numerics(cfg["numerics"]["cpu_isa"], args.threads or cfg["numerics"]["cpu_threads"])
    d, out = Path(args.dataset), Path(args.out)
    outputs = {"model": out / "model.pt", "history": out / "history.tsv",
               "hyperparameters": out / "hyperparameters.json", "checkpoint": out / "checkpoint.pt"}
    run_training(d / "train.npy", d / "train.tsv", d / "val.npy", d / "val.tsv", outputs, cfg["model"], cfg["train"],
                 setting=args.setting, master_seed=cfg["seed"], epochs=args.epochs)
    return 0


def _evaluate(args) -> int:
    from ..numerics import pin_cpu_numerics
    from .evaluate import run_evaluation

    pin_cpu_numerics(args.cpu_isa, args.threads)
    d = Path(args.dataset)
    run_evaluation(args.model, d / f"{args.subset}.npy", d / f"{args.subset}.tsv", args.out, device=args.device,
                   amp=not args.no_amp, batch_size=args.batch_size)
    return 0


def add_cli(subparsers) -> None:
    """Add ``train`` and ``evaluate`` to the ``datxai`` command line."""
    p = subparsers.add_parser("train", help="train the CNN of one setting",
                              description="Train the CNN on DATASET/{train,val}.{npy,tsv}; resumes a killed run.",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default="config/config.yaml", help="config YAML (sections model, train, seed)")
    p.add_argument("--dataset", required=True, help="folder with train.npy/.tsv and val.npy/.tsv")
    p.add_argument("--setting", required=True, help="setting name (selects fc_widths, epochs and the seed)")
    p.add_argument("--out", required=True, help="output folder (model.pt, history.tsv, hyperparameters.json, checkpoint.pt)")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs[setting]")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="override train.device")
    p.add_argument("--threads", type=int, default=None, help="override numerics.cpu_threads (CPU threads)")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("evaluate", help="predict a dataset subset with a trained CNN",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="model.pt written by 'datxai train'")
    p.add_argument("--dataset", required=True, help="folder with {subset}.npy/.tsv")
    p.add_argument("--subset", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, help="predictions TSV to write")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on the GPU")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (as numerics.cpu_threads)")
    p.add_argument("--cpu-isa", choices=["avx2", "native"], default="avx2", help="as numerics.cpu_isa")
    p.set_defaults(func=_evaluate)
