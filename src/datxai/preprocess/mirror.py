"""Left-right mirroring so that the lower putamen SBR is always on the left.

The analysis grid is symmetric about x = 0 (:mod:`datxai.grid`), so flipping
array axis 0 mirrors the image at the midsagittal plane. After mirroring, the
left hemisphere (x < 0, low index on axis 0) is *ipsilateral* (I, lower
putamen SBR) and the right one *contralateral* (C). Ties keep the image as it is.
"""

from __future__ import annotations

import numpy as np


def mirror(volume: np.ndarray) -> np.ndarray:
    """Mirror at the midsagittal plane (flip axis 0 of a ``(nx, ny, nz)`` array); an involution."""
    return np.ascontiguousarray(np.flip(np.asarray(volume), axis=0))


def lateralise(image: np.ndarray, sbr: dict[str, float]) -> tuple[np.ndarray, dict]:
    """Mirror ``image`` if the right putamen SBR is lower; relabel the SBRs as I / C.

    Parameters
    ----------
    image : ``(nx, ny, nz)`` on the symmetric grid.
    sbr : per side, keys ``putamen_L``, ``putamen_R``, ``caudate_L``, ``caudate_R``
        (from :func:`datxai.preprocess.sbr.striatal_sbr`).

    Returns
    -------
    (image, record) where ``image`` is mirrored or a copy, and ``record`` has
    ``sbr_putamen_ipsi``, ``sbr_putamen_contra``, ``sbr_caudate_ipsi``,
    ``sbr_caudate_contra``, ``mirrored`` (``"yes"``/``"no"``) and
    ``lower_putamen_side`` (``"L"``/``"R"``, before mirroring). The caudate
    follows the putamen's hemisphere (it is not sorted on its own).
    """
    flip = sbr["putamen_R"] < sbr["putamen_L"]
    ipsi, contra = ("R", "L") if flip else ("L", "R")
    record = {
        "sbr_putamen_ipsi": float(sbr[f"putamen_{ipsi}"]),
        "sbr_putamen_contra": float(sbr[f"putamen_{contra}"]),
        "sbr_caudate_ipsi": float(sbr[f"caudate_{ipsi}"]),
        "sbr_caudate_contra": float(sbr[f"caudate_{contra}"]),
        "mirrored": "yes" if flip else "no",
        "lower_putamen_side": ipsi,
    }
    return (mirror(image) if flip else np.array(image, copy=True)), record
