"""Paired significance of two evals: the exact sign test and the paired bootstrap, against hand-computed values."""

import math
import random

import pytest

from r1lab.errors import UserError
from r1lab.significance import (
    compare_records,
    format_significance,
    pair_records,
    paired_bootstrap,
    percentile,
    sign_test,
)


def test_sign_test_known_values():
    # 10 became right, 3 became wrong: 2 * (C(13,0) + C(13,1) + C(13,2) + C(13,3)) / 2^13 = 2 * 378 / 8192
    assert sign_test(10, 3) == pytest.approx(756 / 8192)
    assert sign_test(10, 3) == pytest.approx(0.0923, abs=5e-5)
    assert sign_test(3, 10) == sign_test(10, 3)  # two-sided: symmetric
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0  # balanced: the doubled tail is capped at 1
    assert sign_test(1, 0) == 1.0  # one discordant pair can never be significant
    assert sign_test(5, 0) == pytest.approx(2 / 32)  # 0.0625: five out of five is not yet < 0.05
    assert sign_test(6, 0) == pytest.approx(2 / 64)
    # 20 vs 5: 2 * sum_{i<=5} C(25, i) / 2^25
    assert sign_test(20, 5) == pytest.approx(2 * sum(math.comb(25, i) for i in range(6)) / 2**25)
    assert sign_test(20, 5) == pytest.approx(0.004077, abs=1e-6)


def test_sign_test_large_counts_stay_finite():
    p = sign_test(600, 400)  # 2^1000 overflows a float; the test works in exact integers
    assert 0 < p < 1e-9
    assert sign_test(500, 500) == 1.0
    with pytest.raises(ValueError):
        sign_test(-1, 2)


def test_percentile_interpolates_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 4.0
    assert percentile(values, 0.5) == 2.5
    assert percentile(values, 0.25) == pytest.approx(1.75)


def test_bootstrap_constant_difference_has_a_point_interval():
    mean, low, high = paired_bootstrap([0.0] * 50, [0.25] * 50, resamples=200)
    assert (mean, low, high) == (0.25, 0.25, 0.25)


def test_bootstrap_is_reproducible_and_brackets_the_mean():
    rng = random.Random(7)
    before = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(300)]
    after = [min(1.0, value + rng.choice([0.0, 0.0, 0.25])) for value in before]
    first = paired_bootstrap(before, after, resamples=2000, seed=3)
    assert first == paired_bootstrap(before, after, resamples=2000, seed=3)
    mean, low, high = first
    assert low < mean < high
    assert low > 0  # every question improved or stayed: the interval excludes 0
    # the interval's half-width is close to 1.96 standard errors of the mean difference
    differences = [b - a for a, b in zip(before, after)]
    centre = sum(differences) / len(differences)
    se = math.sqrt(sum((d - centre) ** 2 for d in differences) / (len(differences) - 1) / len(differences))
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.15)


def test_bootstrap_no_difference_includes_zero():
    rng = random.Random(1)
    before = [float(rng.random() < 0.4) for _ in range(200)]
    after = list(reversed(before))  # same accuracy, shuffled across questions
    mean, low, high = paired_bootstrap(before, after, resamples=1000)
    assert mean == 0.0 and low < 0 < high


def _record(index, greedy, samples, question=None):
    return {
        "index": index,
        "task_index": index,
        "question": question or f"q{index}",
        "greedy": None if greedy is None else {"correct": greedy},
        "samples": [{"correct": value} for value in samples],
    }


def test_compare_records_counts_discordant_pairs_in_any_order():
    before = [_record(i, i < 3, [i < 3, False]) for i in range(13)]  # 3 right
    after = [_record(i, i >= 3, [True, i >= 3]) for i in reversed(range(13))]  # 10 right, in another order
    result = compare_records(before, after, resamples=500)
    assert (result.became_right, result.became_wrong) == (10, 3)
    assert result.greedy_p == pytest.approx(0.0923, abs=5e-5)
    assert result.greedy_delta == pytest.approx(7 / 13)
    # pass@1: before 3 questions at 0.5; after 10 at 1.0 and 3 at 0.5 → (10 + 1.5 - 1.5) / 13
    assert result.pass_delta == pytest.approx(10 / 13)
    assert result.k_before == result.k_after == 2
    lines = format_significance(result)
    assert "10 became right, 3 became wrong" in lines[0] and "p = 0.092" in lines[0]
    assert "+0.7692" in lines[1] and "95% interval" in lines[1]


def test_compare_records_refuses_different_question_sets():
    before = [_record(i, True, [True]) for i in range(5)]
    after = [_record(i, True, [True]) for i in range(1, 6)]
    with pytest.raises(UserError, match=r"different questions.*1 only in A, 1 only in B"):
        compare_records(before, after)
    same_index_other_text = [_record(i, True, [True], question="other" if i == 2 else None) for i in range(5)]
    with pytest.raises(UserError, match="different questions"):
        pair_records(before, same_index_other_text)
    with pytest.raises(UserError, match="different questions"):
        pair_records(before, before[:4])


def test_compare_records_without_greedy():
    before = [_record(i, None, [False]) for i in range(4)]
    after = [_record(i, None, [True]) for i in range(4)]
    result = compare_records(before, after, resamples=100)
    assert result.greedy_p is None and result.pass_delta == 1.0
    assert "not compared" in format_significance(result)[0]
