"""The digital FP-CIT phantom: anatomy in MNI space and the activity model.

Anatomy
-------
Built once per run on the *phantom grid* (``simulate.phantom_voxel_mm``, the
analysis grid's centre, covering the whole head) from the packaged atlases
(:mod:`datxai.atlas`): the intracranial volume (MNI152 brain, holes filled),
a soft extracerebral shell (skull + scalp) around it, the MNI152 grey-matter
map and the Harvard-Oxford probability map of every region the model needs,
per side.

Activity
--------
Concentrations are relative to the non-displaceable background, which is 1
in brain tissue: ``activity = intracranial * (1 + B) + shell_uptake * shell``
with ``B`` the specific binding (= the binding ratio of a region, SBR)::

    B = sum_r p_r b_r + b_cortex * gm * (1 - sum_r p_r)

``p_r`` are the (sided) atlas probabilities, renormalised where they sum above
1, ``b_r`` the subject's regional binding (see :mod:`datxai.simulate.cohort`).
The putamen loss of a reduced subject grows from anterior to posterior:
``loss(y) = L * (1 + g * a(y))`` with ``a`` the anterior-posterior position
scaled to zero mean and unit range over the putamen, so that the mean loss
over the putamen is ``L`` (before clipping to [0, 1]).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checks import check_range
from ..grid import Grid, average_to_grid

log = logging.getLogger(__name__)

SIDES = ("L", "R")
STRIATAL = ("Putamen", "Caudate", "Accumbens")
# half extents (mm) of the phantom grid about the analysis grid's centre: the
# MNI152 brain (x +-72, y -108..75, z -73..83) plus the shell and a margin
HEAD_HALF_EXTENT_MM = (90.0, 111.0, 102.0)
SHELL_MM = 10.0  # skull + scalp thickness


def phantom_grid(grid_cfg: dict, voxel_mm: float) -> Grid:
    """The phantom grid: ``voxel_mm`` voxels centred like the analysis grid, covering the whole head."""
    check_range("simulate.phantom_voxel_mm", voxel_mm, 0, low_inclusive=False)
    center = tuple(float(c) for c in grid_cfg.get("center_mm", (0.0, -18.0, 11.0)))
    shape = tuple(2 * int(np.ceil(h / voxel_mm)) + 1 for h in HEAD_HALF_EXTENT_MM)
    return Grid(shape, float(voxel_mm), center)


def required_regions(sim_cfg: dict) -> list[str]:
    """Atlas base names the activity model needs (striatum, regional binding, planted)."""
    names = list(STRIATAL)
    for name in sim_cfg["normal"]["regional_binding"]:
        if name != "cortex_gm":
            names.append(name)
    for item in sim_cfg["disease"].get("planted", []) or []:
        names.extend(item["regions"])
    return list(dict.fromkeys(names))


@dataclass
class PhantomAnatomy:
    """Anatomical maps on the phantom grid (all float32, fractions 0-1).

    ``prob[(base, side)]`` is the atlas probability of a region on one side
    (``'L'`` x < 0 / ``'R'`` x > 0).
    """

    grid: Grid
    intracranial: np.ndarray
    shell: np.ndarray
    gm: np.ndarray
    prob: dict = field(default_factory=dict)

    @property
    def head(self) -> np.ndarray:
        """Fraction of each voxel inside the head outline (the attenuating water-like body)."""
        return np.clip(self.intracranial + self.shell, 0.0, 1.0)

    def save(self, path) -> Path:
        """Write all maps to one ``.npz`` (atomically)."""
        from ..io import atomic_path

        arrays = {"intracranial": self.intracranial, "shell": self.shell, "gm": self.gm,
                  "grid_shape": np.array(self.grid.shape), "grid_voxel_mm": np.array(self.grid.voxel_mm),
                  "grid_center_mm": np.array(self.grid.center_mm)}
        arrays.update({f"prob/{b}/{s}": p for (b, s), p in self.prob.items()})
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path) -> "PhantomAnatomy":
        """Read an anatomy written by :meth:`save`; errors name the file."""
        from ..io import InputError

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: phantom anatomy not found")
        try:
            with np.load(path) as z:
                grid = Grid(tuple(int(v) for v in z["grid_shape"]), float(z["grid_voxel_mm"]),
                            tuple(float(v) for v in z["grid_center_mm"]))
                prob = {tuple(k.split("/")[1:]): z[k] for k in z.files if k.startswith("prob/")}
                return cls(grid, z["intracranial"], z["shell"], z["gm"], prob)
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"{path}: not a phantom anatomy bundle ({exc})") from exc

    def check_regions(self, names) -> None:
        missing = sorted({n for n in names for s in SIDES if (n, s) not in self.prob})
        if missing:
            raise KeyError(f"phantom anatomy lacks region(s) {missing}; rebuild it with the current config")


def build_anatomy(grid: Grid, regions) -> PhantomAnatomy:
    """Bring the packaged atlases onto the phantom grid (a few seconds; no downloads).

    Parameters
    ----------
    grid : the phantom grid (see :func:`phantom_grid`).
    regions : Harvard-Oxford base names to store per side.
    """
    from scipy.ndimage import binary_closing, binary_fill_holes, distance_transform_edt, gaussian_filter

    from ..atlas import AtlasOnGrid

    atlas = AtlasOnGrid(grid)
    v = grid.voxel_mm
    gm, wm, t1 = _tissue("mni152_gm", grid), _tissue("mni152_wm", grid), _tissue("mni152_t1", grid)
    brain = ((gm + wm) >= 0.5) | (t1 >= 0.5)
    # close sulci and fill the ventricles: the intracranial volume holds CSF too
    r = max(1, int(round(4.0 / v)))
    brain = binary_fill_holes(binary_closing(brain, structure=np.ones((3, 3, 3)), iterations=r))
    soft = lambda m: np.clip(gaussian_filter(m.astype(np.float32), sigma=1.5 / v), 0, 1)  # noqa: E731
    intracranial = soft(brain)
    dist = distance_transform_edt(~brain, sampling=v)
    shell = soft((dist > 0) & (dist <= SHELL_MM))
    shell = np.clip(shell, 0, 1 - intracranial)
    prob = {}
    for base in regions:
        for side in SIDES:
            prob[(base, side)] = atlas.prob(base, side).astype(np.float32)
    log.info("phantom anatomy on %s: intracranial %.0f ml, %d regions", grid, intracranial.sum() * grid.voxel_ml, len(regions))
    return PhantomAnatomy(grid, intracranial.astype(np.float32), shell.astype(np.float32), gm.astype(np.float32), prob)


def _tissue(key: str, grid: Grid) -> np.ndarray:
    """A packaged MNI152 map as a fraction (0-1) on ``grid``, area-weighted.

    GM/WM probabilities ship as uint8 0-255 and the T1 brain in arbitrary
    units: each is divided by its maximum (a binary brain for the T1, > 0)
    before averaging, so partial volumes stay fractions.
    """
    import nibabel as nib

    from ..atlas import atlas_files

    img = nib.load(atlas_files()[key])
    data = np.asarray(img.dataobj, dtype=np.float32)
    data = (data > 0).astype(np.float32) if key == "mni152_t1" else data / max(float(data.max()), 1e-9)
    return np.clip(average_to_grid(data, img.affine, grid), 0.0, 1.0)


def _ap_position(anat: PhantomAnatomy, side: str) -> np.ndarray:
    """Anterior-posterior position over one putamen: 0 at its (probability-weighted) centre, +1 per putamen length posteriorly.

    The length is ``sqrt(12)`` standard deviations of y (the length of a
    uniform bar), so ``a`` spans about [-0.5, 0.5] over the putamen.
    """
    p = anat.prob[("Putamen", side)]
    y = anat.grid.axis_mm(1)[None, :, None]
    w = p.sum()
    ybar = float((p * y).sum() / w)
    sd = float(np.sqrt((p * (y - ybar) ** 2).sum() / w))
    return np.broadcast_to(-(y - ybar) / (np.sqrt(12.0) * sd), p.shape)


def binding_map(anat: PhantomAnatomy, binding: dict, putamen_loss: dict | None = None,
                posterior_gradient: float = 0.0, cortex_gm: float = 0.0) -> np.ndarray:
    """Specific binding ``B`` on the phantom grid.

    Parameters
    ----------
    binding : ``{(base, side): b}`` regional specific binding (putamen: before loss).
    putamen_loss : ``{side: L}`` mean fractional putamen loss (reduced subjects) or None.
    posterior_gradient : ``g`` of the loss gradient (extra loss posteriorly).
    cortex_gm : binding of grey matter outside the listed regions.
    """
    anat.check_regions({b for b, _ in binding})
    total = np.zeros(anat.grid.shape, np.float32)
    for key in binding:
        total += anat.prob[key]
    norm = np.where(total > 1, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32)
    out = cortex_gm * anat.gm * np.clip(1 - total, 0, 1)
    for (base, side), b in binding.items():
        p = anat.prob[(base, side)] * norm
        if base == "Putamen" and putamen_loss:
            loss = np.clip(putamen_loss[side] * (1 + posterior_gradient * _ap_position(anat, side)), 0, 1)
            out = out + p * (b * (1 - loss))
        else:
            out = out + p * b
    return out.astype(np.float32)


def activity_map(anat: PhantomAnatomy, binding: np.ndarray, shell_uptake: float) -> np.ndarray:
    """Noise-free concentration (background = 1 in brain tissue) on the phantom grid."""
    return (anat.intracranial * (1 + binding) + shell_uptake * anat.shell).astype(np.float32)


def to_analysis_grid(volume: np.ndarray, anat_grid: Grid, grid: Grid) -> np.ndarray:
    """Area-weighted average of a phantom-grid volume onto the MNI analysis grid (unposed)."""
    return average_to_grid(volume, anat_grid.affine, grid)
