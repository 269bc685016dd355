"""The one place that decides whether an answer is right.

The accuracy reward, the rejection-sampling filter and the evaluator all end here (through a task's
``check``), so a number in training, in a filtered dataset and in an eval table means the same thing.
"""

from __future__ import annotations

import functools
import re
import threading
from decimal import Decimal, InvalidOperation

# Longer predicted answers are not answers: refuse them before any parser sees them.
MAX_ANSWER_CHARS = 512
# math-verify's timeouts use SIGALRM, which only the main thread may set.
MATH_VERIFY_TIMEOUT_S = 2

_NUMBER_NOISE = re.compile(r"(\\\$|\$|,|\\,|\\!|\s|\\text\{[^}]*\}|%$)")
_PLAIN_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")


def parse_plain_number(text: str) -> Decimal | None:
    """``$1,000`` / ``1,000.00`` / `` 72 `` → Decimal; anything that is not a plain number → None."""
    cleaned = _NUMBER_NOISE.sub("", text).rstrip(".")
    if not _PLAIN_NUMBER.match(cleaned) or len(cleaned) > 60:
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _parse_math(text: str):
    """math-verify's parse, reading undelimited text as LaTeX math first: bare, ``\\left( 3, \\frac{\\pi}{2}
    \\right)`` is read as its first number (3), inside ``$...$`` as the tuple it is."""
    from math_verify import parse

    timeout = MATH_VERIFY_TIMEOUT_S if _in_main_thread() else None
    if text.startswith("$") or "\\boxed" in text:
        return parse(text, parsing_timeout=timeout)
    return parse(f"${text}$", parsing_timeout=timeout) or parse(text, parsing_timeout=timeout)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str):
    return _parse_math(gold)


def answers_match(predicted: str | None, gold: str) -> bool:
    """True when ``predicted`` is mathematically equal to ``gold``.

    Plain numbers compare exactly as decimals (fast, no sympy); anything else goes to math-verify with a
    time limit. Oversized or unparsable answers are simply wrong: this never raises and never hangs.
    """
    if predicted is None:
        return False
    predicted = predicted.strip()
    gold = str(gold).strip()
    if not predicted or len(predicted) > MAX_ANSWER_CHARS:
        return False
    gold_number = parse_plain_number(gold)
    predicted_number = parse_plain_number(predicted)
    if gold_number is not None and predicted_number is not None:
        return gold_number == predicted_number
    try:
        from math_verify import verify

        timeout = MATH_VERIFY_TIMEOUT_S if _in_main_thread() else None
        gold_parsed = _parse_gold(gold)
        predicted_parsed = _parse_math(predicted)
        if not gold_parsed or not predicted_parsed:
            return False
        return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=timeout))
    except Exception:  # a parser failure on hostile text is a wrong answer, not a crash
        return False
