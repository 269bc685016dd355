"""pass@1 averaged over k samples, cons@k and the summary arithmetic, on hand-made samples."""

from __future__ import annotations

import pytest

from r1lab.eval_metrics import aggregate, majority_vote, percentile, score_question, vote_key


def sample(extracted, correct, tokens=10, truncated=False, formatted=True):
    return {
        "extracted": extracted,
        "correct": correct,
        "tokens": tokens,
        "truncated": truncated,
        "formatted": formatted,
    }


def test_vote_key_puts_equal_numbers_together():
    assert vote_key("1,000") == vote_key("1000") == vote_key(" 1000.0 ") == vote_key("$1,000") == "1000"
    assert vote_key("0.50") == "0.5"
    assert vote_key("-0") == "0"
    assert vote_key("\\dfrac{1}{2}") == vote_key("\\frac{1}{2}") == vote_key("\\frac {1}{2}")
    assert vote_key(None) is None and vote_key("   ") is None
    assert vote_key("7") != vote_key("70")


def test_majority_vote_counts_normalised_answers():
    winner, votes = majority_vote(["12", "1,000", "1000", "12", "1000.0"])
    assert (winner, votes) == (1, 3)  # the first sample of the winning answer represents it


def test_vote_tie_goes_to_the_answer_seen_first():
    assert majority_vote(["5", "7", "7", "5"]) == (0, 2)
    assert majority_vote(["7", "5", "5", "7"]) == (0, 2)
    assert majority_vote(["9", "7", "5"]) == (0, 1)


def test_missing_answers_do_not_vote():
    assert majority_vote([None, None, "3", None]) == (2, 1)
    assert majority_vote([None, "", "  "]) == (None, 0)
    assert majority_vote([]) == (None, 0)


def test_score_question_mixed_samples():
    samples = [sample("4", True), sample("5", False), sample("5", False), sample(None, False)]
    score = score_question(samples)
    assert score["pass_at_1"] == pytest.approx(0.25)
    assert score["pass_at_k"] is True
    assert score["vote"] == {"answer": "5", "votes": 2, "correct": False}


def test_score_question_tie_between_right_and_wrong_is_decided_by_order_not_by_correctness():
    wrong_first = score_question([sample("5", False), sample("4", True)])
    right_first = score_question([sample("4", True), sample("5", False)])
    assert wrong_first["vote"]["correct"] is False
    assert right_first["vote"]["correct"] is True
    assert wrong_first["pass_at_1"] == right_first["pass_at_1"] == 0.5


def test_score_question_all_wrong_and_no_answers():
    assert score_question([sample("1", False), sample("2", False)]) == {
        "pass_at_1": 0.0,
        "pass_at_k": False,
        "vote": {"answer": "1", "votes": 1, "correct": False},
    }
    nothing = score_question([sample(None, False), sample(None, False)])
    assert nothing["vote"] == {"answer": None, "votes": 0, "correct": False}
    assert nothing["pass_at_1"] == 0.0


def test_k_equals_one_makes_pass_at_1_cons_and_pass_at_k_agree():
    records = [
        {"samples": [sample("3", True)], "greedy": sample("3", True)},
        {"samples": [sample("8", False)], "greedy": sample("9", False)},
        {"samples": [sample(None, False, truncated=True, formatted=False)], "greedy": sample("1", True)},
        {"samples": [sample("2", True)], "greedy": sample(None, False)},
    ]
    summary = aggregate(records)
    assert summary["k"] == 1 and summary["questions"] == 4
    assert summary["pass_at_1"] == summary["cons_at_k"] == summary["pass_at_k"] == 0.5
    assert summary["greedy_accuracy"] == 0.5


def test_aggregate_rates_and_lengths():
    records = [
        {
            "samples": [
                sample("4", True, tokens=10),
                sample("4", True, tokens=20),
                sample("5", False, tokens=30, truncated=True),
            ],
            "greedy": sample("4", True, tokens=12),
        },
        {
            "samples": [
                sample("1", False, tokens=40, formatted=False),
                sample("2", True, tokens=50),
                sample(None, False, tokens=60, truncated=True, formatted=False),
            ],
            "greedy": sample("1", False, tokens=14),
        },
    ]
    summary = aggregate(records)
    assert summary["k"] == 3
    assert summary["pass_at_1"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    # question 1: "4" wins 2-1 (correct); question 2: "1" and "2" tie at one vote, "1" came first (wrong).
    assert summary["cons_at_k"] == pytest.approx(0.5)
    assert summary["pass_at_k"] == 1.0
    assert summary["greedy_accuracy"] == 0.5
    assert summary["format_rate"] == pytest.approx(4 / 6)
    assert summary["answer_rate"] == pytest.approx(5 / 6)
    assert summary["truncation_rate"] == pytest.approx(2 / 6)
    assert summary["mean_tokens"] == pytest.approx(35.0)
    assert summary["p90_tokens"] == 60
    assert summary["greedy_mean_tokens"] == pytest.approx(13.0)
    assert summary["greedy_truncation_rate"] == 0.0


def test_aggregate_without_a_greedy_pass():
    summary = aggregate([{"samples": [sample("1", True)], "greedy": None}])
    assert summary["greedy_accuracy"] is None and summary["greedy_format_rate"] is None
    assert summary["pass_at_1"] == 1.0


def test_percentile_nearest_rank():
    assert percentile([], 0.9) is None
    assert percentile([5], 0.9) == 5
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile(list(range(1, 101)), 0.9) == 90
    assert percentile([3, 1, 2], 1.0) == 3


def test_aggregate_refuses_nothing():
    with pytest.raises(ValueError):
        aggregate([])
    with pytest.raises(ValueError):
        score_question([])
