"""Are the relevance maps faithful and reproducible? Region perturbation and parameter-randomisation checks.

Two families of checks of an attribution map ``R`` (one value per voxel) of the
DAT-SPECT CNN (:mod:`datxai.model`), for LRP (:mod:`datxai.explain.lrp`) and a
gradient x input baseline:

1. **Region perturbation** ("pixel flipping", MoRF order; Samek et al. 2017,
   *Evaluating the visualization of what a deep neural network has learned*,
   IEEE TNNLS 28(11):2660-2673). The volume is cut into non-overlapping patches,
   the patches are ranked by their summed score (most relevant first) and removed
   cumulatively in ``K`` steps; after each step (and at step 0, nothing removed)
   the softmax probability of the explained class ``f(x^(k)) = P(target | x^(k))``
   is recorded (:func:`perturbation_curve`). A faithful map removes the evidence
   first, so ``f`` drops fast; the area over the perturbation curve

   ``AOPC = 1/(K+1) * sum_{k=0}^{K} < f(x^(0)) - f(x^(k)) >``

   is large (:func:`aopc`, per case; the mean over cases with a bootstrap
   percentile interval, :func:`bootstrap_ci`). A random order of the same patches
   (several seeds) is the floor a map must beat; gradient x input is the simple
   baseline (:func:`ranking_scores`, :func:`perturbation_experiment`).

2. **Sanity checks** (Adebayo et al. 2018, *Sanity checks for saliency maps*,
   NeurIPS 31). A map that explains the model must change when the model does:
   cascading randomisation (:func:`cascading_randomisation`) re-initialises the
   weights from the output layer down, cumulatively, and compares each map with
   the trained model's map (Spearman rank correlation and SSIM of ``|R|``); the
   random-logit check (:func:`random_logit_similarity`) compares the map of the
   explained class with that of the other class.

Choice of the reference image. "Removing" a patch means replacing its voxels by
those of a reference image. Zeros are the usual choice for natural images, but
a DaT-SPECT volume with a zeroed cube inside the brain is far from any training
scan: the drop of ``f`` then measures the network's reaction to an
out-of-distribution artefact (which a random patch order triggers as well) more
than the loss of the evidence. Replacing by the **mean training image** moves
the removed voxels towards the average scan (for this cohort: an intermediate
striatal uptake), so ``f`` drops because evidence was taken away, not because
the image became unlike any scan. Report which reference was used; AOPC values
with different references are not comparable.

Why not Quantus. Quantus 0.6.0 (the XAI metrics toolkit) was tried on this
case (session 13): its ``RegionPerturbation`` pads and tiles height and width
only, so a batch of volumes ``(N, 1, X, Y, Z)`` fails before any perturbation
("pad_width and padded_axes have different lengths"); 3-D inputs are not
supported. The metrics are therefore written here, each tested on cases with a
known answer (tests/test_explain_faithfulness.py: a net that reads one voxel,
hand-computed AOPC, a class-sensitive net for the random-logit check).

Nothing here reads files or the workflow's config: inputs are arrays and a
model; outputs are NumPy arrays and pandas tables. The model is used in eval
mode on its own device (restored afterwards) and never modified.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .lrp import LRPConfig, _eval_mode, relevance_batch

#: Names of the rankings :func:`ranking_scores` computes.
RANKINGS = ("lrp", "gradient_x_input", "random")
#: Attribution methods the sanity checks compare (:func:`attribution`).
METHODS = ("lrp", "gradient_x_input")
_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


# --------------------------------------------------------------------------------------------
# inputs, model, attributions


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def _as_batch(model: nn.Module, x) -> torch.Tensor:
    """Images ``(N, nx, ny, nz)`` or ``(N, 1, nx, ny, nz)`` (NumPy or torch) -> ``(N, 1, nx, ny, nz)`` on the model."""
    device, dtype = _device_dtype(model)
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() == 5:
        if t.shape[1] != 1:
            raise ValueError(f"expected one channel, got input of shape {tuple(t.shape)}")
    elif t.dim() == 4:
        t = t.unsqueeze(1)
    else:
        raise ValueError(f"expected images (N, nx, ny, nz), got shape {tuple(t.shape)}")
    if t.shape[0] < 1:
        raise ValueError("no cases given")
    return t.detach().to(device=device, dtype=dtype)


def _as_target(target, n: int, device) -> torch.Tensor | None:
    if target is None:
        return None
    t = (target if isinstance(target, torch.Tensor) else torch.as_tensor(np.array(target))).long().reshape(-1)
    if t.numel() == 1 and n > 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{t.numel()} targets for {n} cases")
    return t.to(device)


def predicted_target(model: nn.Module, x) -> np.ndarray:
    """The most activated output per case (the class the model predicts), ``(N,)`` int."""
    xb = _as_batch(model, x)
    with _eval_mode(model), torch.no_grad():
        return model(xb).argmax(dim=1).cpu().numpy()


def gradient_x_input(model: nn.Module, x, target=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient x input of the target logit: ``R_i = x_i * d logit_t / d x_i`` (torch autograd, eval mode).

    Parameters
    ----------
    model : the CNN (logits ``(N, C)``).
    x : images ``(N, nx, ny, nz)`` (or with a channel axis), NumPy or torch.
    target : output index per case (``(N,)`` or one int); default the most activated output.

    Returns
    -------
    relevance : ``(N, nx, ny, nz)`` float64.
    logits : ``(N, C)`` float64.
    target : ``(N,)`` int.

    The logit (not the softmax) is differentiated, as LRP starts from the logit.
    Parameter gradients are not accumulated (``.grad`` stays untouched).
    """
    xb = _as_batch(model, x)
    tgt = _as_target(target, xb.shape[0], xb.device)
    with _eval_mode(model), torch.enable_grad():
        inp = xb.clone().requires_grad_(True)
        logits = model(inp)
        if tgt is None:
            tgt = logits.argmax(dim=1)
        sel = logits.gather(1, tgt[:, None]).sum()
        (grad,) = torch.autograd.grad(sel, inp)
    rel = (grad * inp).detach().sum(dim=1)
    return (rel.cpu().double().numpy(), logits.detach().cpu().double().numpy(), tgt.cpu().numpy())


def attribution(model: nn.Module, x, target=None, method: str = "lrp", lrp_config: LRPConfig | None = None,
                lrp_backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Attribution maps of a batch: ``(maps (N, nx, ny, nz) float64, target (N,) int)``.

    ``method``: ``lrp`` (:func:`datxai.explain.lrp.relevance_batch` with ``lrp_config``,
    default the papers' composite) or ``gradient_x_input`` (:func:`gradient_x_input`).
    """
    if method == "lrp":
        xb = _as_batch(model, x)
        tgt = _as_target(target, xb.shape[0], xb.device)
        rel, _, tgt = relevance_batch(model, xb, lrp_config or LRPConfig(), target=tgt, backend=lrp_backend)
        return rel.detach().cpu().double().numpy(), tgt.cpu().numpy()
    if method == "gradient_x_input":
        rel, _, tgt = gradient_x_input(model, x, target)
        return rel, tgt
    raise ValueError(f"attribution method must be one of {METHODS}, got {method!r}")


# --------------------------------------------------------------------------------------------
# patches and the removal schedule


def _patch_size(patch, ndim: int = 3) -> tuple[int, ...]:
    p = (int(patch),) * ndim if np.isscalar(patch) else tuple(int(v) for v in patch)
    if len(p) != ndim or min(p) < 1:
        raise ValueError(f"patch must be {ndim} positive ints (voxels per axis), got {patch!r}")
    return p


def patch_index(shape: Sequence[int], patch=(2, 2, 2)) -> tuple[np.ndarray, int]:
    """Patch label of every voxel: ``(labels (nx, ny, nz) int64, n_patches)``.

    Patches tile the volume from voxel (0, 0, 0) in steps of ``patch``; where a
    dimension is not a multiple of the patch size, the last patch along that axis
    is partial (as if the volume were zero-padded at its high end to a multiple
    of the patch: padded voxels belong to no image, carry no score and are never
    fed to the model). The same tiling is used for every case and ranking.
    """
    shape = tuple(int(s) for s in shape)
    p = _patch_size(patch, len(shape))
    counts = [math.ceil(s / q) for s, q in zip(shape, p)]
    grids = np.meshgrid(*[np.arange(s) // q for s, q in zip(shape, p)], indexing="ij")
    labels = np.ravel_multi_index(tuple(grids), counts).astype(np.int64)
    return labels, int(np.prod(counts))


def removal_schedule(n_patches: int, steps: int = 20, fraction_per_step: float | None = 0.01) -> np.ndarray:
    """Cumulative number of patches removed after step ``k = 0..K``: ``(K+1,)`` int, starting at 0.

    ``n_k = min(P, floor(k * fraction_per_step * P + 1/2))`` for ``P`` patches;
    ``fraction_per_step=None`` removes the whole volume in ``K`` equal steps
    (``1/K``). Every step must remove at least one patch
    (``fraction_per_step * P >= 1``); once all patches are gone the count stays at ``P``.
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    f = 1.0 / steps if fraction_per_step is None else float(fraction_per_step)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"fraction_per_step must be in (0, 1], got {fraction_per_step!r}")
    if f * n_patches < 1.0 - 1e-9:
        raise ValueError(f"fraction_per_step {f:g} of {n_patches} patches removes less than one patch per step; "
                         f"use fraction_per_step >= {1.0 / n_patches:.3g}, or a smaller patch")
    k = np.arange(steps + 1)
    return np.minimum(n_patches, np.floor(k * f * n_patches + 0.5).astype(np.int64))


def patch_scores(score_maps, labels: np.ndarray, n_patches: int) -> np.ndarray:
    """Summed score per patch, ``(N, n_patches)`` float64, of maps ``(N, nx, ny, nz)`` (labels: :func:`patch_index`)."""
    maps = np.asarray(score_maps, dtype=np.float64)
    if maps.shape[1:] != labels.shape:
        raise ValueError(f"ranking maps of shape {maps.shape[1:]} for images of shape {labels.shape}")
    flat = labels.ravel()
    return np.stack([np.bincount(flat, weights=m.ravel(), minlength=n_patches) for m in maps])


def random_scores(n: int, shape: Sequence[int], patch=(2, 2, 2), seed: int = 0, first_case: int = 0) -> np.ndarray:
    """A random ranking: ``(n, nx, ny, nz)`` maps whose patch sums are i.i.d. uniform (a uniformly random patch order).

    Each patch gets one value ``u ~ U(0, 1)``, spread evenly over its voxels, so
    that partial patches at the borders are not ranked last by construction (as
    they would be with i.i.d. voxel scores). Case ``i`` draws from
    ``numpy.random.default_rng([seed, first_case + i])``: cases get independent
    orders, and a case's order does not depend on how the cases are batched.
    """
    labels, n_patches = patch_index(shape, patch)
    u = np.stack([np.random.default_rng([int(seed), int(first_case) + i]).random(n_patches) for i in range(int(n))])
    size = np.bincount(labels.ravel(), minlength=n_patches).astype(np.float64)
    return (u / size)[:, labels]


def ranking_scores(model: nn.Module, x, target, ranking: str, *, patch=(2, 2, 2), seed: int = 0,
                   first_case: int = 0, lrp_config: LRPConfig | None = None, lrp_backend: str = "auto") -> np.ndarray:
    """The score map ``(N, nx, ny, nz)`` float64 that orders the patches for :func:`perturbation_curve`.

    ``ranking``: ``lrp`` (relevance of ``target``'s logit, :func:`datxai.explain.lrp.relevance_batch`),
    ``gradient_x_input`` (:func:`gradient_x_input`) or ``random`` (:func:`random_scores` with
    ``seed`` and ``first_case``, the index of ``x[0]`` in the whole case set; ``patch`` must be
    the perturbation's patch). Scores are signed: evidence for
    the target is removed first, evidence against it last.
    """
    if ranking == "random":
        xb = _as_batch(model, x)
        return random_scores(xb.shape[0], tuple(xb.shape[2:]), patch, seed, first_case)
    if ranking in METHODS:
        return attribution(model, x, target, ranking, lrp_config=lrp_config, lrp_backend=lrp_backend)[0]
    raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")


# --------------------------------------------------------------------------------------------
# region perturbation


def perturbation_curve(model: nn.Module, x, target, ranking, reference, patch=(2, 2, 2), steps: int = 20,
                       fraction_per_step: float | None = 0.01, batch_size: int = 16) -> np.ndarray:
    """Region perturbation (MoRF) curves: ``P(target | x^(k))`` for ``k = 0..K``, shape ``(N, K+1)`` float64.

    Samek et al. 2017 (IEEE TNNLS 28:2660): the patches (:func:`patch_index`) of each
    case are ranked by the summed value of ``ranking`` over their voxels, largest
    first (ties keep the patches' raster order), and removed cumulatively: after
    step ``k`` the first ``n_k`` patches (:func:`removal_schedule`) hold the
    reference image's values. Column 0 is the unperturbed image.

    Parameters
    ----------
    model : the CNN (logits ``(N, C)``); run in eval mode on its own device and dtype.
    x : images ``(N, nx, ny, nz)`` (or ``(N, 1, nx, ny, nz)``), NumPy or torch.
    target : class per case ``(N,)`` (or one int) whose softmax probability is tracked;
        ``None``: the predicted class.
    ranking : score maps ``(N, nx, ny, nz)`` (:func:`ranking_scores`: LRP relevance,
        gradient x input or a random map).
    reference : image ``(nx, ny, nz)`` (or a scalar) whose values replace removed voxels,
        e.g. the mean training image (see the module docstring: why not zeros).
    patch : patch size in voxels per axis (or one int).
    steps : number of removal steps ``K``.
    fraction_per_step : fraction of the patches removed per step (``None``: ``1/K``,
        the whole volume by step ``K``).
    batch_size : perturbed volumes per forward pass.

    Returns
    -------
    ``(N, K+1)`` float64: softmax probability of ``target`` after each step.
    """
    xb = _as_batch(model, x)
    n, shape = xb.shape[0], tuple(xb.shape[2:])
    scores = np.asarray(ranking.detach().cpu().numpy() if isinstance(ranking, torch.Tensor) else ranking)
    if scores.shape != (n,) + shape:
        raise ValueError(f"ranking maps of shape {scores.shape}, expected {(n,) + shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("ranking maps contain NaN/Inf")
    ref = torch.as_tensor(np.asarray(reference.detach().cpu() if isinstance(reference, torch.Tensor) else reference,
                                     dtype=np.float64))
    if ref.dim() not in (0, len(shape)) or (ref.dim() and tuple(ref.shape) != shape):
        raise ValueError(f"reference must be a scalar or an image of shape {shape}, got {tuple(ref.shape)}")
    ref = ref.to(device=xb.device, dtype=xb.dtype)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if target is None:
        tgt = torch.as_tensor(predicted_target(model, xb), device=xb.device)
    else:
        tgt = _as_target(target, n, xb.device)

    labels, n_patches = patch_index(shape, patch)
    counts = removal_schedule(n_patches, steps, fraction_per_step)
    sums = patch_scores(scores, labels, n_patches)
    order = np.argsort(-sums, axis=1, kind="stable")  # most relevant first; ties in raster order
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_patches)[None, :].repeat(n, axis=0), axis=1)
    # the step at which each patch goes: the first k with n_k > rank (K+1 = never)
    patch_step = np.searchsorted(counts, rank, side="right")
    voxel_step = torch.as_tensor(patch_step[:, labels], device=xb.device)  # (N, nx, ny, nz)

    n_steps = len(counts)
    case_of = torch.arange(n, device=xb.device).repeat_interleave(n_steps)
    step_of = torch.arange(n_steps, device=xb.device).repeat(n)
    out = torch.empty(n * n_steps, dtype=torch.float64)
    with _eval_mode(model), torch.no_grad():
        for start in range(0, n * n_steps, batch_size):
            c = case_of[start:start + batch_size]
            k = step_of[start:start + batch_size].view(-1, 1, 1, 1)
            vol = torch.where(voxel_step[c] <= k, ref, xb[c, 0])
            prob = torch.softmax(model(vol.unsqueeze(1)).double(), dim=1)
            out[start:start + len(c)] = prob.gather(1, tgt[c][:, None]).squeeze(1).cpu()
    return out.numpy().reshape(n, n_steps)


def aopc(curves) -> np.ndarray | float:
    """Area over the perturbation curve per case: ``1/(K+1) * sum_{k=0}^{K} (f(x^(0)) - f(x^(k)))``.

    Samek et al. 2017, eq. 12, without the average over cases (``< . >``), which
    :func:`bootstrap_ci` / :func:`summarise_aopc` take. ``curves`` ``(N, K+1)``
    (or one curve ``(K+1,)``, then a float is returned). Example: ``[0.9, 0.5, 0.3]``
    gives ``(0 + 0.4 + 0.6) / 3 = 1/3``. The largest value any order can reach
    for a given set of curve values is ``K/(K+1) * (f(x^(0)) - min f)``.
    """
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim == 1:
        return float(aopc(c[None, :])[0])
    if c.ndim != 2 or c.shape[1] < 1:
        raise ValueError(f"expected curves (N, K+1), got shape {c.shape}")
    return (c[:, :1] - c).mean(axis=1)


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over cases: ``(low, high)``.

    ``n_boot`` resamples of the cases with replacement (``numpy.random.default_rng(seed)``);
    the interval is the ``(1-level)/2`` and ``(1+level)/2`` quantiles of the resampled
    means (Efron & Tibshirani 1993, ch. 13). The same ``seed`` gives the same interval.
    One case gives ``(v, v)``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 1:
        raise ValueError("bootstrap_ci: no values")
    if not np.all(np.isfinite(v)):
        raise ValueError("bootstrap_ci: values contain NaN/Inf")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot))
    chunk = max(1, 2_000_000 // v.size)  # bound the index array's memory
    for s in range(0, int(n_boot), chunk):
        m = min(chunk, int(n_boot) - s)
        means[s:s + m] = v[rng.integers(0, v.size, size=(m, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def perturbation_experiment(model: nn.Module, x, target=None, reference=0.0, *,
                            rankings: Sequence[str] = RANKINGS, random_seeds: Sequence[int] = (0, 1, 2),
                            patch=(2, 2, 2), steps: int = 20, fraction_per_step: float | None = 0.01,
                            case_ids: Sequence | None = None, cases_per_batch: int = 8, batch_size: int = 16,
                            lrp_config: LRPConfig | None = None, lrp_backend: str = "auto",
                            n_boot: int = 2000, boot_seed: int = 0, level: float = 0.95
                            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every ranking on a set of cases: ``(curves table, AOPC summary)``.

    ``x`` ``(N, nx, ny, nz)`` (may be a memory map) is processed ``cases_per_batch``
    cases at a time; ``target`` ``(N,)`` defaults to the predicted class (the one
    LRP explains by default). ``random`` is run once per seed in ``random_seeds``.

    Returns
    -------
    table : one row per ranking, seed, case and step (in that order); columns ``ranking``,
        ``seed`` (pandas ``Int64``, ``<NA>`` for the deterministic rankings), ``case``
        (``case_ids``, default ``0..N-1``), ``target``, ``step``, ``fraction_removed``
        (fraction of the patches removed, :func:`removal_schedule`), ``p_target``.
    summary : :func:`summarise_aopc` of the table (one row per ranking).
    """
    rankings = list(rankings)
    bad = [r for r in rankings if r not in RANKINGS]
    if bad or not rankings or len(set(rankings)) != len(rankings):
        raise ValueError(f"rankings must be a non-empty subset of {RANKINGS} without repeats, got {rankings}")
    random_seeds = [int(v) for v in random_seeds]
    if "random" in rankings and (not random_seeds or len(set(random_seeds)) != len(random_seeds)):
        raise ValueError(f"the random ranking needs distinct seeds, got {random_seeds}")
    n = len(x)
    ids = list(range(n)) if case_ids is None else list(case_ids)
    if len(ids) != n or len(set(ids)) != n:
        raise ValueError(f"case_ids must be {n} distinct ids, got {len(ids)} ({len(set(ids))} distinct)")
    targets = None if target is None else np.broadcast_to(np.asarray(target, dtype=np.int64).reshape(-1), (n,))
    frames = []
    for start in range(0, n, int(cases_per_batch)):
        stop = min(n, start + int(cases_per_batch))
        xb = np.asarray(x[start:stop])
        tb = predicted_target(model, xb) if targets is None else targets[start:stop]
        n_patches = patch_index(xb.shape[-3:], patch)[1]
        fraction = removal_schedule(n_patches, steps, fraction_per_step) / n_patches
        runs = [(r, s) for r in rankings for s in (random_seeds if r == "random" else [None])]
        for name, seed in runs:
            scores = ranking_scores(model, xb, tb, name, patch=patch, seed=0 if seed is None else int(seed),
                                    first_case=start, lrp_config=lrp_config, lrp_backend=lrp_backend)
            curves = perturbation_curve(model, xb, tb, scores, reference, patch=patch, steps=steps,
                                        fraction_per_step=fraction_per_step, batch_size=batch_size)
            m, k1 = curves.shape
            frames.append(pd.DataFrame({
                "_order": rankings.index(name) * 1_000_000 + (0 if seed is None else 1 + random_seeds.index(seed)),
                "_pos": np.repeat(np.arange(start, stop), k1),
                "ranking": name,
                "seed": pd.array([seed] * (m * k1), dtype="Int64"),
                "case": np.repeat(np.asarray(ids[start:stop], dtype=object), k1),
                "target": np.repeat(np.asarray(tb), k1),
                "step": np.tile(np.arange(k1), m),
                "fraction_removed": np.tile(fraction, m),
                "p_target": curves.ravel(),
            }))
    # rows in ranking, seed, case, step order, whatever the batching
    table = (pd.concat(frames, ignore_index=True).sort_values(["_order", "_pos", "step"], kind="stable")
             .drop(columns=["_order", "_pos"]).reset_index(drop=True))
    table["case"] = table["case"].infer_objects()
    return table, summarise_aopc(table, n_boot=n_boot, seed=boot_seed, level=level)


def aopc_per_case(table: pd.DataFrame) -> pd.DataFrame:
    """Per-case AOPC from a :func:`perturbation_experiment` table: columns ``ranking``, ``case``, ``aopc``, ``n_seeds``.

    Curves of the random ranking are averaged over seeds per case (AOPC is linear
    in the curve, so this is the mean of the per-seed AOPCs).
    """
    rows = []
    for (name, case), g in table.groupby(["ranking", "case"], sort=False):
        per_seed = [aopc(s.sort_values("step")["p_target"].to_numpy())
                    for _, s in g.groupby(g["seed"].fillna(-1), sort=True)]
        rows.append({"ranking": name, "case": case, "aopc": float(np.mean(per_seed)), "n_seeds": len(per_seed)})
    return pd.DataFrame(rows)


def summarise_aopc(table: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """AOPC per ranking (mean over cases of :func:`aopc_per_case`).

    Columns ``ranking``, ``aopc_mean``, ``ci_low``, ``ci_high`` (:func:`bootstrap_ci` of the
    per-case values), ``n_cases``, ``n_seeds``.
    """
    per_case = aopc_per_case(table)
    rows = []
    for name, g in per_case.groupby("ranking", sort=False):
        lo, hi = bootstrap_ci(g["aopc"].to_numpy(), n_boot=n_boot, seed=seed, level=level)
        rows.append({"ranking": name, "aopc_mean": float(g["aopc"].mean()), "ci_low": lo, "ci_high": hi,
                     "n_cases": int(len(g)), "n_seeds": int(g["n_seeds"].max())})
    return pd.DataFrame(rows)


def paired_aopc_difference(table: pd.DataFrame, a: str = "lrp", b: str = "random", n_boot: int = 2000,
                           seed: int = 0, level: float = 0.95) -> dict:
    """Mean over cases of ``AOPC_a - AOPC_b`` (same cases, paired) with a bootstrap interval.

    Returns ``{"a", "b", "mean_difference", "ci_low", "ci_high", "n_cases", "fraction_a_larger"}``.
    An interval above 0 says ranking ``a`` removes the evidence faster than ``b`` on these cases.
    """
    per_case = aopc_per_case(table).pivot(index="case", columns="ranking", values="aopc")
    for r in (a, b):
        if r not in per_case.columns:
            raise ValueError(f"ranking {r!r} not in the table (have {list(per_case.columns)})")
    d = (per_case[a] - per_case[b]).dropna().to_numpy()
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed, level=level)
    return {"a": a, "b": b, "mean_difference": float(d.mean()), "ci_low": lo, "ci_high": hi,
            "n_cases": int(d.size), "fraction_a_larger": float(np.mean(d > 0))}


# --------------------------------------------------------------------------------------------
# sanity checks


def _ssim_win(shape: Sequence[int]) -> int:
    m = min(int(s) for s in shape)
    w = min(7, m if m % 2 else m - 1)
    if w < 3:
        raise ValueError(f"SSIM needs every image dimension >= 3, got {tuple(shape)}")
    return w


def map_similarity(reference_maps, maps, ssim_normalise: str = "own") -> tuple[np.ndarray, np.ndarray]:
    """Similarity of ``|R|`` per case: ``(spearman (N,), ssim (N,))``.

    * Spearman rank correlation of ``|R_ref|`` and ``|R|`` over all voxels
      (:func:`scipy.stats.spearmanr`; NaN where a map is constant, e.g. all zero).
    * SSIM (:func:`skimage.metrics.structural_similarity`, 3-D, uniform window of
      ``min(7, smallest odd size <= the smallest dimension)`` voxels, ``data_range=1``)
      of the maps scaled to ``[0, 1]``: ``ssim_normalise="own"`` (default) divides each
      map by its own maximum of ``|R|``; ``"trained"`` divides both by the reference
      (trained) map's maximum, so the randomised map may exceed 1 and a change of scale
      alone lowers SSIM. ``own`` is the stricter check: a map that only changed its
      scale (e.g. LRP, which conserves the logit, under a randomised output layer) is
      structurally unchanged and should count as similar. NaN where either map is all zero.
    """
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    a = np.abs(np.asarray(reference_maps, dtype=np.float64))
    b = np.abs(np.asarray(maps, dtype=np.float64))
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two map stacks (N, nx, ny, nz) of one shape, got {a.shape} and {b.shape}")
    if ssim_normalise not in ("own", "trained"):
        raise ValueError(f"ssim_normalise must be 'own' or 'trained', got {ssim_normalise!r}")
    win = _ssim_win(a.shape[1:])
    rho = np.empty(len(a))
    ssim = np.empty(len(a))
    for i, (ra, rb) in enumerate(zip(a, b)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: NaN, reported as such
            rho[i] = float(spearmanr(ra.ravel(), rb.ravel()).statistic)
        if not (ra.max() > 0 and rb.max() > 0):
            ssim[i] = np.nan  # an all-zero map (e.g. every ReLU dead) has no structure to compare
            continue
        sa = ra.max()
        sb = rb.max() if ssim_normalise == "own" else sa
        ssim[i] = float(structural_similarity(ra / sa, rb / sb, win_size=win, data_range=1.0, channel_axis=None))
    return rho, ssim


def layer_names(model: nn.Module, top_first: bool = True) -> list[str]:
    """Names of the model's Linear/Conv layers (the ones with weights), output layer first by default."""
    names = [n for n, m in model.named_modules() if isinstance(m, _LAYER_TYPES)]
    return names[::-1] if top_first else names


def _layer_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def randomised_copy(model: nn.Module, layers: Sequence[str], seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with the weights of ``layers`` re-initialised (``model`` is not modified).

    Like :func:`datxai.model.build_model`: Glorot-uniform weights
    (``U(-b, b)``, ``b = sqrt(6 / (fan_in + fan_out))``) and zero biases. Layer
    ``layers[i]`` draws from its own generator seeded by ``(seed, i)``, so a layer
    gets the same random weights at every step of a cascade.
    """
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    for i, name in enumerate(layers):
        m = modules.get(name)
        if m is None or not isinstance(m, _LAYER_TYPES):
            raise ValueError(f"randomisation: {name!r} is not a Linear/Conv layer of the model; "
                             f"layers are {layer_names(model)}")
        w = m.weight
        receptive = int(np.prod(w.shape[2:])) if w.dim() > 2 else 1
        fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        g = torch.Generator().manual_seed(_layer_seed(seed, i))
        new = (torch.rand(w.shape, generator=g, dtype=torch.float64) * 2.0 - 1.0) * bound
        with torch.no_grad():
            w.copy_(new.to(device=w.device, dtype=w.dtype))
            if m.bias is not None:
                m.bias.zero_()
    return out


@dataclass(frozen=True)
class RandomisationResult:
    """Cascading randomisation: similarity to the trained model's maps after each step.

    ``layers[s]``: the layer randomised at step ``s`` (``"none"`` at step 0; steps are
    cumulative, so step ``s`` has ``layers[1..s]`` randomised). ``spearman`` and
    ``ssim``: ``(S+1, N)`` per step and case (:func:`map_similarity`). ``target``:
    the class explained at every step (fixed to the trained model's).
    """

    method: str
    layers: tuple[str, ...]
    spearman: np.ndarray
    ssim: np.ndarray
    target: np.ndarray

    def mean(self) -> pd.DataFrame:
        """Per step: ``step``, ``layer``, ``spearman_mean``, ``ssim_mean`` (NaN-aware means over cases)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pd.DataFrame({"step": np.arange(len(self.layers)), "layer": list(self.layers),
                                 "spearman_mean": np.nanmean(self.spearman, axis=1),
                                 "ssim_mean": np.nanmean(self.ssim, axis=1)})

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``method``, ``step``, ``layer``, ``case`` (0..N-1), ``spearman``, ``ssim``."""
        s, n = self.spearman.shape
        return pd.DataFrame({"method": self.method, "step": np.repeat(np.arange(s), n),
                             "layer": np.repeat(np.asarray(self.layers, dtype=object), n),
                             "case": np.tile(np.arange(n), s),
                             "spearman": self.spearman.ravel(), "ssim": self.ssim.ravel()})


def cascading_randomisation(model: nn.Module, x, target=None, layers_top_first: Sequence[str] | None = None,
                            seed: int = 0, *, method: str = "lrp", lrp_config: LRPConfig | None = None,
                            lrp_backend: str = "auto", ssim_normalise: str = "own") -> RandomisationResult:
    """Cascading model-parameter randomisation test (Adebayo et al. 2018, NeurIPS 31, sec. 3.1).

    Step 0 is the trained model; step ``s`` re-initialises the first ``s`` layers
    of ``layers_top_first`` (default: every Linear/Conv layer, output layer first,
    :func:`layer_names`) in a copy of the model (:func:`randomised_copy`, seeded by
    ``seed``), recomputes the maps of ``method`` for the same ``target`` (default the
    trained model's prediction) and compares ``|R|`` with the trained model's by
    Spearman rank correlation and SSIM (:func:`map_similarity`). Step 0 gives 1 for
    both; a map that depends on what the model learned loses similarity as the
    randomisation goes down. ``model`` is not modified.

    Caveat for LRP (Binder et al. 2022, *Shortcomings of top-down randomization-based
    sanity checks for evaluations of deep neural network explanations*,
    arXiv:2211.12486, CVPR 2023): with rules that propagate positive relevance
    (alpha-beta, z+, flat, as in the papers' conv layers), the map's shape is
    carried largely by the *un*-randomised lower layers' activations and by the
    input (the flat rule of conv1/conv2 does not even look at the weights), so
    maps after randomising the top layers can stay similar to the trained ones.
    High similarity there is a property of the top-down test (randomising the
    top still leaves the input's structure in the forward pass), not by itself a
    proof that the map ignores the model; read it together with region
    perturbation (:func:`perturbation_curve`), which measures faithfulness
    directly. Similarity of ``|R|`` also ignores sign flips, which the
    randomised output layer produces often.
    """
    names = layer_names(model) if layers_top_first is None else [str(n) for n in layers_top_first]
    if len(set(names)) != len(names):
        raise ValueError(f"layers_top_first has duplicates: {names}")
    randomised_copy(model, names, seed)  # validates the names before any attribution is computed
    xb = _as_batch(model, x)
    ref_maps, tgt = attribution(model, xb, target, method, lrp_config, lrp_backend)
    rhos, ssims = [], []
    for s in range(len(names) + 1):
        if s == 0:
            maps = ref_maps
        else:
            rmodel = randomised_copy(model, names[:s], seed)
            maps, _ = attribution(rmodel, xb, tgt, method, lrp_config, lrp_backend)
            del rmodel
        rho, ss = map_similarity(ref_maps, maps, ssim_normalise)
        rhos.append(rho)
        ssims.append(ss)
    return RandomisationResult(method=method, layers=("none", *names), spearman=np.stack(rhos),
                               ssim=np.stack(ssims), target=np.asarray(tgt))


def random_logit_similarity(model: nn.Module, x, target=None, seed: int = 0, *, method: str = "lrp",
                            lrp_config: LRPConfig | None = None, lrp_backend: str = "auto",
                            ssim_normalise: str = "own") -> pd.DataFrame:
    """Random-logit check (Adebayo et al. 2018, sec. 3.1): the map of another class vs the explained class's map.

    For each case the map of ``target`` (default the predicted class) is compared
    with the map of a class drawn uniformly from the others
    (``numpy.random.default_rng(seed)``; with two classes: the other class) by
    :func:`map_similarity`. A class-sensitive map gives low similarity. Returns a
    table: ``case`` (0..N-1), ``target``, ``other``, ``spearman``, ``ssim``.

    With this CNN's two logits, gradient-based maps of the two logits share the
    whole network below the output layer, and LRP maps of either logit keep the
    input's structure (see :func:`cascading_randomisation`), so moderate
    similarity is expected; compare methods, and explain the log-odds
    (:func:`datxai.explain.lrp.logit_margin_model`) where the class contrast is the question.
    """
    xb = _as_batch(model, x)
    maps, tgt = attribution(model, xb, target, method, lrp_config, lrp_backend)
    with _eval_mode(model), torch.no_grad():
        n_classes = int(model(xb[:1]).shape[1])
    if n_classes < 2:
        raise ValueError("random-logit check: the model has a single output")
    rng = np.random.default_rng(seed)
    other = np.array([rng.choice([c for c in range(n_classes) if c != t]) for t in tgt], dtype=np.int64)
    other_maps, _ = attribution(model, xb, other, method, lrp_config, lrp_backend)
    rho, ss = map_similarity(maps, other_maps, ssim_normalise)
    return pd.DataFrame({"case": np.arange(len(tgt)), "target": tgt, "other": other, "spearman": rho, "ssim": ss})
