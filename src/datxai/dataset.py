"""The three input settings (S1) and the stacked datasets the CNN reads.

One definition, used by every stage (datasets, relevance maps, clusters):

``full``        the whole analysis grid, ``(nx, ny, nz)``;
``striatum``    the box ``settings.striatum_box_mm`` (MNI mm, covering both
                striata) cropped with :meth:`datxai.grid.Grid.box_slices`;
``nostriatum``  the whole grid with that box set to zero.

A striatum-setting array (a crop) is put back into the full grid with
:func:`place_in_full` (zero outside the box), e.g. for relevance maps.
All functions act on the last three axes, so batches ``(N, nx, ny, nz)``
and ``(N, C, nx, ny, nz)`` work as well as single volumes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .checks import check_choice
from .grid import Grid
from .io import atomic_path

log = logging.getLogger(__name__)

SETTINGS = ("full", "striatum", "nostriatum")
SUBSETS = ("train", "val", "test")


def _slices(grid: Grid, box_mm, ndim: int) -> tuple:
    if ndim < 3:
        raise ValueError(f"expected an array with at least 3 axes (..., nx, ny, nz), got {ndim}")
    return (Ellipsis, *grid.box_slices(box_mm))


def _check_grid(volume: np.ndarray, grid: Grid) -> None:
    if tuple(volume.shape[-3:]) != tuple(grid.shape):
        raise ValueError(f"array of shape {volume.shape} does not end in the grid shape {grid.shape}")


def setting_shape(setting: str, grid: Grid, box_mm) -> tuple[int, int, int]:
    """Spatial shape ``(nx, ny, nz)`` of one setting's images."""
    check_choice("setting", setting, SETTINGS)
    if setting == "striatum":
        return tuple(s.stop - s.start for s in grid.box_slices(box_mm))
    return tuple(grid.shape)


def box_mask(grid: Grid, box_mm) -> np.ndarray:
    """Boolean ``grid.shape`` mask, True inside the striatum box."""
    m = np.zeros(grid.shape, dtype=bool)
    m[grid.box_slices(box_mm)] = True
    return m


def setting_view(volume: np.ndarray, setting: str, grid: Grid, box_mm) -> np.ndarray:
    """The image as the CNN of one setting sees it.

    Parameters
    ----------
    volume : ``(..., nx, ny, nz)`` on ``grid``.
    setting : ``full`` | ``striatum`` | ``nostriatum``.
    box_mm : ``[[xmin, xmax], [ymin, ymax], [zmin, zmax]]`` MNI mm.

    Returns
    -------
    A new array (never a view into ``volume``): the full image, the crop of
    the box, or the full image with the box zeroed.
    """
    check_choice("setting", setting, SETTINGS)
    volume = np.asarray(volume)
    _check_grid(volume, grid)
    if setting == "full":
        return volume.copy()
    if setting == "striatum":
        return volume[_slices(grid, box_mm, volume.ndim)].copy()
    out = volume.copy()  # nostriatum
    out[_slices(grid, box_mm, volume.ndim)] = 0
    return out


def place_in_full(crop: np.ndarray, grid: Grid, box_mm, fill: float = 0.0) -> np.ndarray:
    """Put a striatum-setting array ``(..., bx, by, bz)`` back into the full grid (``fill`` outside the box)."""
    crop = np.asarray(crop)
    sl = grid.box_slices(box_mm)
    want = tuple(s.stop - s.start for s in sl)
    if tuple(crop.shape[-3:]) != want:
        raise ValueError(f"crop of shape {crop.shape} does not end in the striatum box shape {want}")
    out = np.full(crop.shape[:-3] + tuple(grid.shape), fill, dtype=crop.dtype)
    out[(Ellipsis, *sl)] = crop
    return out


def to_full(array: np.ndarray, setting: str, grid: Grid, box_mm) -> np.ndarray:
    """Any setting's array on the full grid (only ``striatum`` needs placing)."""
    return place_in_full(array, grid, box_mm) if setting == "striatum" else np.asarray(array)


class ImageStack:
    """Every subject's scaled image in one memory-mapped array, read once from the NIfTIs.

    Files (written by :func:`write_image_stack`): ``<name>.npy`` float32
    ``(N, nx, ny, nz)`` with rows in the order of ``<name>.json``'s ``subjects``,
    and the JSON with ``subjects``, ``shape`` and ``affine`` (the grid's, voxel
    -> MNI mm). Later stages (the three datasets, cluster uptake) slice it instead
    of decompressing every NIfTI again, and the DAG lists two files instead of one
    per subject.
    """

    def __init__(self, npy, sidecar):
        import json

        self.npy, self.sidecar = Path(npy), Path(sidecar)
        try:
            meta = json.loads(self.sidecar.read_text())
            self.subjects = [str(s) for s in meta["subjects"]]
            self.affine = np.asarray(meta["affine"], dtype=float)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.sidecar}: not an image-stack sidecar ({exc})") from exc
        try:
            self.array = np.load(self.npy, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.npy}: not a readable .npy ({exc})") from exc
        if self.array.ndim != 4 or self.array.shape[0] != len(self.subjects):
            raise ValueError(f"{self.npy}: shape {self.array.shape} does not hold one image per subject of "
                             f"{self.sidecar} ({len(self.subjects)})")
        self._row = {s: i for i, s in enumerate(self.subjects)}

    def check_grid(self, shape, affine, what: str = "the analysis grid") -> None:
        """Raise ValueError naming the stack when its images are not on ``(shape, affine)``."""
        if tuple(self.array.shape[1:]) != tuple(shape) or not np.allclose(self.affine, affine, atol=1e-3):
            raise ValueError(f"{self.npy}: images of shape {self.array.shape[1:]} are not on {what} "
                             f"(shape {tuple(shape)}); rebuild the stack")

    def rows(self, subjects) -> np.ndarray:
        """Row index of each subject (ValueError naming the unknown ones)."""
        missing = [s for s in subjects if s not in self._row]
        if missing:
            raise ValueError(f"{self.npy}: no image for subject(s) {missing[:10]}")
        return np.asarray([self._row[s] for s in subjects], dtype=np.int64)

    def volume(self, subject) -> np.ndarray:
        """One subject's image, float32 ``(nx, ny, nz)`` (a copy)."""
        return np.array(self.array[self.rows([subject])[0]])

    def __contains__(self, subject) -> bool:
        return subject in self._row


def _loader_on_grid(grid: Grid, load=None):
    """``path -> data`` that checks the image is on ``grid`` (shape and affine; errors name the file)."""
    from .io import load_nifti

    load = load or (lambda p: load_nifti(p, shape=grid.shape))

    def load_on_grid(path):
        data, affine = load(path)
        if not np.allclose(affine, grid.affine, atol=1e-3):
            raise ValueError(f"{path}: affine differs from the analysis grid's\n{affine}\nvs\n{grid.affine}")
        return data

    return load_on_grid


def write_image_stack(images, subjects, grid: Grid, out_npy, out_json, load=None) -> None:
    """Read each subject's NIfTI once into ``out_npy`` (see :class:`ImageStack`); both files written atomically.

    ``images`` are paths in ``subjects`` order; each must be on ``grid`` (shape and
    affine; the error names the file). ``load`` defaults to
    :func:`datxai.io.load_nifti` with a shape check.
    """
    import json

    images, subjects = list(images), [str(s) for s in subjects]
    if len(images) != len(subjects):
        raise ValueError(f"{len(images)} images for {len(subjects)} subjects")
    if len(set(subjects)) != len(subjects):
        raise ValueError("duplicate subjects in the stack")
    load_on_grid = _loader_on_grid(grid, load)
    out_npy, out_json = Path(out_npy), Path(out_json)
    step = max(1, len(subjects) // 10)
    with atomic_path(out_npy, suffix=".npy") as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(subjects), *grid.shape))
        for i, path in enumerate(images):
            arr[i] = load_on_grid(path)
            if (i + 1) % step == 0 or i + 1 == len(subjects):
                log.info("%s: %d / %d images", out_npy.name, i + 1, len(subjects))
        arr.flush()
        del arr
        meta = {"subjects": subjects, "shape": list(grid.shape), "affine": np.asarray(grid.affine).tolist(),
                "dtype": "float32", "rows": "subjects, in this order"}
        with atomic_path(out_json, suffix=".json") as tmp_json:
            tmp_json.write_text(json.dumps(meta, indent=1) + "\n")


def build_dataset(images, subjects: list[str], labels: dict, setting: str, grid: Grid, box_mm,
                  out_npy, load=None):
    """Stack one subset's images for one setting into a memory-mappable ``.npy``.

    Parameters
    ----------
    images : an :class:`ImageStack` of the scaled (and mirrored) images, or
        ``{subject: path}`` of the NIfTIs themselves, on ``grid``.
    subjects : the subset's subjects, in split order (the rows of the array).
    labels : ``{subject: "normal" | "reduced"}`` (visual read).
    setting : ``full`` | ``striatum`` | ``nostriatum``.
    out_npy : output ``.npy`` path, written atomically: float32 ``(N, sx, sy, sz)``.
    load : ``path -> (data, affine)`` for NIfTI paths; defaults to
        :func:`datxai.io.load_nifti` with a shape check.

    Returns
    -------
    DataFrame ``subject, label, y`` (y = 1 for reduced), one row per array row.
    """
    import pandas as pd

    shape = setting_shape(setting, grid, box_mm)
    missing = [s for s in subjects if s not in images]
    if missing:
        raise ValueError(f"no scaled image for subject(s) {missing[:10]}")
    bad = {s: labels.get(s) for s in subjects if labels.get(s) not in ("normal", "reduced")}
    if bad:
        raise ValueError(f"subjects without a valid label (normal|reduced): {dict(list(bad.items())[:10])}")
    if isinstance(images, ImageStack):
        images.check_grid(grid.shape, grid.affine)
        fetch = images.volume
    else:
        load_on_grid = _loader_on_grid(grid, load)

        def fetch(subject):
            return load_on_grid(images[subject])

    out_npy = Path(out_npy)
    with atomic_path(out_npy, suffix=".npy") as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(subjects), *shape))
        for i, s in enumerate(subjects):
            arr[i] = setting_view(fetch(s), setting, grid, box_mm)
            if (i + 1) % 100 == 0:
                log.info("%s: %d / %d images", out_npy.name, i + 1, len(subjects))
        arr.flush()
        del arr
    table = pd.DataFrame({"subject": list(subjects), "label": [labels[s] for s in subjects]})
    table["y"] = (table["label"] == "reduced").astype(int)
    log.info("%s: %d images of shape %s (%d reduced)", out_npy, len(subjects), shape, int(table["y"].sum()))
    return table


def plot_class_means(npy, tsv, path, setting: str) -> None:
    """QC figure: mean image per visual read (rows) of one stacked subset, three axial slices (columns).

    Slices are shown in neurological orientation with x
    horizontal: left of each panel = ipsilateral (I), right = contralateral
    (C); anterior up. One colour scale per figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    arr = np.load(npy, mmap_mode="r")
    table = pd.read_csv(tsv, sep="\t")
    if len(table) != arr.shape[0]:
        raise ValueError(f"{tsv}: {len(table)} rows but {npy} holds {arr.shape[0]} images")
    nz = arr.shape[3]
    zs = sorted({int(round(f * (nz - 1))) for f in (0.3, 0.5, 0.7)})
    means = {lab: (np.asarray(arr[(table["label"] == lab).to_numpy()]).mean(axis=0) if (table["label"] == lab).any()
                   else np.zeros(arr.shape[1:], np.float32)) for lab in ("normal", "reduced")}
    vmax = max(float(m.max()) for m in means.values()) or 1.0
    fig, axes = plt.subplots(2, len(zs), figsize=(2.6 * len(zs), 5.4), squeeze=False)
    for r, (lab, m) in enumerate(means.items()):
        n = int((table["label"] == lab).sum())
        for c, z in enumerate(zs):
            ax = axes[r, c]
            ax.imshow(m[:, :, z].T, origin="lower", cmap="magma", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.03, 0.03, "I", color="w", transform=ax.transAxes, fontsize=9)
            ax.text(0.93, 0.03, "C", color="w", transform=ax.transAxes, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{lab} (n = {n})")
            if r == 0:
                ax.set_title(f"axial slice {z + 1}/{nz}", fontsize=9)
    fig.suptitle(f"setting '{setting}': mean scaled image by visual read ({Path(npy).stem} set)")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
