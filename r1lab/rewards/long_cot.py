"""Length and repetition controls for long chain-of-thought RL, each its published definition.

- ``cosine`` — correctness-dependent cosine length scaling, Yeo et al. 2025, "Demystifying Long Chain-of-Thought
  Reasoning in LLMs" (arXiv:2502.03373), §4.2 and Appendix C.1: ``CosFn(t, T, η_min, η_max) = η_min +
  ½(η_max − η_min)(1 + cos(tπ/T))`` runs from η_max at length 0 to η_min at ``T`` = ``max_len`` tokens. A correct
  answer runs from
  ``max_value_correct`` (short) down to ``min_value_correct`` (long): brevity pays. A wrong one runs from
  ``min_value_wrong`` (short) up to ``max_value_wrong`` (long): a wrong answer given after more thought is
  penalised less, which keeps the model exploring. Lengths beyond ``max_len`` score as ``max_len`` (cos is
  periodic; TRL clamps the same way; the paper's separate exceed-length penalty is ``soft_overlong``'s job).
  The same numbers as ``trl.rewards.get_cosine_scaled_reward`` whenever both call the answer right or both wrong;
  what differs is who decides: TRL parses the whole completion with math-verify and needs a ``\\boxed{}`` or
  ``$…$`` answer, r1lab asks the run's task (its checker and template: ``<answer>`` in ``xml``, the summary after
  ``</think>`` in ``think``; reasoning-gym's own scorer for ``gym:`` tasks) — the same judge as ``accuracy``.
- ``soft_overlong`` — DAPO's soft overlong punishment, Yu et al. 2025 (arXiv:2503.14476), Eq. 13: 0 up to
  ``max_completion_len − soft_punish_cache`` tokens, then falling linearly to −1 at ``max_completion_len``, −1
  beyond. Counted on the completion's token ids, exactly as ``trl.rewards.get_soft_overlong_punishment``: the
  same number on the same input.
- ``repetition_penalty`` — the n-gram repetition penalty of the same Yeo et al. paper (Appendix C.2) as open-r1
  defines it (``open_r1/rewards.py``, ``get_repetition_penalty_reward``): the completion lowercased and split on
  whitespace into words, ``(1 − unique n-grams / all n-grams) × max_penalty``; 0 for a completion of fewer than
  ``ngram_size`` words. TRL's version (``trl.rewards.get_repetition_penalty_reward``, still reachable by dotted
  path) counts token-id n-grams instead: same formula, another unit. Words do not depend on the tokenizer, so one
  setting means the same on every model, and they read the way the repetition is seen ("so the answer is so the
  answer is"); tokens also catch repeated sub-word or non-spaced (Chinese) text.
- ``reasoning_steps`` — open-r1's ``reasoning_steps_reward``: credit for explicit step structure, ``min(1,
  markers / steps)`` with ``steps`` = 3, markers being ``Step n:``, a numbered line ``n.``, a ``-`` or ``*`` bullet
  after a line break, and ``First,`` ``Second,`` ``Next,`` ``Finally,``. Two corrections, each to what open-r1's
  docstring says its pattern matches: numbered items count "at start of line" but the pattern lacks
  ``re.MULTILINE``, so only an item at the very start of the completion counted (r1lab counts one per line); and a
  bullet is ``-`` or ``*`` followed by a space, where open-r1's bare ``\n-`` also took a line that starts with a
  negative number (``-15 - 35 = -50``: on the embedded model's chain_sum answers that was every marker it found).

Each scorer is pure and returns its score with the figures behind it (:class:`~r1lab.rewards.base.Scored`), logged
per batch as ``reward_stats/<name>/<key>``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from r1lab.errors import UserError
from r1lab.rewards.base import Scored, register
from r1lab.tasks.base import Task, TaskSpec
from r1lab.templates import get_template

# open-r1's markers of an explicit step (reasoning_steps_reward): one numbered item per line, and a bullet is a
# "-" or "*" followed by a space or tab (open-r1's bare "\n-" also counts a line that starts with a negative number).
STEP_MARKERS = re.compile(r"(Step \d+:|^\d+\.|\n-[ \t]|\n\*[ \t]|First,|Second,|Next,|Finally,)", re.MULTILINE)


def _token_count(row: dict[str, Any], reward: str) -> int:
    """The completion's length in tokens: its ``completion_ids`` (TRL passes them to every reward)."""
    token_ids = row.get("completion_ids")
    if token_ids is None:
        raise ValueError(f"{reward} counts tokens: it needs completion_ids (GRPOTrainer passes them)")
    return len(token_ids)


def _positive(name: str, option: str, value: int) -> None:
    if value < 1:
        raise UserError(f"reward {name!r} option {option} must be at least 1, got {value}")


def cosine_value(
    tokens: int,
    correct: bool,
    max_len: int,
    min_value_wrong: float,
    max_value_wrong: float,
    min_value_correct: float,
    max_value_correct: float,
) -> float:
    """Yeo et al.'s CosFn at ``tokens``: the correct or the wrong schedule, lengths past ``max_len`` clamped."""
    progress = min(tokens / max_len, 1.0)
    cosine = math.cos(progress * math.pi)
    if correct:
        low, high = min_value_correct, max_value_correct
    else:  # the bounds swap: a short wrong answer is penalised most
        low, high = max_value_wrong, min_value_wrong
    return float(low + 0.5 * (high - low) * (1.0 + cosine))


def soft_overlong_value(tokens: int, max_completion_len: int, soft_punish_cache: int) -> float:
    """DAPO Eq. 13 at ``tokens``."""
    expected = max_completion_len - soft_punish_cache
    if tokens <= expected:
        return 0.0
    if tokens <= max_completion_len:
        return (expected - tokens) / soft_punish_cache
    return -1.0


def repetition_value(text: str, ngram_size: int, max_penalty: float) -> float:
    """open-r1's word n-gram repetition penalty of ``text``."""
    words = text.lower().split()
    if len(words) < ngram_size:
        return 0.0
    ngrams = list(zip(*[words[index:] for index in range(ngram_size)]))
    repeated = 1 - len(set(ngrams)) / len(ngrams)
    return repeated * max_penalty if repeated else 0.0  # not -0.0


def step_markers(text: str) -> int:
    """How many explicit step markers ``text`` has (open-r1's patterns, numbered items on every line)."""
    return len(STEP_MARKERS.findall(text))


@register("cosine")
def cosine(
    max_len: int,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    template: str = "xml",
    task=None,
):
    """Correctness from the run's task, length in tokens, Yeo et al.'s cosine schedule (module docstring)."""
    _positive("cosine", "max_len", max_len)
    layout = get_template(template)
    checker = task if task is not None else Task(TaskSpec())

    def score_cosine(text: str, row: dict[str, Any]) -> Scored:
        tokens = _token_count(row, "cosine")
        correct = checker.check(text, row, layout).correct
        value = cosine_value(
            tokens, correct, max_len, min_value_wrong, max_value_wrong, min_value_correct, max_value_correct
        )
        return Scored(value, {"correct": float(correct), "tokens": float(tokens)})

    return score_cosine


@register("soft_overlong")
def soft_overlong(max_completion_len: int, soft_punish_cache: int):
    """DAPO's soft overlong punishment on token counts (module docstring)."""
    _positive("soft_overlong", "max_completion_len", max_completion_len)
    if not 0 <= soft_punish_cache <= max_completion_len:
        raise UserError(
            f"reward 'soft_overlong' option soft_punish_cache must be between 0 and max_completion_len "
            f"({max_completion_len}), got {soft_punish_cache}"
        )

    def score_soft_overlong(text: str, row: dict[str, Any]) -> Scored:
        tokens = _token_count(row, "soft_overlong")
        value = soft_overlong_value(tokens, max_completion_len, soft_punish_cache)
        return Scored(value, {"tokens": float(tokens), "punished": float(value < 0)})

    return score_soft_overlong


@register("repetition_penalty")
def repetition_penalty(ngram_size: int = 3, max_penalty: float = -1.0):
    """open-r1's n-gram repetition penalty over lowercased words (module docstring)."""
    if ngram_size < 1:
        raise UserError(f"reward 'repetition_penalty' option ngram_size must be at least 1, got {ngram_size}")
    if max_penalty > 0:
        raise UserError(f"reward 'repetition_penalty' option max_penalty must not be positive, got {max_penalty}")
    return lambda text, row: repetition_value(text, ngram_size, max_penalty)


@register("reasoning_steps")
def reasoning_steps(steps: int = 3):
    """open-r1's step-structure credit, full at ``steps`` markers (module docstring)."""
    if steps < 1:
        raise UserError(f"reward 'reasoning_steps' option steps must be at least 1, got {steps}")

    def score_steps(text: str, row: dict[str, Any]) -> Scored:
        markers = step_markers(text)
        return Scored(min(1.0, markers / steps), {"markers": float(markers)})

    return score_steps
