"""The whole chain through Snakemake on the micro config: kill and resume, determinism, provenance,
no personal data in logs and the report, user-data errors that reach the user.

One uninterrupted run (``baseline``) is shared by the module. Against it:

* an interrupted run: SIGKILL to the whole process group in the middle of the
  per-subject work, ``--unlock`` + ``--rerun-incomplete``, SIGKILL again in the
  middle of training, rerun to the end: the result tables equal the baseline's;
* a second uninterrupted run: the result tables equal the baseline's (checksums);
* provenance: every input checksummed, unchanged after the run;
* no planted DICOM identifier in the zipped report, Snakemake's logs or its console output;
* user cohorts (``cohort.source: dicom | nifti``) with a bad participants sheet, a
  truncated DICOM or a NaN image: Snakemake fails, the message (file and problem)
  reaches the user, no output is left, the inputs are untouched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability_helpers import assert_untouched, tree_state

from datxai.batches import subject_batches

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [ROOT / "config" / "config.yaml", ROOT / "tests" / "configs" / "tiny.yaml",
           ROOT / "tests" / "configs" / "micro.yaml"]
pytestmark = pytest.mark.workflow
CONSOLE: list[Path] = []  # console output of every Snakemake call of this module (scanned for identifiers)


def _cmd(results: Path, *args, configs=()):
    return [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--resources", "gpu=1",
            "--configfile", *map(str, CONFIGS), *map(str, configs), "--config", f"results={results}"]


def _env():
    return dict(os.environ, PYTHONHASHSEED="0")


def snakemake(results: Path, *args, configs=(), check=True):
    """Run Snakemake to the end; keep its console output (for the personal-data scan)."""
    proc = subprocess.run(_cmd(results, *args, configs=configs), cwd=ROOT, capture_output=True, text=True,
                          env=_env())
    log = results.parent / f"console-{len(CONSOLE)}.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    CONSOLE.append(log)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return proc


def kill_when(results: Path, condition, *args, timeout=600.0):
    """Start Snakemake in its own process group; SIGKILL the whole group as soon as ``condition()`` holds.

    Returns what ``condition()`` returned (truthy), or fails if the run ended or timed out first.
    """
    log = results.parent / f"console-{len(CONSOLE)}.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    CONSOLE.append(log)
    with open(log, "w") as fh:
        proc = subprocess.Popen(_cmd(results, *args), cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
        t0 = time.monotonic()
        try:
            while proc.poll() is None and time.monotonic() - t0 < timeout:
                hit = condition()
                if hit:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return hit
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    raise AssertionError(f"the run ended (rc {proc.returncode}) or timed out before the kill point; see {log}")


def survivors(needle: str) -> list[str]:
    """Processes still alive whose command line mentions ``needle`` (after a SIGKILL of their group)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if needle in line and "ps -eo" not in line]


def result_checksums(results: Path) -> dict[str, str]:
    """sha256 of every result table (TSV), dataset array and model weights; time stamps and timings left out.

    Left out: logs/, benchmarks/, provenance.* (creation time, git state); history.tsv
    loses its ``seconds`` column; model.pt / checkpoint.pt are compared by their
    tensors (the file also stores epoch timings).
    """
    import torch

    out = {}
    for p in sorted(results.rglob("*")):
        rel = p.relative_to(results).as_posix()
        if not p.is_file() or rel.split("/")[0] in ("logs", "benchmarks") or rel.startswith("provenance"):
            continue
        if p.name.startswith("."):
            continue
        if p.suffix == ".tsv":
            if p.name == "history.tsv":
                blob = pd.read_csv(p, sep="\t").drop(columns="seconds").to_csv(sep="\t", index=False).encode()
            else:
                blob = p.read_bytes()
        elif p.suffix == ".npy":
            blob = p.read_bytes()
        elif p.name == "model.pt":
            state = torch.load(p, map_location="cpu", weights_only=True)["state_dict"]
            blob = b"".join(k.encode() + state[k].numpy().tobytes() for k in sorted(state))
        else:
            continue
        out[rel] = hashlib.sha256(blob).hexdigest()
    return out


def assert_same_results(a: Path, b: Path) -> int:
    ca, cb = result_checksums(a), result_checksums(b)
    assert ca.keys() == cb.keys(), f"different result files: {sorted(ca.keys() ^ cb.keys())}"
    differ = sorted(k for k in ca if ca[k] != cb[k])
    assert not differ, f"{len(differ)} of {len(ca)} results differ: {differ}"
    return len(ca)


def assert_no_half_files(results: Path) -> int:
    """Every visible output file parses completely (atomic writes: a reader never sees half a file)."""
    import nibabel as nib
    import torch

    n = 0
    for p in results.rglob("*"):
        rel = p.relative_to(results).as_posix()
        if not p.is_file() or p.name.startswith(".") or rel.split("/")[0] in ("logs", "benchmarks"):
            continue
        if p.name.endswith(".nii.gz"):
            np.asarray(nib.load(p).dataobj)
        elif p.suffix == ".tsv":
            pd.read_csv(p, sep="\t")
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".npy":
            np.load(p)
        elif p.suffix == ".pt":
            torch.load(p, map_location="cpu", weights_only=True)
        elif p.suffix == ".dcm":
            import pydicom

            pydicom.dcmread(p).pixel_array
        else:
            continue
        n += 1
    return n


def temp_leftovers(results: Path) -> list[str]:
    """Temporary files of atomic writes (``.name.XXXXXXXX.ext``) left by a killed job."""
    return sorted(p.relative_to(results).as_posix() for p in results.rglob(".*")
                  if p.is_file() and p.name != ".snakemake_timestamp")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("reliability_workflow")


@pytest.fixture(scope="module")
def baseline(workdir):
    results = workdir / "baseline" / "results"
    snakemake(results)
    return results


# ----------------------------------------------------------------------------- interruption

def test_kill_in_per_subject_work_and_in_training_then_resume(baseline, workdir):
    results = workdir / "killed" / "results"
    recon = results / "recon"

    def per_subject_running():
        done = list(recon.glob("sub-*_spect.nii.gz")) if recon.is_dir() else []
        return 3 <= len(done) < 16 and len(done)

    n_recon = kill_when(results, per_subject_running)
    time.sleep(0.5)
    assert not survivors(str(results)), "processes of the killed run are still running"
    assert assert_no_half_files(results) > 0
    snakemake(results, "--unlock")

    def training_running():
        cks = sorted(results.glob("train/*/resume/checkpoint.pt"))
        return cks and cks[0].parent.parent.name

    setting = kill_when(results, training_running, "--rerun-incomplete")
    time.sleep(0.5)
    assert not survivors(str(results))
    assert assert_no_half_files(results) > 0
    snakemake(results, "--unlock")
    snakemake(results, "--rerun-incomplete")

    hp = json.loads((results / "train" / setting / "hyperparameters.json").read_text())
    assert hp["resumed_from_epoch"] >= 1, "training restarted from scratch instead of resuming its checkpoint"
    n = assert_same_results(baseline, results)
    print(f"\n[resume] killed after {n_recon} of 16 reconstructions and again in training of {setting!r} "
          f"(resumed after epoch {hp['resumed_from_epoch']}); {n} result files identical to the uninterrupted run; "
          f"temporary leftovers: {temp_leftovers(results) or 'none'}")
    # a job killed inside a write can leave its hidden temporary file (.name.XXXXXXXX.ext, never read by
    # anything); visible outputs are whole (checked above) — the leftovers are only reported
    # and the finished run is complete: nothing left to do
    assert "nothing to be done" in snakemake(results, "-n").stdout.lower()


# ----------------------------------------------------------------------------- determinism

def test_two_uninterrupted_runs_give_identical_results(baseline, workdir):
    """A second run, also cut into jobs differently (about 2 subjects per batch job instead of 4), gives the same
    results."""
    results = workdir / "second" / "results"
    batches = workdir / "second" / "batches.yaml"
    batches.parent.mkdir(parents=True, exist_ok=True)
    batches.write_text("execution:\n  subjects_per_job: 2\n")
    snakemake(results, configs=[batches])
    ids = [f"sub-{i:04d}" for i in range(1, 17)]
    assert len(subject_batches(ids, 2)) == 8 and len(subject_batches(ids, 4)) == 4  # 16 subjects: 8 batches, not 4
    for k in subject_batches(ids, 2):
        assert (results / "logs" / "reconstruct_spect" / f"batch-{k:03d}.log").is_file()
    n = assert_same_results(baseline, results)
    table1 = pd.read_csv(results / "evaluate" / "table1.tsv", sep="\t")
    assert len(table1) == 3  # the comparison covered real tables, not empty ones
    print(f"\n[determinism] {n} result files (tables, datasets, model weights) identical in two runs "
          f"with about 4 and 2 subjects per batch job")


# ----------------------------------------------------------------------------- provenance

def test_every_input_checksummed_and_unchanged(baseline):
    from datxai.provenance import file_sha256, verify_checksums

    prov = json.loads((baseline / "provenance.json").read_text())
    files = prov["inputs"]["files"]
    expected = {str(baseline / "cohort" / "participants.tsv")}
    expected |= {str(p) for p in (baseline / "cohort" / "dicom").glob("sub-*.dcm")}
    assert set(files) == expected and len(expected) == 17
    assert all(file_sha256(p) == h for p, h in files.items())
    assert verify_checksums(prov) == []
    check = pd.read_csv(baseline / "provenance_check.tsv", sep="\t")
    assert list(check["result"]) == ["ok"]


# ----------------------------------------------------------------------------- personal data

def _identifiers(results: Path) -> set[str]:
    ids = set()
    for truth in (results / "cohort" / "truth").glob("sub-*_truth.json"):
        d = json.loads(truth.read_text())
        ident = d.get("dicom_identifiers") or d.get("identifiers") or {}
        ids |= {str(v) for v in ident.values() if v and len(str(v)) >= 6}
    return ids


def _blobs_of_zip(data: bytes, name: str):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for member in z.namelist():
            blob = z.read(member)
            if member.endswith(".gz"):
                blob = gzip.decompress(blob)
            if member.endswith(".zip"):
                yield from _blobs_of_zip(blob, f"{name}:{member}")
            else:
                yield f"{name}:{member}", blob


def test_no_personal_data_in_report_and_logs(baseline, workdir):
    identifiers = _identifiers(baseline)
    assert len(identifiers) >= 16 * 5, "the synthetic truth lists too few planted identifiers"
    report = workdir / "report.zip"
    snakemake(baseline, "--report", str(report))
    blobs = list(_blobs_of_zip(report.read_bytes(), report.name))
    assert len(blobs) > 10
    # Snakemake's own logs of these runs (the rule logs are under results/logs, scanned by test_workflow.py)
    logs = set()
    for console in CONSOLE:
        blobs.append((str(console), console.read_bytes()))
        logs |= set(re.findall(r"Complete log\(s\): (\S+)", console.read_text()))
    logs |= {str(p) for p in (baseline / "logs").rglob("*") if p.is_file()}
    for path in sorted(logs):
        if Path(path).is_file():
            blobs.append((path, Path(path).read_bytes()))
    leaks = [f"{name}: {i}" for name, blob in blobs for i in identifiers if i.encode() in blob]
    assert not leaks, leaks[:5]
    print(f"\n[personal data] {len(identifiers)} planted identifiers; none in {len(blobs)} files "
          f"(report zip members, Snakemake console output and logs, rule logs)")


# ----------------------------------------------------------------------------- user data

def _user_cohort(baseline, folder: Path, subjects, kind: str):
    """A user's cohort: a participants sheet and images (copies of the baseline's camera exports or recons)."""
    folder = folder / "input"
    folder.mkdir(parents=True)
    sheet = pd.read_csv(baseline / "cohort" / "participants.tsv", sep="\t", dtype=str)
    sheet = sheet[sheet["subject"].isin(subjects)]
    sheet.to_csv(folder / "participants.tsv", sep="\t", index=False)
    (folder / "images").mkdir()
    for s in subjects:
        if kind == "dicom":
            shutil.copy(baseline / "cohort" / "dicom" / f"{s}.dcm", folder / "images" / f"{s}.dcm")
        else:
            shutil.copy(baseline / "recon" / f"{s}_spect.nii.gz", folder / "images" / f"{s}.nii.gz")
    ext = "dcm" if kind == "dicom" else "nii.gz"
    cfg = folder / "cohort.yaml"
    cfg.write_text(f"cohort:\n  source: {kind}\n  participants: {folder / 'participants.tsv'}\n"
                   f"  images: {folder / 'images'}/{{subject}}.{ext}\n")
    return cfg


def _outputs(results: Path) -> list[str]:
    if not results.exists():
        return []
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*")
                  if p.is_file() and p.relative_to(results).parts[0] not in ("logs", "benchmarks"))


def test_user_cohort_participant_without_images(baseline, workdir):
    folder = workdir / "user_missing"
    cfg = _user_cohort(baseline, folder, ["sub-0001", "sub-0002", "sub-0003"], "dicom")
    results, folder = folder / "results", folder / "input"
    (folder / "images" / "sub-0002.dcm").unlink()
    shutil.copy(baseline / "cohort" / "dicom" / "sub-0004.dcm", folder / "images" / "sub-0099.dcm")
    before = tree_state(folder)
    proc = snakemake(results, configs=[cfg], check=False)
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert str(folder / "participants.tsv") in err
    assert "1 subject(s) without an image" in err and "sub-0002" in err
    assert "1 image file(s) without a subject" in err and "sub-0099.dcm" in err
    assert _outputs(results) == []
    assert_untouched(before, folder)
    line = next(x for x in err.splitlines() if "do not match" in x)
    print(f"\n[bad input via snakemake] participants vs images: {line.strip()} ...")


def test_user_cohort_bad_config_key(baseline, workdir):
    folder = workdir / "user_config"
    cfg = _user_cohort(baseline, folder, ["sub-0001", "sub-0002"], "dicom")
    bad = folder / "bad.yaml"
    bad.write_text("group:\n  percentile: 150\ntrain:\n  epoch: 3\n")
    proc = snakemake(folder / "results", configs=[cfg, bad], check=False)
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config: group.percentile: 150 is greater than or equal to the maximum of 100" in err
    assert "config: train: Additional properties are not allowed ('epoch' was unexpected)" in err
    assert _outputs(folder / "results") == []


def test_user_cohort_truncated_dicom(baseline, workdir):
    folder = workdir / "user_dicom"
    subjects = ["sub-0001", "sub-0002", "sub-0003"]
    cfg = _user_cohort(baseline, folder, subjects, "dicom")
    results, folder = folder / "results", folder / "input"
    bad = folder / "images" / "sub-0003.dcm"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # a half-copied file
    before = tree_state(folder)
    targets = [str(results / "recon" / f"{s}_spect.nii.gz") for s in subjects]
    batches = folder.parent / "batches.yaml"  # batches by a hash of the id: 0 = sub-0001, sub-0003; 2 = sub-0002
    batches.write_text("execution:\n  subjects_per_job: 1\n")
    assert subject_batches(subjects, 1) == {0: ["sub-0001", "sub-0003"], 2: ["sub-0002"]}
    proc = snakemake(results, *targets, "--keep-going", configs=[cfg, batches], check=False)
    err = proc.stdout + proc.stderr
    log = (results / "logs" / "reconstruct_spect" / "batch-000.log").read_text()
    expected = f"{bad}: pixel data truncated or unreadable"
    assert proc.returncode != 0
    assert expected in err and expected in log  # on the console and in the rule's log file
    assert "Error in rule reconstruct_spect_b000" in err and "sub-0003" in err
    assert "1 of 2 subjects of rule reconstruct_spect_b000 failed" in err
    assert "sub-0001 done (1/2" in log  # the rest of the batch still ran and is logged
    outputs = _outputs(results)
    assert not [o for o in outputs if "sub-0003" in o], outputs  # nothing of the bad subject
    assert not [o for o in outputs if "sub-0001" in o], outputs  # nor of its failed batch
    assert "recon/sub-0002_spect.nii.gz" in outputs  # the other batch goes on
    assert not temp_leftovers(results)
    assert_untouched(before, folder)
    assert not [i for i in _identifiers(baseline) if i in err + log]  # the error output carries no identifier
    print(f"\n[bad input via snakemake] truncated DICOM: {next(x for x in log.splitlines() if expected in x)}")


def test_user_cohort_nan_nifti(baseline, workdir):
    import nibabel as nib

    folder = workdir / "user_nifti"
    subjects = [f"sub-{i:04d}" for i in range(1, 9)]
    cfg = _user_cohort(baseline, folder, subjects, "nifti")
    results, folder = folder / "results", folder / "input"
    bad = folder / "images" / "sub-0003.nii.gz"
    img = nib.load(bad)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[10, 10, 10] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), bad)
    before = tree_state(folder)
    target = results / "normalized" / "sub-0003_space-MNI_spect.nii.gz"
    proc = snakemake(results, str(target), configs=[cfg], check=False)
    err = proc.stdout + proc.stderr
    logs = "".join(p.read_text() for p in (results / "logs").rglob("*.log"))
    expected = f"{bad}: 1 voxels are NaN or Inf"
    assert proc.returncode != 0
    assert expected in err and expected in logs  # on the console and in the failed rule's log file
    assert not target.exists() and not (results / "normalized" / "sub-0003_affine.json").exists()
    assert not temp_leftovers(results)
    assert_untouched(before, folder)
    print(f"\n[bad input via snakemake] NaN NIfTI: {next(x for x in logs.splitlines() if expected in x)}")


def _write_recon_tomo(nifti: Path, out: Path) -> float:
    """Write a native NIfTI (RAS) as an NM RECON TOMO file the way a camera exports one: uint16 frames with a
    rescale slope, IPP / IOP in LPS in the DetectorInformationSequence. Returns the slope (quantisation step)."""
    import nibabel as nib
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    img = nib.load(nifti)
    data = np.asarray(img.dataobj, dtype=np.float64)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    dc, dr, dz = (np.linalg.norm(lps[:3, k]) for k in range(3))
    row, col = lps[:3, 0] / dc, lps[:3, 1] / dr
    assert np.allclose(np.cross(row, col), lps[:3, 2] / dz)  # slices along row x column
    slope = max(float(data.max()), 1e-12) / 65000.0
    q = np.clip(np.round(np.clip(data, 0, None) / slope), 0, 65535).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.20", generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "NM"
    ds.PatientName, ds.PatientID = "Recon^Planted", "PID-RECON-4471"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.NumberOfFrames = ds.NumberOfSlices = q.shape[2]
    ds.Rows, ds.Columns = q.shape[1], q.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing, ds.SpacingBetweenSlices = [dr, dc], dz
    ds.SliceVector = list(range(1, q.shape[2] + 1))
    ds.RescaleSlope, ds.RescaleIntercept = slope, 0.0
    det = Dataset()
    det.ImagePositionPatient, det.ImageOrientationPatient = [float(v) for v in lps[:3, 3]], [*map(float, row), *map(float, col)]
    ds.DetectorInformationSequence = Sequence([det])
    ds.PatientPosition = "HFS"
    ds.PixelData = np.ascontiguousarray(q.transpose(2, 1, 0)).tobytes()
    ds.save_as(out, enforce_file_format=True)
    return slope


def test_user_cohort_of_reconstructed_dicom_volumes(baseline, workdir):
    """cohort.source dicom_recon: reconstructed NM volumes (as cameras and PPMI export them) enter at normalisation;
    their NIfTI has the baseline's voxels (to the uint16 quantisation) and affine (1e-3 mm), and dcm2niix agrees
    with the geometry of the files written here."""
    import nibabel as nib

    folder = workdir / "user_recon"
    subjects = ["sub-0001", "sub-0002", "sub-0003"]
    cfg = _user_cohort(baseline, folder, subjects, "dicom")
    results, folder = folder / "results", folder / "input"
    slopes = {}
    for s in subjects:
        (folder / "images" / f"{s}.dcm").unlink()
        slopes[s] = _write_recon_tomo(baseline / "recon" / f"{s}_spect.nii.gz", folder / "images" / f"{s}.dcm")
    cfg.write_text(cfg.read_text().replace("source: dicom", "source: dicom_recon"))
    before = tree_state(folder)
    targets = [str(results / "recon" / f"{s}_spect.nii.gz") for s in subjects]
    snakemake(results, *targets, configs=[cfg])
    for s in subjects:
        ref, out = nib.load(baseline / "recon" / f"{s}_spect.nii.gz"), nib.load(results / "recon" / f"{s}_spect.nii.gz")
        np.testing.assert_allclose(out.affine, ref.affine, atol=1e-3)
        np.testing.assert_allclose(out.get_fdata(), np.clip(ref.get_fdata(), 0, None), rtol=0, atol=slopes[s] * 0.51)
        side = json.loads((results / "recon" / f"{s}_spect.json").read_text())
        assert side["source"] == "dicom_recon" and "PID" not in json.dumps(side) and "Planted" not in json.dumps(side)
    assert_untouched(before, folder)
    if shutil.which("dcm2niix"):  # an independent converter reads the same geometry from the files written here
        d2n = workdir / "user_recon_d2n"
        (d2n / "in").mkdir(parents=True)
        shutil.copy(folder / "images" / "sub-0001.dcm", d2n / "in" / "f.dcm")
        subprocess.run(["dcm2niix", "-z", "y", "-f", "out", "-o", str(d2n), str(d2n / "in")], check=True,
                       capture_output=True, timeout=120)
        a = nib.as_closest_canonical(nib.load(d2n / "out.nii.gz"))
        b = nib.as_closest_canonical(nib.load(results / "recon" / "sub-0001_spect.nii.gz"))
        np.testing.assert_allclose(a.affine, b.affine, atol=1e-3)
    print(f"\n[user data] dicom_recon: {len(subjects)} reconstructed NM volumes -> recon/*.nii.gz, voxels within "
          f"half a quantisation step, affines within 1e-3 mm of the baseline's")


# ----------------------------------------------------------------------------- repeats over seeds
# Last in this module on purpose: it adds files to the baseline, which the tests above compare against.

def test_more_repeats_train_only_the_new_ones(baseline, workdir):
    """train.repeats 1 -> 2 on a finished run: only the repeat trainings, their evaluations and the
    repeats tables run (plus provenance); the study's models are not retrained."""
    repeats = workdir / "repeats.yaml"
    repeats.write_text("train:\n  repeats: 2\n")
    dry = snakemake(baseline, "-n", configs=[repeats]).stdout
    planned = set(re.findall(r"^(\w+)\s+\d+$", dry.split("Job stats:")[1].split("total")[0], re.M))
    assert planned == {"train_cnn_repeat", "evaluate_cnn_repeat", "collect_repeats", "case_uncertainty",
                       "compute_relevance_repeat", "group_relevance_repeat", "find_clusters_repeat",
                       "cluster_stability", "write_provenance", "verify_inputs", "all"}, planned
    model = baseline / "train" / "full" / "model.pt"
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    snakemake(baseline, configs=[repeats])
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    per = pd.read_csv(baseline / "evaluate" / "table1_repeats.tsv", sep="\t")
    summary = pd.read_csv(baseline / "evaluate" / "table1_repeats_summary.tsv", sep="\t")
    table1 = pd.read_csv(baseline / "evaluate" / "table1.tsv", sep="\t").set_index("setting")
    assert sorted(per["repeat"].unique()) == [0, 1] and len(per) == 6 and list(summary["n_repeats"]) == [2, 2, 2]
    for r in per[per["repeat"] == 0].itertuples():  # repeat 0 is the study's model: Table 1 itself
        assert (r.tp, r.tn, r.fp, r.fn) == tuple(table1.loc[r.setting, ["tp", "tn", "fp", "fn"]])
    unc = pd.read_csv(baseline / "evaluate" / "uncertainty_summary.tsv", sep="\t").set_index("setting")
    cases = pd.read_csv(baseline / "evaluate" / "uncertainty_cases.tsv", sep="\t")
    assert list(unc["n_repeats"]) == [2, 2, 2] and len(cases) == unc["n_cases"].sum()
    for s, row in unc.iterrows():  # repeat 0 is the study's model: its accuracy is Table 1's
        assert row.n_cases == table1.loc[s, "n"] and row.accuracy_repeat0 == pytest.approx(table1.loc[s, "accuracy"])
    assert (cases["p_reduced_range"] >= 0).all() and (cases["n_repeats"] == 2).all()
    for s in ("full", "nostriatum"):  # the relevance clusters of both repeats, their Dice and stability
        d = pd.read_csv(baseline / "group" / s / "stability_dice.tsv", sep="\t")
        assert len(d) == 1 and 0 <= d["dice"].iloc[0] <= 1
        st = pd.read_csv(baseline / "group" / s / "mean_heat_clusters.tsv", sep="\t")
        assert st["stability"].between(0, 1).all()
    seeds = {json.loads((baseline / "train" / "full" / sub / "hyperparameters.json").read_text())["training"]["seed"]
             for sub in ("", "repeat-1")}
    assert len(seeds) == 2, "the repeat trained with the study model's seed"
    print(f"\n[repeats] accuracy over 2 repeats: "
          f"{dict(zip(summary.setting, summary.accuracy_mean.round(3)))} (mean), seeds {sorted(seeds)}")
