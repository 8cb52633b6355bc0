"""Derive the small real-camera fixtures of this folder from the GE files in ``../shared/real_nm``.

Run from the repository root (needs only pydicom and numpy)::

    python tests/data/real_nm/make_fixture.py ../shared/real_nm

For each GE Discovery 670 Pro file (bed1: CC from 180.16 deg; bed2: CW from
0.16 deg) it keeps the 208 keV Lu-177 photopeak window (window 2 of 6), sums
2 x 2 pixels (64 x 64 bins of 8.8392 mm), drops the private tags, and moves the
detector's ImagePositionPatient to the centre of the first binned pixel. Every
other public header element (angles, rotation, ImageOrientationPatient, patient
orientation codes) is kept as the camera wrote it: the fixture tests the
reader on a real header, not on one written by this project.

Source and licence: see README.md in this folder.
"""

import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.sequence import Sequence

WINDOW = 2  # 1-based: Lu177_EM 187.2-228.8 keV
BIN = 2
FILES = {"GE_D670Pro_Lu177_6win_bed1_CC.dcm": "GE_D670Pro_Lu177_bed1_CC_208keV_64.dcm",
         "GE_D670Pro_Lu177_6win_bed2_CW.dcm": "GE_D670Pro_Lu177_bed2_CW_208keV_64.dcm"}


def derive(src: Path, dst: Path) -> None:
    ds = pydicom.dcmread(src)
    keep = np.flatnonzero(np.asarray(ds.EnergyWindowVector) == WINDOW)
    px = ds.pixel_array[keep].astype(np.uint32)
    n, r, c = px.shape
    binned = px.reshape(n, r // BIN, BIN, c // BIN, BIN).sum(axis=(2, 4))
    assert binned.max() < 2**16
    ds.remove_private_tags()
    for kw in ("SmallestImagePixelValue", "LargestImagePixelValue", "WindowCenter", "WindowWidth"):
        if kw in ds:
            delattr(ds, kw)
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns = r // BIN, c // BIN
    old_mm = [float(v) for v in ds.PixelSpacing]
    ds.PixelSpacing = [f"{v * BIN:.4f}" for v in old_mm]
    for kw in ("EnergyWindowVector", "DetectorVector", "RotationVector", "AngularViewVector"):
        setattr(ds, kw, [int(v) for v in np.asarray(getattr(ds, kw))[keep]])
    ds.EnergyWindowVector = [1] * n
    ds.NumberOfEnergyWindows = 1
    ds.EnergyWindowInformationSequence = Sequence([ds.EnergyWindowInformationSequence[WINDOW - 1]])
    for det in ds.DetectorInformationSequence:
        iop = np.asarray([float(v) for v in det.ImageOrientationPatient])
        ipp = np.asarray([float(v) for v in det.ImagePositionPatient])
        # first binned pixel: centre of the first BIN x BIN block (along the row and the column direction)
        ipp = ipp + (BIN - 1) / 2 * (old_mm[1] * iop[:3] + old_mm[0] * iop[3:])
        det.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
    ds.CountsAccumulated = int(binned.sum())
    ds.PixelData = np.ascontiguousarray(binned, np.uint16).tobytes()
    ds.save_as(dst, enforce_file_format=True)
    print(f"{src.name} -> {dst.name}: {n} frames of {r // BIN} x {c // BIN}, {int(binned.sum())} counts")


if __name__ == "__main__":
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/real_nm")
    here = Path(__file__).resolve().parent
    for src, dst in FILES.items():
        derive(shared / src, here / dst)
