"""Evaluation arithmetic, pure: pass@1 averaged over k samples, cons@k (majority vote), the unbiased pass@k
estimator of Chen et al. (2021) for every reported k up to the number of samples, and the summary.

Correctness is never decided here: every ``correct`` flag comes from the task's ``check``. This module
only counts, and groups answers for the vote.

The vote (cons@k):
- each sample with an extracted answer votes for its *vote key*: a plain number in canonical form
  (``1,000``, ``1000``, ``1000.0`` and ``$1,000`` are one key), otherwise the answer with whitespace
  removed and ``\\dfrac``/``\\tfrac`` written ``\\frac``; samples without an answer do not vote;
- the key with the most votes wins; a tie goes to the tied key whose first vote came earliest in sample
  order (sample 0 first), which is deterministic and blind to which answer is right;
- the question counts as correct under cons@k when that first sample of the winning key was checked
  correct; no votes at all → wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from r1lab.checking import parse_plain_number

_LATEX_FRAC = re.compile(r"\\[dt]frac")
_SPACES = re.compile(r"\s+")


def vote_key(answer: str | None) -> str | None:
    """The form under which an answer votes (see the module docstring); None when there is no answer."""
    if answer is None:
        return None
    stripped = answer.strip()
    if not stripped:
        return None
    number = parse_plain_number(stripped)
    if number is not None:
        text = format(number.normalize(), "f")
        return "0" if text in ("-0", "+0") else text
    return _LATEX_FRAC.sub(r"\\frac", _SPACES.sub("", stripped))


def majority_vote(answers: Sequence[str | None]) -> tuple[int | None, int]:
    """(index of the sample that represents the winning answer, its number of votes); (None, 0) without votes."""
    counts: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    for index, answer in enumerate(answers):
        key = vote_key(answer)
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        first_seen.setdefault(key, index)
    if not counts:
        return None, 0
    winner = min(counts, key=lambda key: (-counts[key], first_seen[key]))
    return first_seen[winner], counts[winner]


def score_question(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """pass@1 (share correct), pass@k (any correct) and the vote for one question's k checked samples.

    Each sample is a dict with ``extracted`` (str or None) and ``correct`` (bool, from the task's check).
    """
    if not samples:
        raise ValueError("a question needs at least one sample")
    correct = [bool(sample["correct"]) for sample in samples]
    winner, votes = majority_vote([sample.get("extracted") for sample in samples])
    return {
        "pass_at_1": sum(correct) / len(correct),
        "pass_at_k": any(correct),
        "vote": {
            "answer": None if winner is None else samples[winner]["extracted"],
            "votes": votes,
            "correct": winner is not None and correct[winner],
        },
    }


def pass_at_k_estimate(n: int, c: int, k: int) -> float:
    """Chen et al. (2021)'s unbiased pass@k from ``n`` samples of which ``c`` are correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def correct_samples(record: dict[str, Any]) -> int:
    """How many of a question's sampled completions the task's check found correct."""
    return sum(bool(sample["correct"]) for sample in record["samples"])


def pass_at_k_values(n: int) -> list[int]:
    """The k reported for n samples: 1, n and the usual 2, 5, 10, 20, 50, 100 below n."""
    return sorted({1, n, *(k for k in (2, 5, 10, 20, 50, 100) if k < n)})


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` in (0, 1]): the smallest value with at least that share at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _completion_stats(completions: Sequence[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    tokens = [completion["tokens"] for completion in completions]
    return {
        f"{prefix}format_rate": _mean([float(completion["formatted"]) for completion in completions]),
        f"{prefix}answer_rate": _mean([float(completion["extracted"] is not None) for completion in completions]),
        f"{prefix}mean_tokens": _mean(tokens),
        f"{prefix}p90_tokens": percentile(tokens, 0.9),
        f"{prefix}truncation_rate": _mean([float(completion["truncated"]) for completion in completions]),
    }


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Headline metrics over per-question records (``samples``: k checked samples; ``greedy``: one or None).

    Rates are fractions in [0, 1]; token figures are over every sampled completion; the ``greedy_*``
    figures are None when no greedy pass ran.
    """
    if not records:
        raise ValueError("no records to aggregate")
    scores = [score_question(record["samples"]) for record in records]
    sampled = [sample for record in records for sample in record["samples"]]
    greedy = [record["greedy"] for record in records if record.get("greedy") is not None]
    has_greedy = len(greedy) == len(records)
    summary: dict[str, Any] = {
        "questions": len(records),
        "k": len(records[0]["samples"]),
        "greedy_accuracy": _mean([float(item["correct"]) for item in greedy]) if has_greedy else None,
        "pass_at_1": _mean([score["pass_at_1"] for score in scores]),
        "cons_at_k": _mean([float(score["vote"]["correct"]) for score in scores]),
        "pass_at_k": _mean([float(score["pass_at_k"]) for score in scores]),
    }
    if all(len(record["samples"]) == summary["k"] for record in records):  # unbiased pass@k for k <= n samples
        summary["pass_at"] = {
            str(k): _mean([pass_at_k_estimate(summary["k"], correct_samples(record), k) for record in records])
            for k in pass_at_k_values(summary["k"])
        }
    summary.update(_completion_stats(sampled))
    greedy_stats = _completion_stats(greedy, prefix="greedy_")
    summary.update(greedy_stats if has_greedy else dict.fromkeys(greedy_stats))
    return summary


ACCURACY_FIGURES = ("greedy_accuracy", "pass_at_1", "cons_at_k", "pass_at_k")


def judge_means(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each judge's mean score (``judges`` on a completion) over the greedy completions and over the sampled
    ones; a completion a judge did not score (None) is left out of its means."""
    names = sorted(
        {
            name
            for record in records
            for completion in [record.get("greedy"), *record["samples"]]
            if completion
            for name in completion.get("judges", {})
        }
    )

    def mean(completions, name):
        return _mean([c["judges"][name] for c in completions if c and c.get("judges", {}).get(name) is not None])

    greedy = [record.get("greedy") for record in records]
    sampled = [sample for record in records for sample in record["samples"]]
    return {name: {"greedy": mean(greedy, name), "sampled": mean(sampled, name)} for name in names}


def summarize(records: Sequence[dict[str, Any]], has_gold: bool = True) -> dict[str, Any]:
    """:func:`aggregate`, with the judges' means (:func:`judge_means`) when completions carry them; a task without
    gold answers (general prompts) has no accuracy: those figures are None."""
    summary = aggregate(records)
    if not has_gold:
        summary.update(dict.fromkeys(ACCURACY_FIGURES))
        summary.pop("pass_at", None)
    judges = judge_means(records)
    if judges:
        summary["judges"] = judges
    return summary
