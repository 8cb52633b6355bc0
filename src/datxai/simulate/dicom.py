"""Export of simulated projections the way a SPECT camera does: one DICOM NM multi-frame file.

NM Image Storage (``1.2.840.10008.5.1.4.1.1.20``), ``ImageType`` ORIGINAL \\
PRIMARY \\ TOMO \\ EMISSION; frames ordered by detector then angle
(``DetectorVector``, ``RotationVector``, ``AngularViewVector``); per-detector
``StartAngle`` in ``DetectorInformationSequence`` and, as most cameras write
it, the rotation's ``StartAngle`` (detector 1), ``AngularStep``,
``RotationDirection``, ``ScanArc`` and ``NumberOfFramesInRotation`` in
``RotationInformationSequence``. Pixels are uint16 counts (``RescaleSlope``
only when counts exceed 65535).

The identifying fields (name, IDs, dates, institution, physician) are FAKE,
generated deterministically from the seed and subject, so that
de-identification can be tested; they are returned for the truth file.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from .. import geometry
from ..config import derive_seed

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root: UIDs derived from entropy sources

_GIVEN = {
    "F": ["Anna", "Maria", "Ingrid", "Helga", "Ursula", "Renate", "Elke", "Sabine", "Petra", "Monika", "Gisela", "Karin"],
    "M": ["Peter", "Klaus", "Hans", "Juergen", "Wolfgang", "Dieter", "Uwe", "Rainer", "Horst", "Bernd", "Frank", "Manfred"],
}
_FAMILY = ["Musterfrau", "Beispiel", "Testmann", "Phantomov", "Fiktiva", "Synthmayer", "Probst", "Erfunden",
           "Blindtext", "Nullinger", "Simulak", "Platzhalter", "Dummler", "Kunstlich", "Modellbach", "Schein"]
_INSTITUTIONS = ["Synthetic University Hospital", "Phantom Clinic Nordstadt", "Fictional Medical Centre",
                 "Klinikum Beispielstadt"]


def fake_identity(seed: int, subject: str, age: int, sex: str) -> dict:
    """Deterministic, clearly fake identifiers of one subject (DICOM keyword -> value)."""
    rng = np.random.default_rng(derive_seed(seed, "simulate", "identity", subject))
    study = _dt.date(2010, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 3650)))
    birth = study - _dt.timedelta(days=int(round(365.25 * age)) + int(rng.integers(1, 365)))
    ref_family, ref_given = rng.choice(_FAMILY), rng.choice(_GIVEN["F"] + _GIVEN["M"])
    return {
        "PatientName": f"{rng.choice(_FAMILY)}^{rng.choice(_GIVEN[sex])}",
        "PatientID": f"{int(rng.integers(10_000_000, 99_999_999))}",
        "OtherPatientIDs": f"X{int(rng.integers(100_000, 999_999))}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "StudyDate": study.strftime("%Y%m%d"),
        "AccessionNumber": f"A{int(rng.integers(1_000_000, 9_999_999))}",
        "InstitutionName": str(rng.choice(_INSTITUTIONS)),
        "ReferringPhysicianName": f"{ref_family}^{ref_given}^^Dr.",
    }


def _uid(seed: int, subject: str, what: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(seed), subject, what])


def _ds(value: float) -> str:
    """A decimal string (DS, at most 16 characters) of ``value``; -0 written as 0."""
    v = round(float(value), 6)
    return f"{v + 0.0:.10g}"[:16]


def _age_string(age: int) -> str:
    return f"{int(age):03d}Y"


def write_nm(path, counts: np.ndarray, camera, subject: str, identity: dict, seed: int,
             age: int, sex: str, dose_mbq: float, frame_duration_ms: int = 20000):
    """Write projections as one NM multi-frame DICOM file (atomically).

    Parameters
    ----------
    counts : ``(n_frames, n_rows, n_bins)`` non-negative integer counts, frames
        in the order of ``camera.angles_deg()``.
    camera : :class:`~datxai.simulate.camera.Camera`.
    identity : fake identifiers (:func:`fake_identity`).
    seed : master seed (UIDs are derived from it: same seed, same bytes).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    from ..io import atomic_path

    counts = np.asarray(counts)
    nf, nr, nb = counts.shape
    if nf != camera.n_views or nr != camera.n_rows or nb != camera.n_bins:
        raise ValueError(f"{subject}: counts have shape {counts.shape}, the camera expects "
                         f"({camera.n_views}, {camera.n_rows}, {camera.n_bins})")
    if counts.min() < 0:
        raise ValueError(f"{subject}: negative counts")
    slope = 1.0
    if counts.max() > 65535:
        slope = float(np.ceil(counts.max() / 65535.0))
    pixels = np.round(counts / slope).astype(np.uint16)

    sop_uid = _uid(seed, subject, "sop")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = NM_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(seed, subject, "study")
    ds.SeriesInstanceUID = _uid(seed, subject, "series")
    ds.FrameOfReferenceUID = _uid(seed, subject, "frame")
    ds.Modality = "NM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    ds.Manufacturer = "datxai synthetic camera"
    ds.StationName = "SYNTH01"
    ds.SeriesDescription = "DaTSCAN SPECT"
    ds.StudyDescription = "DAT-SPECT 123I-FP-CIT"
    for key, value in identity.items():
        setattr(ds, key, value)
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = "093000"
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = identity["StudyDate"]
    ds.ContentTime = "093000"
    ds.PatientSex = sex
    ds.PatientAge = _age_string(age)
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientPosition = "HFS"

    # image pixel module
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = nr, nb
    ds.NumberOfFrames = nf
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [f"{camera.bin_mm:g}", f"{camera.bin_mm:g}"]
    ds.SliceThickness = f"{camera.bin_mm:g}"
    if slope != 1.0:
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = "0"

    # NM multi-frame module: frames ordered by detector, then angle
    vph = camera.views_per_head
    ds.FrameIncrementPointer = [0x00540010, 0x00540020, 0x00540050, 0x00540090]
    ds.NumberOfEnergyWindows = 1
    ds.EnergyWindowVector = [1] * nf
    ds.NumberOfDetectors = camera.n_heads
    ds.DetectorVector = [h + 1 for h in range(camera.n_heads) for _ in range(vph)]
    ds.NumberOfRotations = 1
    ds.RotationVector = [1] * nf
    ds.AngularViewVector = [k + 1 for _ in range(camera.n_heads) for k in range(vph)]

    win = Dataset()
    rng_ds = Dataset()
    rng_ds.EnergyWindowLowerLimit, rng_ds.EnergyWindowUpperLimit = "143.1", "174.9"
    win.EnergyWindowRangeSequence = Sequence([rng_ds])
    win.EnergyWindowName = "I123 159keV"
    ds.EnergyWindowInformationSequence = Sequence([win])

    rp = Dataset()
    rp.Radiopharmaceutical = "123I-FP-CIT (ioflupane)"
    rp.RadionuclideTotalDose = f"{float(dose_mbq):.1f}"  # MBq
    rp.RadionuclideHalfLife = "47592"
    ds.RadiopharmaceuticalInformationSequence = Sequence([rp])

    detectors = []
    for h, start in enumerate(camera.start_angles_deg):
        det = Dataset()
        det.CollimatorGridName = "LEHR"
        det.CollimatorType = "PARA"
        det.FieldOfViewShape = "RECTANGLE"
        det.FieldOfViewDimensions = [int(round(nb * camera.bin_mm)), int(round(nr * camera.bin_mm))]
        det.StartAngle = f"{start:g}"
        det.RadialPosition = [f"{camera.radius_mm:g}"] * vph
        # the detector's first frame in patient LPS, as cameras write it (geometry): columns along u(start),
        # rows towards the feet; position: the first pixel's centre in the plane through the rotation axis
        row_dir = geometry.bin_direction_lps(start)
        first = geometry.bin_positions(nb, camera.bin_mm)[0] * row_dir
        first[2] = geometry.row_positions(nr, camera.bin_mm)[0]
        det.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *geometry.ROW_DIRECTION_LPS)]
        det.ImagePositionPatient = [_ds(v) for v in first]
        detectors.append(det)
    ds.DetectorInformationSequence = Sequence(detectors)

    rot = Dataset()
    rot.StartAngle = f"{camera.start_angles_deg[0]:g}"
    rot.AngularStep = f"{camera.step_deg:g}"
    rot.RotationDirection = camera.rotation
    rot.ScanArc = f"{camera.step_deg * vph:g}"
    rot.NumberOfFramesInRotation = vph
    rot.ActualFrameDuration = int(frame_duration_ms)
    rot.RadialPosition = f"{camera.radius_mm:g}"
    ds.RotationInformationSequence = Sequence([rot])

    ds.PixelData = pixels.tobytes()
    with atomic_path(path, suffix=".dcm") as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


def frame_angles_from_header(ds) -> np.ndarray:
    """Angle (degrees) of every frame of an NM dataset, per :func:`datxai.geometry.frame_angles`.

    Start angles per detector from ``DetectorInformationSequence`` (falling back to
    the rotation's ``StartAngle`` plus an even spacing of the heads).
    """
    rot = ds.RotationInformationSequence[0]
    n_det = int(getattr(ds, "NumberOfDetectors", len(ds.DetectorInformationSequence)))
    starts = []
    for h in range(n_det):
        det = ds.DetectorInformationSequence[h] if h < len(ds.DetectorInformationSequence) else None
        if det is not None and "StartAngle" in det:
            starts.append(float(det.StartAngle))
        else:
            starts.append(float(rot.StartAngle) + h * 360.0 / n_det)
    return geometry.frame_angles(starts, float(rot.AngularStep), int(rot.NumberOfFramesInRotation),
                                 str(rot.RotationDirection))
