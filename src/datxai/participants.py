"""The participants sheet (``participants.tsv``): loading, validation, image check.

Required columns (extra columns such as ``dose_mbq`` are kept):

``subject``  unique pseudonym matching ``sub-[A-Za-z0-9]+``
``age``      years, numeric, present (0 .. 130)
``sex``      ``F`` | ``M`` (``f``, ``m``, ``female``, ``male`` in any case are read as F / M)
``label``    visual read of the DAT-SPECT: ``normal`` | ``reduced`` (in any case)

Blanks around values are dropped. Every rule reads the sheet through
:func:`load_participants`, so every stage sees the same normalised values.

The same contract is written as a JSON schema in
``workflow/schemas/participants.schema.yaml`` (for readers and other tools);
this module is the implementation the workflow runs, because its messages name
the file, the row, the subject, the column and the bad value.
"""

from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SUBJECT_PATTERN = r"sub-[A-Za-z0-9]+"
REQUIRED_COLUMNS = ("subject", "age", "sex", "label")
SEXES = ("F", "M")
LABELS = ("normal", "reduced")
AGE_RANGE = (0.0, 130.0)
# spellings a person would consider the same value
_SEX_SPELLINGS = {"f": "F", "female": "F", "m": "M", "male": "M"}


class ParticipantsError(ValueError):
    """A bad participants sheet; the message names the file, row/subject, column and value."""


def _where(path, row: int, subject) -> str:
    # row numbers as a user sees them in an editor: the header is line 1
    who = f" (subject {subject!r})" if isinstance(subject, str) and subject else ""
    return f"{path}: line {row + 2}{who}"


def load_participants(path):
    """Read and validate a participants TSV.

    Parameters
    ----------
    path : path of a tab-separated file with a header.

    Returns
    -------
    pandas.DataFrame with the rows in file order, ``subject``/``sex``/``label``
    as str and ``age`` as float; extra columns are kept unchanged.

    Raises
    ------
    ParticipantsError
        For a missing file or column, an empty sheet, and per row for: a
        missing or malformed or duplicate subject id, a missing or
        non-numeric or out-of-range age, a sex other than F/M, a label other
        than normal/reduced. All problems are reported together (up to 20).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ParticipantsError(f"{path}: participants file not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several types for malformed files
        raise ParticipantsError(f"{path}: not a readable TSV ({type(exc).__name__}: {exc})") from exc
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ParticipantsError(f"{path}: missing column(s) {missing}; the file has {list(df.columns)}")
    if len(df) == 0:
        raise ParticipantsError(f"{path}: no participants (only a header)")
    for c in REQUIRED_COLUMNS:
        df[c] = df[c].str.strip()
    df["sex"] = [_SEX_SPELLINGS.get(v.lower(), v) for v in df["sex"]]
    df["label"] = [v.lower() if v.lower() in LABELS else v for v in df["label"]]

    problems: list[str] = []
    seen: dict[str, int] = {}
    ages = np.full(len(df), np.nan)
    for i, row in enumerate(df.itertuples(index=False)):
        subj = row.subject
        where = _where(path, i, subj)
        if subj == "":
            problems.append(f"{where}: column 'subject' is empty")
        elif not re.fullmatch(SUBJECT_PATTERN, subj):
            problems.append(f"{where}: column 'subject' value {subj!r} does not match {SUBJECT_PATTERN}")
        elif subj in seen:
            problems.append(f"{where}: column 'subject' value {subj!r} is a duplicate of line {seen[subj] + 2}")
        else:
            seen[subj] = i
        if row.age == "":
            problems.append(f"{where}: column 'age' is missing")
        else:
            try:
                age = float(row.age)
            except ValueError:
                problems.append(f"{where}: column 'age' value {row.age!r} is not a number")
            else:
                if not (np.isfinite(age) and AGE_RANGE[0] <= age <= AGE_RANGE[1]):
                    problems.append(f"{where}: column 'age' value {row.age!r} is outside {AGE_RANGE[0]:g}..{AGE_RANGE[1]:g} years")
                else:
                    ages[i] = age
        if row.sex == "":
            problems.append(f"{where}: column 'sex' is missing")
        elif row.sex not in SEXES:
            problems.append(f"{where}: column 'sex' value {row.sex!r} is not one of {list(SEXES)}")
        if row.label == "":
            problems.append(f"{where}: column 'label' is missing")
        elif row.label not in LABELS:
            problems.append(f"{where}: column 'label' value {row.label!r} is not one of {list(LABELS)}")
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ParticipantsError(f"{path}: invalid participants sheet:\n  " + "\n  ".join(problems[:20]) + more)
    df["age"] = ages
    # extra numeric columns (dose_mbq, ...) back to numbers where they are numbers
    for c in df.columns:
        if c not in REQUIRED_COLUMNS:
            conv = pd.to_numeric(df[c].replace("", np.nan), errors="coerce")
            if conv.notna().sum() == (df[c] != "").sum():
                df[c] = conv
    log.info("%s: %d participants (%d reduced, %d female)", path, len(df),
             int((df["label"] == "reduced").sum()), int((df["sex"] == "F").sum()))
    return df


@dataclass
class ImageCheck:
    """Result of :func:`check_images`: subjects without an image, image files without a subject."""

    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.orphans

    def message(self, pattern: str) -> str:
        lines = []
        if self.missing:
            lines.append(f"{len(self.missing)} subject(s) without an image matching {pattern!r}: "
                         + ", ".join(self.missing[:10]) + (" ..." if len(self.missing) > 10 else ""))
        if self.orphans:
            lines.append(f"{len(self.orphans)} image file(s) without a subject in the participants sheet: "
                         + ", ".join(self.orphans[:10]) + (" ..." if len(self.orphans) > 10 else ""))
        return "\n".join(lines) or "every subject has an image and every image a subject"


def check_images(table, pattern: str) -> ImageCheck:
    """Compare the participants with the image files on disk.

    Parameters
    ----------
    table : DataFrame from :func:`load_participants` (column ``subject``).
    pattern : path pattern with one ``{subject}`` placeholder, e.g.
        ``"/data/dicom/{subject}.dcm"``.

    Returns
    -------
    :class:`ImageCheck` with ``missing`` (subjects whose file does not exist)
    and ``orphans`` (existing files that match the pattern with a subject id
    that is not in the table), both sorted.
    """
    if pattern.count("{subject}") != 1:
        raise ValueError(f"cohort.images: the pattern must contain '{{subject}}' exactly once, got {pattern!r}")
    subjects = list(table["subject"])
    missing = sorted(s for s in subjects if not Path(pattern.format(subject=s)).is_file())
    head, tail = pattern.split("{subject}")
    rx = re.compile(re.escape(head) + f"({SUBJECT_PATTERN})" + re.escape(tail) + r"\Z")
    known = set(subjects)
    orphans = []
    for f in glob.glob(glob.escape(head) + "*" + glob.escape(tail)):
        m = rx.match(f)
        if m and m.group(1) not in known:
            orphans.append(f)
    return ImageCheck(missing=missing, orphans=sorted(orphans))


def require_images(table, pattern: str, source="participants.tsv") -> None:
    """Raise :class:`ParticipantsError` unless every subject has an image and every image a subject.

    ``source`` names the participants sheet in the message; the message lists the
    subjects without an image and the image files without a subject (see :func:`check_images`).
    """
    check = check_images(table, pattern)
    if not check.ok:
        raise ParticipantsError(f"{source}: the participants and the images (cohort.images) do not match:\n  "
                                + check.message(pattern).replace("\n", "\n  "))
