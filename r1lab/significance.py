"""Is B better than A on the same questions? Paired significance for two evals, pure and dependency-free.

Two evals of the same questions (an eval's ``samples.jsonl``: one record per question, with its ``greedy``
verdict and its ``samples``) are paired question by question:

- greedy accuracy: the questions that became right (wrong under A, right under B) and became wrong; the
  exact two-sided sign test on those discordant pairs (McNemar's exact test): under "no difference" each
  discordant question is a fair coin, so with ``b`` became-right and ``c`` became-wrong out of ``n = b + c``,
  ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(n, 1/2)`` (10 vs 3 → 0.0923; 0 vs 0 → 1);
- pass@1 over k samples: each question's pass@1 (share of its k samples that are right) under A and B,
  and a paired bootstrap of the mean difference: the questions are resampled with replacement (a seeded
  ``random.Random``, so the interval is the same on every run), the 2.5th and 97.5th percentiles of the
  resampled mean differences are the 95 % interval.

Questions are matched by their key in ``samples.jsonl`` (``task_index`` and the question text); two evals
whose question sets differ are not compared (:func:`pair_records` raises UserError).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1lab.errors import UserError
from r1lab.run_files import read_samples

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def sign_test(became_right: int, became_wrong: int) -> float:
    """Exact two-sided sign test (McNemar's exact test) on the discordant pairs; 1.0 when there are none."""
    if became_right < 0 or became_wrong < 0:
        raise ValueError("counts must be non-negative")
    n = became_right + became_wrong
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(became_right, became_wrong) + 1))
    return min(1.0, 2 * tail / 2**n)  # exact integers; the one division rounds once


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default) of already sorted values."""
    if not ordered:
        raise ValueError("no values")
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """(mean of after - before, low, high): a percentile bootstrap interval over resampled questions."""
    if len(before) != len(after):
        raise ValueError("paired samples must have the same length")
    if not before:
        raise ValueError("no questions to resample")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    differences = [b - a for a, b in zip(before, after)]
    n = len(differences)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(differences, k=n)) / n for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    return sum(differences) / n, percentile(means, tail), percentile(means, 1.0 - tail)


# ---------------------------------------------------------------------------------------------- evals


def question_key(record: Mapping[str, Any]) -> tuple[Any, Any]:
    """What identifies a question in ``samples.jsonl``: its task index and its text."""
    return (record.get("task_index", record.get("index")), record.get("question"))


def _describe(key: tuple[Any, Any]) -> str:
    index, question = key
    text = str(question)
    return f"#{index} {text[:60] + '…' if len(text) > 60 else text!r}"


def pair_records(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> list[tuple[dict, dict]]:
    """The two evals' records matched question by question; UserError when their question sets differ."""

    def keyed(records):
        table: dict[tuple[Any, Any], list[dict]] = {}
        for record in records:
            table.setdefault(question_key(record), []).append(record)
        return table

    old, new = keyed(before), keyed(after)
    only_a = [key for key in old if len(old[key]) > len(new.get(key, []))]
    only_b = [key for key in new if len(new[key]) > len(old.get(key, []))]
    if only_a or only_b:
        example = _describe((only_a or only_b)[0])
        raise UserError(
            f"the evals were scored on different questions ({len(before)} in A, {len(after)} in B; "
            f"{len(only_a)} only in A, {len(only_b)} only in B, e.g. {example}): not compared"
        )
    return [(record, new[key][position]) for key, records in old.items() for position, record in enumerate(records)]


def _pass_at_1(record: dict[str, Any]) -> float | None:
    samples = record.get("samples") or []
    if not samples:
        return None
    return sum(bool(sample.get("correct")) for sample in samples) / len(samples)


def _judge_score(record: dict[str, Any], name: str) -> float | None:
    """A question's score from judge ``name``: its greedy completion's, else the mean over its samples."""
    greedy = record.get("greedy")
    if greedy is not None:
        return (greedy.get("judges") or {}).get(name)
    values = [(sample.get("judges") or {}).get(name) for sample in record["samples"]]
    scored = [value for value in values if value is not None]
    return sum(scored) / len(scored) if scored else None


def _judge_names(records: list[dict[str, Any]]) -> set[str]:
    return {
        name
        for record in records
        for completion in [record.get("greedy"), *record["samples"]]
        if completion
        for name in (completion.get("judges") or {})
    }


def compare_judges(pairs: list[tuple[dict, dict]], resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    """For each judge both evals carry, over the questions both scored: the mean difference B - A with its paired
    bootstrap interval, and B's wins and losses (a tie is neither) with the sign test's p."""
    judged: dict[str, dict[str, Any]] = {}
    names = _judge_names([a for a, _ in pairs]) & _judge_names([b for _, b in pairs])
    for name in sorted(names):
        all_scores = [(_judge_score(a, name), _judge_score(b, name)) for a, b in pairs]
        scores = [(old, new) for old, new in all_scores if old is not None and new is not None]
        if not scores:
            continue
        delta, low, high = paired_bootstrap([old for old, _ in scores], [new for _, new in scores], resamples, seed)
        wins = sum(1 for old, new in scores if new > old)
        losses = sum(1 for old, new in scores if new < old)
        judged[name] = {
            "questions": len(scores),
            "delta": delta,
            "low": low,
            "high": high,
            "wins": wins,
            "losses": losses,
            "win_rate": wins / (wins + losses) if wins + losses else None,
            "p": sign_test(wins, losses),
        }
    return judged


@dataclass
class Significance:
    questions: int
    became_right: int | None = None  # greedy: wrong under A, right under B
    became_wrong: int | None = None
    greedy_p: float | None = None
    greedy_delta: float | None = None
    pass_delta: float | None = None
    pass_low: float | None = None
    pass_high: float | None = None
    k_before: int | None = None
    k_after: int | None = None
    resamples: int = BOOTSTRAP_RESAMPLES
    seed: int = BOOTSTRAP_SEED
    gold: bool = True  # False: general prompts without gold answers, accuracy not compared
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)  # compare_judges

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compare_records(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Significance:
    """The paired figures of B against A (see the module docstring); UserError when the questions differ."""
    pairs = pair_records(before, after)
    result = Significance(questions=len(pairs), resamples=resamples, seed=seed)
    result.judges = compare_judges(pairs, resamples, seed)
    if all(a.get("gold") == "" for a, _ in pairs):
        result.gold = False
        return result
    if all(a.get("greedy") and b.get("greedy") for a, b in pairs):
        verdicts = [(bool(a["greedy"].get("correct")), bool(b["greedy"].get("correct"))) for a, b in pairs]
        result.became_right = sum(1 for old, new in verdicts if new and not old)
        result.became_wrong = sum(1 for old, new in verdicts if old and not new)
        result.greedy_p = sign_test(result.became_right, result.became_wrong)
        result.greedy_delta = (result.became_right - result.became_wrong) / len(pairs)
    pass_rates = [(_pass_at_1(a), _pass_at_1(b)) for a, b in pairs]
    scores = [(old, new) for old, new in pass_rates if old is not None and new is not None]
    if len(scores) == len(pass_rates):
        result.pass_delta, result.pass_low, result.pass_high = paired_bootstrap(
            [old for old, _ in scores], [new for _, new in scores], resamples, seed
        )
        result.k_before = len(pairs[0][0]["samples"])
        result.k_after = len(pairs[0][1]["samples"])
    return result


def compare_evals(path_a: str, path_b: str, **options) -> Significance:
    """:func:`compare_records` on two evals' ``samples.jsonl`` (a file, or the directory holding it)."""
    return compare_records(read_samples(path_a), read_samples(path_b), **options)


def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def format_significance(result: Significance, indent: str = "  ") -> list[str]:
    """Two lines: greedy (became right / wrong, sign-test p) and pass@1 (difference and bootstrap interval)."""
    lines = [] if result.gold else [f"{indent}accuracy: not compared (general prompts, no gold answers)"]
    for name, judged in result.judges.items():
        rate = "-" if judged["win_rate"] is None else f"{judged['win_rate']:.3f}"
        lines.append(
            f"{indent}judge {name} ({judged['questions']} questions): B - A {judged['delta']:+.4f}, paired bootstrap 95% "
            f"interval [{judged['low']:+.4f}, {judged['high']:+.4f}]; B better on {judged['wins']}, worse on "
            f"{judged['losses']} (win rate {rate}), sign test p = {format_p(judged['p'])}"
        )
    if not result.gold:
        return lines
    if result.greedy_p is None:
        lines.append(f"{indent}greedy: not compared (an eval has no greedy pass)")
    else:
        lines.append(
            f"{indent}greedy: {result.became_right} became right, {result.became_wrong} became wrong "
            f"(B - A {result.greedy_delta:+.4f}); exact sign test (McNemar), two-sided p = {format_p(result.greedy_p)}"
        )
    if result.pass_delta is None:
        lines.append(f"{indent}pass@1: not compared (a question has no samples)")
    else:
        k = f"k={result.k_before}" if result.k_before == result.k_after else f"k={result.k_before} / k={result.k_after}"
        lines.append(
            f"{indent}pass@1 ({k}): B - A {result.pass_delta:+.4f}, paired bootstrap 95% interval "
            f"[{result.pass_low:+.4f}, {result.pass_high:+.4f}] ({result.resamples} resamples of the questions, seed {result.seed})"
        )
    return lines


# ---------------------------------------------------------------------------------------------- a run's evals


@dataclass
class Transition:
    """One eval against the nearest earlier eval of the same run on the same questions."""

    before: str
    after: str
    result: Significance | None = None
    note: str | None = None  # why there is no result


def _question_keys(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    return sorted(question_key(record) for record in records)


def transitions(
    evals: Sequence[tuple[str, str]], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[Transition]:
    """``evals``: (name, eval directory) in run order. Each eval is paired with the nearest earlier one scored
    on the same questions (an eval of 100 checkpoint questions between two of 400 is passed over); an eval
    with no such earlier one, or with unreadable samples, gets a note instead of figures."""
    loaded: list[tuple[str, Sequence[Mapping[str, Any]] | None, str | None]] = []
    for name, folder in evals:
        try:
            loaded.append((name, read_samples(folder), None))
        except UserError as error:
            loaded.append((name, None, str(error)))
    found = []
    for position, (name, records, problem) in enumerate(loaded):
        if position == 0:
            continue
        if records is None:
            found.append(Transition(loaded[position - 1][0], name, note=problem))
            continue
        keys = _question_keys(records)
        earlier = next(
            (item for item in reversed(loaded[:position]) if item[1] is not None and _question_keys(item[1]) == keys),
            None,
        )
        if earlier is None:
            found.append(Transition(loaded[position - 1][0], name, note="no earlier eval on the same questions"))
            continue
        found.append(Transition(earlier[0], name, compare_records(earlier[1], records, resamples, seed)))
    return found


def format_transitions(found: Sequence[Transition]) -> list[str]:
    """Lines for a terminal: one heading per transition, then its two significance lines (or its note)."""
    lines = []
    for item in found:
        if item.result is None:
            lines.append(f"{item.before} → {item.after}: not compared ({item.note})")
            continue
        lines.append(f"{item.before} → {item.after} ({item.result.questions} questions, paired):")
        lines.extend(format_significance(item.result))
    return lines
