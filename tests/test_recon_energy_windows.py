"""Energy-window choice of the NM reader (reconstruct.energy_window) on files built here and on real GE files."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_recon_dicom import coded_frames, make_nm, save  # noqa: E402

from datxai.io import InputError  # noqa: E402
from datxai.recon import read_projections  # noqa: E402
from datxai.recon.dicom import _nuclide_from_text  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_nm"
GE_BED1 = REAL / "GE_D670Pro_Lu177_6win_bed1_CC.dcm"


def two_windows(scatter_first=True, nuclide="code", names=("I123_SC", "I123_EM")):
    """Two energy windows x 1 head x 12 views; the photopeak frames hold 1000 + view, the scatter frames 10 + view.

    Windows in the order a camera may store them: scatter (122-142 keV) first by default.
    ``nuclide``: 'code' (RadionuclideCodeSequence ^123^Iodine), 'halflife', 'text' or None.
    """
    views = 12
    peak = coded_frames(1, views)[0] - 100 + 1000
    scat = coded_frames(1, views)[0] - 100 + 10
    ds = make_nm(np.stack([scat, peak] if scatter_first else [peak, scat])[:, None].reshape(2, views, 5, 7),
                 [0.0, 0.0], 30.0, "CC")
    # make_nm wrote 2 "heads"; turn them into 2 windows of one head
    n = 2 * views
    ds.NumberOfDetectors, ds.DetectorVector = 1, [1] * n
    ds.DetectorInformationSequence = Sequence([ds.DetectorInformationSequence[0]])
    ds.NumberOfEnergyWindows = 2
    ds.EnergyWindowVector = [1] * views + [2] * views
    ds.AngularViewVector = list(range(1, views + 1)) * 2
    ranges = {"scatter": ("122.0", "142.0"), "peak": ("143.1", "174.9")}
    order = ["scatter", "peak"] if scatter_first else ["peak", "scatter"]
    items = []
    for k, which in enumerate(order):
        w, r = Dataset(), Dataset()
        r.EnergyWindowLowerLimit, r.EnergyWindowUpperLimit = ranges[which]
        w.EnergyWindowRangeSequence = Sequence([r])
        w.EnergyWindowName = names[0] if which == "scatter" else names[1]
        items.append(w)
    ds.EnergyWindowInformationSequence = Sequence(items)
    rp = Dataset()
    if nuclide == "code":
        c = Dataset()
        c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = "C-114A4", "SRT", "^123^Iodine"
        rp.RadionuclideCodeSequence = Sequence([c])
    elif nuclide == "halflife":
        rp.RadionuclideHalfLife = "47592"
    elif nuclide == "text":
        rp.Radiopharmaceutical = "Ioflupane"
    if nuclide:
        ds.RadiopharmaceuticalInformationSequence = Sequence([rp])
    return ds


@pytest.mark.parametrize("nuclide", ["code", "halflife", "text"])
@pytest.mark.parametrize("scatter_first", [True, False])
def test_auto_takes_the_photopeak_window(tmp_path, nuclide, scatter_first):
    p = read_projections(save(two_windows(scatter_first, nuclide), tmp_path / "w.dcm"))
    assert p.frames.min() >= 1000, "the scatter window was reconstructed"
    w = p.energy_window
    assert w["index"] == (2 if scatter_first else 1) and w["name"] == "I123_EM"
    assert w["range_kev"] == [[143.1, 174.9]] and w["radionuclide"] == "I-123"
    assert w["selected_by"].startswith("auto: I-123 159 keV")
    assert p.summary()["energy_window"] == w


def test_index_and_name_choose_a_window(tmp_path):
    f = save(two_windows(True), tmp_path / "w.dcm")
    assert read_projections(f, energy_window=1).frames.max() < 1000
    assert read_projections(f, energy_window="2").frames.min() >= 1000
    by_name = read_projections(f, energy_window="i123_sc")
    assert by_name.frames.max() < 1000 and by_name.energy_window["selected_by"] == "name"


@pytest.mark.parametrize("choice, nuclide, match", [
    ("auto", None, r"2 energy windows \(1 \(I123_SC: 122-142 keV\); 2 \(I123_EM: 143.1-174.9 keV\)\) and no "
                   r"radionuclide in the header"),
    (3, "code", r"energy window 3 requested; the file has 2: 1 \(I123_SC"),
    ("EM", "code", r"reconstruct.energy_window 'EM' names 0 of the file's windows"),
])
def test_refusals_name_the_file_and_the_windows(tmp_path, choice, nuclide, match):
    f = save(two_windows(True, nuclide), tmp_path / "w.dcm")
    with pytest.raises(InputError, match=match) as err:
        read_projections(f, energy_window=choice)
    assert str(f) in str(err.value)


def test_a_name_two_windows_share_is_refused(tmp_path):
    f = save(two_windows(True, "code", names=("EM", "EM")), tmp_path / "w.dcm")
    with pytest.raises(InputError, match="'EM' names 2 of the file's windows"):
        read_projections(f, energy_window="EM")


def test_no_window_holds_the_photopeak(tmp_path):
    ds = two_windows(True, "code")
    ds.EnergyWindowInformationSequence[1].EnergyWindowRangeSequence[0].EnergyWindowUpperLimit = "155.0"
    with pytest.raises(InputError, match="0 of the energy windows hold the 159 keV photopeak of I-123"):
        read_projections(save(ds, tmp_path / "w.dcm"))


@pytest.mark.parametrize("text, nuclide", [("^123^Iodine", "I-123"), ("99m Technetium", "Tc-99m"),
                                           ("123I-FP-CIT (ioflupane)", "I-123"), ("DaTSCAN", "I-123"),
                                           ("Lutetium-177", "Lu-177"), ("177Lu-PSMA-617", "Lu-177"),
                                           ("In-111", "In-111"), ("I-131", "I-131"), ("Fluorine-18", None)])
def test_radionuclide_names(text, nuclide):
    assert _nuclide_from_text(text) == nuclide


@pytest.mark.skipif(not GE_BED1.is_file(), reason="../shared/real_nm is not beside this checkout")
def test_real_ge_file_with_six_windows(tmp_path):
    """GE Discovery 670 Pro, Lu-177, windows 101.7-124.3 and 187.2-228.8 keV (both 'Lu177_EM') and 4 scatter
    windows; its header names no radionuclide (empty RadionuclideCodeSequence, no half-life)."""
    with pytest.raises(InputError, match=r"6 energy windows \(1 \(Lu177_EM: 101.7-124.3 keV\); 2 \(Lu177_EM: "
                                         r"187.2-228.8 keV\); 3 \(sc4_SC.*and no radionuclide"):
        read_projections(GE_BED1)
    with pytest.raises(InputError, match="'Lu177_EM' names 2 of the file's windows"):
        read_projections(GE_BED1, energy_window="Lu177_EM")
    p = read_projections(GE_BED1, energy_window=2)
    assert p.energy_window["range_kev"] == [[187.2, 228.8]] and p.n_frames == 60
    # the same file with the half-life of Lu-177 in its header: auto finds the 208 keV window
    ds = pydicom.dcmread(GE_BED1)
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = "574300"
    auto = read_projections(save(ds, tmp_path / "ge.dcm"))
    assert auto.energy_window["index"] == 2 and auto.energy_window["radionuclide"] == "Lu-177"
    np.testing.assert_array_equal(auto.frames, p.frames)
    # the windows hold different counts: the choice matters
    assert abs(read_projections(GE_BED1, energy_window=3).frames.sum() / p.frames.sum() - 1) > 0.1
