"""Batch membership of the per-subject stages (datxai.batches): stable as a cohort grows."""

import pytest

from datxai.batches import batch_of, n_batches, subject_batches


def ids(n, start=1):
    return [f"sub-{i:04d}" for i in range(start, start + n)]


def test_every_subject_once_in_a_stable_batch():
    subjects = ids(300)
    batches = subject_batches(subjects, 30)
    assert sorted(s for b in batches.values() for s in b) == subjects
    assert set(batches) <= set(range(8)) and n_batches(300, 30) == 8  # 10 -> the nearest power of two
    for k, members in batches.items():
        assert all(batch_of(s, 8) == k for s in members)
        assert members == sorted(members)  # the given (sorted) order within a batch


def test_adding_a_subject_changes_one_batch_only():
    before = subject_batches(ids(300), 30)
    for new in ("sub-0150a", "sub-0000", "sub-9999", "pd-017"):  # anywhere in the sorted order
        after = subject_batches(sorted(ids(300) + [new]), 30)
        changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
        assert changed == [batch_of(new, 8)]
        assert after[changed[0]] == sorted(before.get(changed[0], []) + [new])


def test_removing_a_subject_changes_one_batch_only():
    before = subject_batches(ids(300), 30)
    after = subject_batches([s for s in ids(300) if s != "sub-0123"], 30)
    assert [k for k in before if before[k] != after.get(k)] == [batch_of("sub-0123", 8)]


@pytest.mark.parametrize("n, per_job, expected", [(1, 10, 1), (10, 10, 1), (14, 10, 1), (15, 10, 2), (30, 8, 4),
                                                   (300, 30, 8), (1306, 25, 64), (16, 4, 4)])
def test_batch_count_is_the_nearest_power_of_two(n, per_job, expected):
    assert n_batches(n, per_job) == expected


def test_redraws_only_at_a_factor_of_about_1_4():
    # the count changes where n / per_job crosses 2 ** (k + 1/2): 14 -> 15, 28 -> 29, 56 -> 57 ... for per_job 10
    changes = [n for n in range(2, 400) if n_batches(n, 10) != n_batches(n - 1, 10)]
    assert changes == [15, 29, 57, 114, 227]


def test_batch_sizes_stay_near_the_target():
    for n, per_job in ((300, 30), (1306, 25), (30, 8)):
        sizes = [len(b) for b in subject_batches(ids(n), per_job).values()]
        mean = n / n_batches(n, per_job)
        assert sum(sizes) == n and max(sizes) <= 2 * mean + 3, sizes


def test_bad_input():
    with pytest.raises(ValueError, match="unique"):
        subject_batches(["sub-1", "sub-1"], 4)
    with pytest.raises(ValueError, match="subjects_per_job"):
        n_batches(10, 0)
