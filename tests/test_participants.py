"""participants.tsv: validation messages name file, line/subject, column and value; image check."""

import pytest
import yaml

from datxai.participants import LABELS, SEXES, ParticipantsError, check_images, load_participants

HEADER = "subject\tage\tsex\tlabel\tdose_mbq\n"
GOOD = ["sub-0001\t61\tF\tnormal\t180", "sub-0002\t70.5\tM\treduced\t175", "sub-A3\t55\tM\tnormal\t"]


def write(tmp_path, rows, header=HEADER, name="participants.tsv"):
    p = tmp_path / name
    p.write_text(header + "\n".join(rows) + "\n")
    return p


def test_valid_sheet_loads_in_order_with_types(tmp_path):
    df = load_participants(write(tmp_path, GOOD))
    assert list(df["subject"]) == ["sub-0001", "sub-0002", "sub-A3"]
    assert df["age"].tolist() == [61.0, 70.5, 55.0]
    assert df["dose_mbq"].iloc[0] == 180 and df["dose_mbq"].isna().iloc[2]  # extra column kept, numeric


@pytest.mark.parametrize(
    "bad_row, column, value",
    [
        ("sub-0001\t64\tM\tnormal\t170", "subject", "sub-0001"),  # duplicate id
        ("sub-0009\t64\tM\tabnormal\t170", "label", "abnormal"),
        ("sub-0009\t\tM\tnormal\t170", "age", None),  # missing age
        ("sub-0009\tsixty\tM\tnormal\t170", "age", "sixty"),
        ("sub-0009\t64\t\tnormal\t170", "sex", None),  # missing sex
        ("sub-0009\t64\tX\tnormal\t170", "sex", "X"),
        ("subject_9\t64\tM\tnormal\t170", "subject", "subject_9"),
        ("sub-0009\t-3\tM\tnormal\t170", "age", "-3"),
    ],
)
def test_errors_name_file_line_column_and_value(tmp_path, bad_row, column, value):
    p = write(tmp_path, GOOD + [bad_row])
    with pytest.raises(ParticipantsError) as exc:
        load_participants(p)
    msg = str(exc.value)
    assert str(p) in msg
    assert "line 5" in msg  # header = line 1, the bad row is the 4th data row
    assert f"column '{column}'" in msg
    if value is not None:
        assert repr(value) in msg
    else:
        assert "missing" in msg
    if column == "subject" and value == "sub-0001":
        assert "duplicate" in msg and "line 2" in msg


def test_all_problems_reported_together(tmp_path):
    p = write(tmp_path, GOOD + ["sub-0010\tx\tQ\tfoo\t1"])
    msg = str(pytest.raises(ParticipantsError, load_participants, p).value)
    assert "'x'" in msg and "'Q'" in msg and "'foo'" in msg and "sub-0010" in msg


def test_missing_column_and_file(tmp_path):
    p = write(tmp_path, ["sub-0001\t60\tF"], header="subject\tage\tsex\n")
    msg = str(pytest.raises(ParticipantsError, load_participants, p).value)
    assert str(p) in msg and "label" in msg
    with pytest.raises(ParticipantsError, match="not found"):
        load_participants(tmp_path / "nope.tsv")
    with pytest.raises(ParticipantsError, match="no participants"):
        load_participants(write(tmp_path, [], name="empty.tsv"))


def test_schema_file_agrees_with_the_implementation(repo_root):
    schema = yaml.safe_load((repo_root / "workflow/schemas/participants.schema.yaml").read_text())
    assert set(schema["required"]) == {"subject", "age", "sex", "label"}
    assert tuple(schema["properties"]["sex"]["enum"]) == SEXES
    assert tuple(schema["properties"]["label"]["enum"]) == LABELS


def test_check_images_lists_missing_and_orphans(tmp_path):
    df = load_participants(write(tmp_path, GOOD))
    img = tmp_path / "img"
    img.mkdir()
    for s in ("sub-0001", "sub-A3", "sub-0099"):
        (img / f"{s}.dcm").write_bytes(b"x")
    (img / "notes.dcm").write_bytes(b"x")  # does not match a subject id: ignored
    res = check_images(df, str(img / "{subject}.dcm"))
    assert res.missing == ["sub-0002"]
    assert res.orphans == [str(img / "sub-0099.dcm")]
    assert not res.ok and "sub-0002" in res.message("p") and "sub-0099" in res.message("p")
    (img / "sub-0002.dcm").write_bytes(b"x")
    (img / "sub-0099.dcm").unlink()
    assert check_images(df, str(img / "{subject}.dcm")).ok
    with pytest.raises(ValueError, match="subject"):
        check_images(df, str(img / "x.dcm"))


def test_spellings_a_person_considers_the_same_are_normalised(tmp_path):
    """Blanks around values, 'Normal' / 'REDUCED', 'f' / 'Female' / 'male': read as the contract's values."""
    rows = ["sub-0001 \t61\tFemale \tNormal", " sub-0002\t70.5\tm\tREDUCED ", "sub-0003\t55\tf\treduced"]
    df = load_participants(write(tmp_path, rows, header="subject\tage\tsex\tlabel\n"))
    assert list(df["subject"]) == ["sub-0001", "sub-0002", "sub-0003"]
    assert list(df["sex"]) == ["F", "M", "F"] and list(df["label"]) == ["normal", "reduced", "reduced"]


def test_every_stage_reads_the_normalised_sheet(tmp_path):
    """The statistics stage merges uptake with the sheet through load_participants: a sheet with trailing
    blanks and capitals (which passes the start-up check) gives the same table as a clean one."""
    import pandas as pd

    from datxai.stats.analysis import load_merged

    clean = ["sub-0001\t61\tF\tnormal", "sub-0002\t70\tM\treduced", "sub-0003\t55\tF\treduced"]
    messy = ["sub-0001 \t61\tf\tNormal ", "sub-0002\t70\tMale\treduced ", "sub-0003 \t55\tF\tReduced"]
    header = "subject\tage\tsex\tlabel\n"
    (tmp_path / "u.tsv").write_text("subject\tcluster\tcluster_label\tside\tuptake\n" + "".join(
        f"sub-000{i}\t1\tInsular_Cortex\tI\t{0.5 + i / 10}\n" for i in (1, 2, 3)))
    (tmp_path / "s.tsv").write_text("subject\tsubset\nsub-0001\ttrain\nsub-0002\ttrain\nsub-0003\ttest\n")
    a = load_merged(tmp_path / "u.tsv", write(tmp_path, clean, header, "clean.tsv"), tmp_path / "s.tsv")
    b = load_merged(tmp_path / "u.tsv", write(tmp_path, messy, header, "messy.tsv"), tmp_path / "s.tsv")
    pd.testing.assert_frame_equal(a, b)
    assert list(b["label"]) == ["normal", "reduced", "reduced"]
