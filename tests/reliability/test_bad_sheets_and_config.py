"""Bad participants sheets, configs and splits: refused by file/subject/key and problem, nothing written.

The participants sheet is checked where the workflow reads it
(:func:`datxai.participants.load_participants`, and :func:`require_images`
against ``cohort.images``); the config where the workflow validates it
(:func:`datxai.config.validate_config`); the split where it is made
(:func:`datxai.split.run`, which writes split.tsv and balance.tsv).
"""

import copy

import pytest
import yaml
from reliability_helpers import assert_clear_error, assert_nothing_written, assert_untouched, tree_state

from datxai.config import ConfigError, validate_config
from datxai.participants import ParticipantsError, load_participants, require_images
from datxai.split import SplitError
from datxai.split import run as run_split

HEADER = "subject\tage\tsex\tlabel\tdose_mbq"


def _sheet(folder, n_normal=6, n_reduced=6, edit=None):
    """A valid sheet (alternating sex), with ``edit(rows)`` applied to its rows (lists of str)."""
    rows = [[f"sub-{i:04d}", str(50 + i), "FM"[i % 2], "normal" if i <= n_normal else "reduced", "170"]
            for i in range(1, n_normal + n_reduced + 1)]
    if edit:
        edit(rows)
    path = folder / "participants.tsv"
    path.write_text("\n".join([HEADER] + ["\t".join(r) for r in rows]) + "\n")
    return path


def _images(folder, subjects):
    d = folder / "images"
    d.mkdir(exist_ok=True)
    for s in subjects:
        (d / f"{s}.dcm").write_bytes(b"DICM" + s.encode())  # only existence is checked here
    return str(d / "{subject}.dcm")


def _set(rows, i, col, value):
    rows[i][col] = value


SHEET_CASES = [
    # (kind, edit of the rows, names in the message, problem)
    ("duplicate subject id", lambda r: _set(r, 3, 0, "sub-0002"), ["line 5", "sub-0002"],
     r"column 'subject' value 'sub-0002' is a duplicate of line 3"),
    ("unknown label", lambda r: _set(r, 2, 3, "abnormal"), ["line 4", "sub-0003"],
     r"column 'label' value 'abnormal' is not one of \['normal', 'reduced'\]"),
    ("missing age", lambda r: _set(r, 4, 1, ""), ["line 6", "sub-0005"], r"column 'age' is missing"),
    ("missing sex", lambda r: _set(r, 5, 2, ""), ["line 7", "sub-0006"], r"column 'sex' is missing"),
    ("non-numeric age", lambda r: _set(r, 0, 1, "seventy"), ["line 2", "sub-0001"],
     r"column 'age' value 'seventy' is not a number"),
    ("age with a unit", lambda r: _set(r, 1, 1, "71y"), ["line 3", "sub-0002"], r"'71y' is not a number"),
    ("id that is not a pseudonym (a patient name)", lambda r: _set(r, 1, 0, "Doe^Jane"), ["line 3"],
     r"does not match sub-\[A-Za-z0-9\]\+"),
]


@pytest.mark.parametrize("kind, edit, names, problem", SHEET_CASES, ids=[c[0] for c in SHEET_CASES])
def test_bad_participants_sheet(tmp_path, kind, edit, names, problem, capsys):
    path = _sheet(tmp_path, edit=edit)
    before = tree_state(tmp_path)
    with pytest.raises(ParticipantsError) as err:
        load_participants(path)
    msg = assert_clear_error(err, [path, *names], problem)
    assert_untouched(before, tmp_path)
    with capsys.disabled():
        print(f"\n[bad input] participants.tsv {kind}: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")


@pytest.mark.parametrize("kind", ["id without images", "images without an id"])
def test_participants_and_images_must_match(tmp_path, kind, capsys):
    path = _sheet(tmp_path)
    table = load_participants(path)
    subjects = list(table["subject"])
    if kind == "id without images":
        pattern = _images(tmp_path, [s for s in subjects if s != "sub-0004"])
        names, problem = ["sub-0004"], r"1 subject\(s\) without an image matching"
    else:
        pattern = _images(tmp_path, subjects + ["sub-0099"])
        names, problem = [str(tmp_path / "images" / "sub-0099.dcm")], \
            r"1 image file\(s\) without a subject in the participants sheet"
    before = tree_state(tmp_path)
    with pytest.raises(ParticipantsError) as err:
        require_images(table, pattern, source=str(path))
    msg = assert_clear_error(err, [path, *names], problem)
    assert_untouched(before, tmp_path)
    with capsys.disabled():
        print(f"\n[bad input] participants.tsv {kind}: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")


def test_matching_sheet_and_images_pass(tmp_path):
    path = _sheet(tmp_path)
    table = load_participants(path)
    require_images(table, _images(tmp_path, table["subject"]), source=str(path))  # no error


# ----------------------------------------------------------------------------- config

@pytest.fixture(scope="module")
def config(repo_root):
    with open(repo_root / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def _put(cfg, dotted, value):
    *head, last = dotted.split(".")
    d = cfg
    for k in head:
        d = d.setdefault(k, {})
    d[last] = value


CONFIG_CASES = [
    # (kind, key, value, names in the message, problem)
    ("unknown top-level key", "sed", 1, ["(top level)", "'sed'"], r"Additional properties are not allowed"),
    ("unknown nested key (typo)", "train.epoch", 3, ["train", "'epoch'"], r"Additional properties are not allowed"),
    ("wrong type", "train.batch_size", "eight", ["train.batch_size", "'eight'"], r"is not of type 'integer'"),
    ("wrong type (list for number)", "grid.voxel_mm", [4.0], ["grid.voxel_mm"], r"is not of type 'number'"),
    ("percentile above 100", "group.percentile", 150, ["group.percentile", "150"],
     r"greater than or equal to the maximum of 100"),
    ("percentile below 0", "scale.reference_percentile", -5, ["scale.reference_percentile", "-5"],
     r"less than or equal to the minimum of 0"),
    ("striatum box outside the grid", "settings.striatum_box_mm", [[-36, 36], [-30, 36], [-24, 300]],
     ["settings.striatum_box_mm[2]", "300"], r"lies outside the grid"),
    ("striatum box with min >= max", "settings.striatum_box_mm", [[36, -36], [-30, 36], [-24, 36]],
     ["settings.striatum_box_mm[0]"], r"min 36 must be < max -36"),
    ("split counts larger than the cohort", "split.sizes", {"train": 200, "val": 60, "test": 80},
     ["split.sizes", "340"], r"subjects requested but simulate.n_subjects is 300"),
    ("split fractions not summing to 1", "split.sizes", {"train": 0.6, "val": 0.3, "test": 0.3},
     ["split.sizes"], r"fractions must sum to 1, got 1.2"),
    ("user cohort without a participants sheet", "cohort.source", "dicom", ["cohort.participants"],
     r"required when cohort.source is 'dicom'"),
]


@pytest.mark.parametrize("kind, key, value, names, problem", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config(config, kind, key, value, names, problem, capsys):
    cfg = copy.deepcopy(config)
    _put(cfg, key, value)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, source="my.yaml")
    msg = assert_clear_error(err, ["my.yaml", *names], problem)
    with capsys.disabled():
        print(f"\n[bad input] config {kind}: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")


def test_the_unedited_config_validates(config):
    validate_config(copy.deepcopy(config))


# ----------------------------------------------------------------------------- split

SPLIT_CASES = [
    # (kind, n_normal, n_reduced, sizes, names, problem)
    ("a class empty in a subset", 10, 2, {"train": 0.5, "val": 0.25, "test": 0.25}, ["'val'", "'reduced'"],
     r"would get no 'reduced' subject"),
    ("too few subjects for the counts", 6, 6, {"train": 10, "val": 4, "test": 4}, ["18 subjects requested"],
     r"the cohort has only 12"),
    ("a subset that rounds to nobody", 3, 2, {"train": 0.8, "val": 0.1, "test": 0.1}, ["split.sizes", "['test']", "cohort of 5"],
     r"get no subject"),
]


@pytest.mark.parametrize("kind, n_normal, n_reduced, sizes, names, problem", SPLIT_CASES,
                         ids=[c[0] for c in SPLIT_CASES])
def test_impossible_split(tmp_path, kind, n_normal, n_reduced, sizes, names, problem, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    path = _sheet(inputs, n_normal, n_reduced)
    before = tree_state(inputs)
    with pytest.raises(SplitError) as err:
        run_split(path, out / "split.tsv", out / "balance.tsv", sizes, n_draws=5, seed=1)
    msg = assert_clear_error(err, names, problem)
    assert_nothing_written(out)
    assert_untouched(before, inputs)
    with capsys.disabled():
        print(f"\n[bad input] split {kind}: {type(err.value).__name__}: {' | '.join(msg.splitlines())}")
