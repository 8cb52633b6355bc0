"""The per-subject affine fit against SPM12's own: spm_normalise's affine stage under GNU Octave.

An independent reference for ``datxai.register.affine`` (issue 18, item 5: "keep SPM12-equivalence of
the per-subject fit"). On a finished synthetic run, for ``--n`` subjects: the native reconstruction and
the run's template (``results/template/fpcit_template.nii.gz``) are written as plain NIfTI, and Octave
runs what SPM12's ``spm_normalise`` (toolbox/OldNorm) does before its nonlinear part:

    VF1 = spm_smoothto8bit(VF, fwhm); VF1.pinfo(1:2,:) /= spm_global(VF1)
    VG1 = spm_smoothto8bit(VG, fwhm); VG1.pinfo(1:2,:) /= spm_global(VG)
    [M, scal] = spm_affreg(VG1, VF1, struct('sep', s, 'regtype', R, 'globnorm', 0), eye(4))   % coarse
    [M, scal] = spm_affreg(VG1, VF1, ... 'sep', s / 2 ...,  M, scal)                        % fine

with s = max(fwhm, the voxel sizes), as spm_normalise sets it, and both images smoothed by the run's
``normalize.smooth_fwhm_mm`` as the workflow smooths both (SPM's templates come pre-smoothed, hence its
default smoref = 0). SPM's ``M`` maps source mm to template mm, so its template -> native map is inv(M),
the convention of ``<subject>_affine.json``.

Printed per regularisation type: the mean displacement over the atlas brain voxels between SPM's map
and the workflow's (``normalized/<subject>_affine.json``), and each one's against the simulated true pose
(median, max over subjects).

Needs GNU Octave (``apt-get install octave octave-dev``) and SPM12 with its MEX files built for Octave
(``make -C spm12/src PLATFORM=octave && make -C spm12/src PLATFORM=octave install``).

``--fixture DIR`` also writes the test fixture of ``tests/test_register_spm12.py`` (which runs without
Octave): the template (float32) and the ``--n`` sources (int16 with a scale factor, ~250 kB each), the
brain mask of the grid, the true poses, and SPM12's template -> native maps fitted on exactly those files.

    python bench/bench_spm12.py --results /tmp/demo/results --spm /tmp/spm12 [--n 10] [--regtype none subj mni]
                                [--fixture tests/data/spm12_affreg]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from datxai.atlas import load_bundle
from datxai.geometry import mean_displacement_mm
from datxai.grid import Grid
from datxai.register.qc import pose_from_truth

OCTAVE_SCRIPT = r"""
addpath('{spm}'); addpath(fullfile('{spm}', 'toolbox', 'OldNorm'));
spm_get_defaults('cmdline', true);
fwhm = {fwhm};
regtypes = {{{regtypes}}};
subjects = strsplit('{subjects}', ',');
VG = spm_vol('{template}');
VG1 = spm_smoothto8bit(VG, fwhm);
VG1.pinfo(1:2, :) = VG1.pinfo(1:2, :) / spm_global(VG);
for i = 1:numel(subjects)
  VF = spm_vol(fullfile('{work}', [subjects{{i}} '.nii']));
  VF1 = spm_smoothto8bit(VF, fwhm);
  VF1.pinfo(1:2, :) = VF1.pinfo(1:2, :) / spm_global(VF1);
  for r = 1:numel(regtypes)
    t0 = tic;
    sep = max([fwhm, sqrt(sum(VG.mat(1:3, 1:3).^2)), sqrt(sum(VF.mat(1:3, 1:3).^2))]);
    aflags = struct('sep', sep, 'regtype', regtypes{{r}}, 'WG', [], 'WF', [], 'globnorm', 0);
    [M, scal] = spm_affreg(VG1, VF1, aflags, eye(4));
    aflags.sep = aflags.sep / 2;
    [M, scal] = spm_affreg(VG1, VF1, aflags, M, scal);
    dt = toc(t0);
    fid = fopen(fullfile('{work}', [subjects{{i}} '_' regtypes{{r}} '.txt']), 'w');
    fprintf(fid, '%.10g ', M'); fprintf(fid, '\n%.6f\n', dt); fclose(fid);
  end
  fprintf('%s done\n', subjects{{i}});
end
"""


def plain_nifti(src: Path, dst: Path, dtype=np.float32) -> None:
    """``src`` as a NIfTI-1 of ``dtype`` (int16: scaled by nibabel to the data's range), q/sform code 1."""
    img = nib.load(src)
    out = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    out.set_data_dtype(dtype)
    out.set_qform(img.affine, code=1)
    out.set_sform(img.affine, code=1)
    nib.save(out, dst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="a finished synthetic run's results folder")
    ap.add_argument("--spm", type=Path, required=True, help="SPM12 folder with its Octave MEX files")
    ap.add_argument("--n", type=int, default=10, help="subjects (the first n of the cohort, sorted)")
    ap.add_argument("--regtype", nargs="+", default=["none", "subj", "mni"], choices=["none", "subj", "mni", "rigid"])
    ap.add_argument("--octave", default="octave")
    ap.add_argument("--keep", type=Path, help="keep the Octave work folder here")
    ap.add_argument("--fixture", type=Path, help="write the test fixture (inputs + SPM12's fits) to this folder")
    a = ap.parse_args(argv)
    if shutil.which(a.octave) is None:
        sys.exit(f"{a.octave}: not found (apt-get install octave octave-dev)")
    res = a.results
    prov = res / "provenance.json"
    if not prov.exists():
        sys.exit(f"{prov}: missing (not a finished run?)")
    cfg = json.loads(prov.read_text())["config"]
    fwhm = float(cfg["normalize"]["smooth_fwhm_mm"])
    grid = Grid.from_config(cfg["grid"])
    subjects = sorted(p.name.split("_")[0] for p in (res / "normalized").glob("*_affine.json"))[: a.n]
    if not subjects:
        sys.exit(f"{res / 'normalized'}: no *_affine.json (not a finished run?)")
    bundle = load_bundle(res / "atlas" / "atlas_grid.npz", grid=grid)
    points = grid.coords_mm()[:, bundle.brain_mask].T

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="spm12_"))
    work.mkdir(parents=True, exist_ok=True)
    template, sources = res / "template" / "fpcit_template.nii.gz", {s: res / "recon" / f"{s}_spect.nii.gz" for s in subjects}
    if a.fixture:  # SPM12 fits exactly the files the test reads
        a.fixture.mkdir(parents=True, exist_ok=True)
        plain_nifti(template, a.fixture / "template.nii.gz")
        template = a.fixture / "template.nii.gz"
        for s in subjects:
            plain_nifti(sources[s], a.fixture / f"{s}.nii.gz", dtype=np.int16)
            sources[s] = a.fixture / f"{s}.nii.gz"
    plain_nifti(template, work / "template.nii")
    for s in subjects:
        plain_nifti(sources[s], work / f"{s}.nii")
    script = OCTAVE_SCRIPT.format(spm=a.spm.resolve(), fwhm=fwhm, regtypes=",".join(f"'{r}'" for r in a.regtype),
                                  subjects=",".join(subjects), template=work / "template.nii", work=work)
    (work / "run_affreg.m").write_text(script)
    t0 = time.perf_counter()
    proc = subprocess.run([a.octave, "--no-gui", "--quiet", "--eval", f"run('{work / 'run_affreg.m'}')"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"octave failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"octave: {time.perf_counter() - t0:.1f} s for {len(subjects)} subjects x {len(a.regtype)} regtypes")

    ours, truth = {}, {}
    for s in subjects:
        rec = json.loads((res / "normalized" / f"{s}_affine.json").read_text())
        ours[s] = np.asarray(rec.get("estimated_matrix") or rec["matrix"], dtype=float)
        truth[s] = pose_from_truth(json.loads((res / "cohort" / "truth" / f"{s}_truth.json").read_text()))
    d_ours = np.array([mean_displacement_mm(ours[s], truth[s], points) for s in subjects])
    print(f"subjects: {', '.join(subjects)}; fwhm {fwhm} mm; {len(points)} brain voxels of {grid.voxel_mm} mm")
    print(f"datxai vs truth: median {np.median(d_ours):.3f} mm, max {d_ours.max():.3f} mm")
    for r in a.regtype:
        d_spm, d_truth, secs = [], [], []
        for s in subjects:
            lines = (work / f"{s}_{r}.txt").read_text().split("\n")
            m = np.array(lines[0].split(), dtype=float).reshape(4, 4)
            spm_map = np.linalg.inv(m)  # template mm -> native mm
            d_spm.append(mean_displacement_mm(spm_map, ours[s], points))
            d_truth.append(mean_displacement_mm(spm_map, truth[s], points))
            secs.append(float(lines[1]))
        d_spm, d_truth = np.array(d_spm), np.array(d_truth)
        print(f"regtype {r:5s}: SPM12 vs datxai median {np.median(d_spm):.3f} mm, max {d_spm.max():.3f} mm; "
              f"SPM12 vs truth median {np.median(d_truth):.3f} mm, max {d_truth.max():.3f} mm; "
              f"{np.median(secs):.2f} s per fit (Octave)")
        for s, x, y in zip(subjects, d_spm, d_truth):
            print(f"    {s}: vs datxai {x:.3f} mm, vs truth {y:.3f} mm (datxai vs truth {d_ours[subjects.index(s)]:.3f})")
    if a.fixture:
        spm_maps = {r: {s: np.linalg.inv(np.array((work / f"{s}_{r}.txt").read_text().split("\n")[0].split(),
                                                   dtype=float).reshape(4, 4)).tolist() for s in subjects}
                    for r in a.regtype}
        version = subprocess.run([a.octave, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        record = {
            "made_by": "bench/bench_spm12.py --fixture (SPM12's spm_normalise affine stage under GNU Octave)",
            "octave": version,
            "spm12": "github.com/spm/spm12 03ac947, toolbox/OldNorm/spm_affreg.m; MEX built with PLATFORM=octave",
            "fwhm_mm": fwhm,
            "normalize": {k: cfg["normalize"][k] for k in ("smooth_fwhm_mm", "sampling_mm", "regularization",
                                                           "max_iterations")},
            "convention": "template mm -> native mm (native_mm = M @ template_mm), as <subject>_affine.json",
            "spm12_template_to_native": spm_maps,
            "datxai_template_to_native": {s: ours[s].tolist() for s in subjects},
            "true_pose": {s: truth[s].tolist() for s in subjects},
        }
        (a.fixture / "spm12_affreg.json").write_text(json.dumps(record, indent=1) + "\n")
        np.savez_compressed(a.fixture / "brain_mask.npz", mask=np.packbits(bundle.brain_mask.ravel()),
                            shape=np.array(bundle.brain_mask.shape), affine=grid.affine)
        print(f"fixture written to {a.fixture}")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
