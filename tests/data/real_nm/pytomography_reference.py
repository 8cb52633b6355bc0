"""PyTomography's filtered back-projection of the fixtures in this folder: the peer reference.

The stored result (``*_pytomography.npz``) is what ``tests/test_recon_real_nm.py``
compares datxai's reconstruction with; this script is how it was made (the
way nibabel stores SPM outputs), so that anyone can regenerate it. Needs
PyTomography 3.4.0 (``pip install pytomography==3.4.0``; its optional RT-struct
import, ``rt_utils``, is not used here and may be stubbed) on top of
torch 2.13.0::

    python tests/data/real_nm/pytomography_reference.py

What is PyTomography's and what is not:

* reading: ``pytomography.io.SPECT.dicom.get_metadata`` / ``get_projections``
  (its own angle convention, its own frame orientation);
* back-projection: ``pytomography.projectors.SPECT.SPECTSystemMatrix`` with no
  object or projection transforms (no attenuation, no collimator model);
* the filter: the ramp times a Shepp-Logan window with the cut-off at the
  Nyquist frequency, applied along PyTomography's radial axis with 2x zero
  padding (PyTomography 3.4.0's ``FilteredBackProjection`` class cannot run as
  shipped: ``__call__`` reads an attribute its constructor never sets);
* the result in patient RAS: PyTomography's ``save_dcm`` writes the object
  ``[x, y, z]`` with ImageOrientationPatient (1, 0, 0, 0, 1, 0) and slices
  from the feet up, i.e. axis 0 along LPS +x (the patient's left), axis 1
  along LPS +y (posterior), axis 2 superior; the two in-plane axes are
  reversed here to give RAS (axis 0 towards the patient's right, axis 1
  anterior), datxai's native orientation.

Stored: the RAS volume scaled to a maximum |value| of 127 and rounded to int8
(small to commit; against the unrounded volume the rounding costs datxai's
agreement 0.0002-0.002 in Pearson r), with the versions that made it.
"""

import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
FIXTURES = ("GE_D670Pro_Lu177_bed1_CC_208keV_64.dcm", "GE_D670Pro_Lu177_bed2_CW_208keV_64.dcm")


def pytomography_fbp(path: Path) -> np.ndarray:
    from pytomography.io.SPECT import dicom
    from pytomography.projectors.SPECT import SPECTSystemMatrix

    object_meta, proj_meta = dicom.get_metadata(str(path), index_peak=0)
    proj = dicom.get_projections(str(path), index_peak=0)  # (Ltheta, Lr, Lz)
    n_r = proj.shape[-2]
    order = 2 * n_r
    freq = torch.fft.rfftfreq(order)  # cycles per bin, Nyquist 0.5
    window = torch.sinc(freq)  # Shepp-Logan: sinc(f / (2 f_nyquist)) with f_nyquist = 0.5
    filt = (2 * freq.abs() * window).to(proj.dtype)
    spec = torch.fft.rfft(proj, n=order, dim=-2) * filt[:, None]
    filtered = torch.fft.irfft(spec, n=order, dim=-2)[..., :n_r, :]
    system = SPECTSystemMatrix(obj2obj_transforms=[], proj2proj_transforms=[], object_meta=object_meta,
                               proj_meta=proj_meta)
    obj = system.backward(filtered).squeeze().cpu().numpy()  # (x LPS+, y LPS+, z superior)
    return np.ascontiguousarray(obj[::-1, ::-1, :])


def main() -> int:
    import pytomography

    for name in FIXTURES:
        vol = pytomography_fbp(HERE / name)
        ras = np.round(vol / np.abs(vol).max() * 127).astype(np.int8)
        out = HERE / name.replace(".dcm", "_pytomography.npz")
        np.savez_compressed(out, ras=ras, pytomography=pytomography.__version__,
                            torch=torch.__version__)
        print(f"{name}: {vol.shape} -> {out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
