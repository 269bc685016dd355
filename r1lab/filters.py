"""Readability filters for reasoning traces: cold-start data now, rejection sampling later.

Each filter is a pure function returning ``(kept, reason)``; ``reason`` says why a sample was dropped and is
None when it was kept. :func:`apply_filters` runs them in a fixed order over samples written in a template's
layout and counts, per filter, how many samples it removed (each sample is charged to the first filter it fails).

DeepSeek-R1 keeps cold-start and rejection-sampled traces that are readable: one language, no runaway
paragraphs, not just code, a summary after the reasoning. The embedded 135M model also loops on phrases
until the length cap, hence the repetition filter.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from r1lab.config import build_config
from r1lab.errors import UserError
from r1lab.templates import Template

FilterResult = tuple[bool, "str | None"]
KEPT: FilterResult = (True, None)
# The order in which apply_filters runs them (structure first, then content).
FILTER_NAMES = ("summary", "length", "code_only", "language", "repetition")
LANGUAGES = ("en", "zh")

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA_HANGUL = "\u3040-\u30ff\uac00-\ud7af"
_HAN_CHAR = re.compile(f"[{_HAN}]")
_OTHER_CJK_CHAR = re.compile(f"[{_KANA_HANGUL}]")
# Latin words of two letters or more: single letters are mostly variables (x, n) in any language.
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]{2,}")
# Spans that carry no natural language: math, LaTeX commands, code.
_MATH_SPAN = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$|\\\[.*?\\\]|\\\(.*?\\\)", re.DOTALL)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass
class FilterSettings:
    """Which filters run and their thresholds; ``None`` switches a check off.

    In a stage config these are the keys of ``filters: {...}`` (e.g. ``--filters '{max_chars: 4000}'``).
    """

    language: str | None = "en"  # target language of the reasoning: en, zh, or None (no check)
    min_target_share: float = 0.95  # share of the reasoning's words that must be in the target language
    min_chars: int = 1  # reasoning length bounds, in characters
    max_chars: int | None = 8000
    max_tokens: int | None = None  # whole completion; tokenizer tokens when a counter is given, else words+symbols
    max_paragraph_chars: int | None = None  # R1 drops "long paragraphs": a block without a blank line
    max_code_share: float | None = 0.8  # share of the reasoning's characters inside ``` blocks
    repetition_ngram: int = 5
    max_repeated_ngram_share: float | None = 0.3  # share of n-grams that repeat an earlier one
    max_repeated_line_share: float | None = 0.3  # share of non-empty lines that repeat an earlier line
    require_summary: bool = True  # the reasoning closes and a summary/answer follows it
    max_summary_chars: int | None = 1000

    def __post_init__(self):
        if self.language is not None and self.language not in LANGUAGES:
            raise UserError(f"filters.language: {self.language!r} is not one of {', '.join(LANGUAGES)} (or null)")
        for name in ("min_target_share", "max_code_share", "max_repeated_ngram_share", "max_repeated_line_share"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise UserError(f"filters.{name} must be between 0 and 1, got {value}")
        for name in ("max_chars", "max_tokens", "max_paragraph_chars", "max_summary_chars"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"filters.{name} must be at least 1 (or null for no limit), got {value}")
        if self.min_chars < 0:
            raise UserError(f"filters.min_chars must be >= 0, got {self.min_chars}")
        if self.max_chars is not None and self.min_chars > self.max_chars:
            raise UserError(f"filters.min_chars ({self.min_chars}) is above filters.max_chars ({self.max_chars})")
        if self.repetition_ngram < 1:
            raise UserError(f"filters.repetition_ngram must be at least 1, got {self.repetition_ngram}")


def filter_settings(values: dict[str, Any] | None) -> FilterSettings:
    """FilterSettings from a config's ``filters`` mapping, every key known and typed (else a UserError)."""
    return build_config(FilterSettings, dict(values or {}), source="filters")


def _strip_non_language(text: str) -> str:
    for pattern in (_CODE_BLOCK, _INLINE_CODE, _MATH_SPAN, _LATEX_COMMAND):
        text = pattern.sub(" ", text)
    return text


def language_counts(text: str) -> dict[str, int]:
    """Words per script outside math and code: Latin words (2+ letters), Han characters, kana/hangul."""
    text = _strip_non_language(text)
    return {
        "en": len(_LATIN_WORD.findall(text)),
        "zh": len(_HAN_CHAR.findall(text)),
        "other": len(_OTHER_CJK_CHAR.findall(text)),
    }


def language_filter(reasoning: str, target: str, min_target_share: float) -> FilterResult:
    """Drop reasoning whose words are mostly not in ``target`` (``en``: Latin words, ``zh``: Han characters).

    Text with no words at all (``4 + 3 = 7``) passes: there is nothing to judge.
    """
    counts = language_counts(reasoning)
    total = sum(counts.values())
    if total == 0:
        return KEPT
    share = counts[target] / total
    if share < min_target_share:
        return (
            False,
            f"{100 * (1 - share):.0f}% of the reasoning's words are not {target} (allowed {100 * (1 - min_target_share):.0f}%)",
        )
    return KEPT


def code_share(reasoning: str) -> float:
    """Share of the reasoning's non-space characters that sit inside fenced ``` code blocks."""
    total = len(re.sub(r"\s", "", reasoning))
    if total == 0:
        return 0.0
    in_code = sum(len(re.sub(r"\s", "", block)) for block in _CODE_BLOCK.findall(reasoning))
    return in_code / total


def code_only_filter(reasoning: str, max_code_share: float) -> FilterResult:
    """Drop reasoning that is (mostly) code blocks instead of prose."""
    share = code_share(reasoning)
    if share > max_code_share:
        return False, f"{100 * share:.0f}% of the reasoning is inside code blocks (allowed {100 * max_code_share:.0f}%)"
    return KEPT


def token_counter(tokenizer) -> Callable[[str], int]:
    """A ``count_tokens`` for the length filter: the text's tokens under ``tokenizer``, special tokens left out."""

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count_tokens


def approximate_tokens(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free stand-in for a token count."""
    return len(_TOKEN.findall(text))


def length_filter(
    reasoning: str,
    completion: str,
    min_chars: int = 1,
    max_chars: int | None = None,
    max_tokens: int | None = None,
    max_paragraph_chars: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> FilterResult:
    """Bounds on the reasoning's characters, the completion's tokens and the longest paragraph."""
    if len(reasoning) < min_chars:
        return False, f"reasoning of {len(reasoning)} characters is shorter than {min_chars}"
    if max_chars is not None and len(reasoning) > max_chars:
        return False, f"reasoning of {len(reasoning)} characters is longer than {max_chars}"
    if max_tokens is not None:
        tokens = (count_tokens or approximate_tokens)(completion)
        if tokens > max_tokens:
            return False, f"completion of {tokens} tokens is longer than {max_tokens}"
    if max_paragraph_chars is not None:
        longest = max((len(paragraph.strip()) for paragraph in re.split(r"\n\s*\n", reasoning)), default=0)
        if longest > max_paragraph_chars:
            return False, f"a paragraph of {longest} characters is longer than {max_paragraph_chars}"
    return KEPT


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of the word n-grams that repeat an earlier n-gram (0 for texts under 2n tokens)."""
    tokens = _TOKEN.findall(text.lower())
    if len(tokens) < 2 * n:
        return 0.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams)


def repeated_line_share(text: str) -> float:
    """Share of non-empty lines that repeat an earlier line (0 for fewer than 3 lines)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        return 0.0
    return 1 - len(set(lines)) / len(lines)


def repetition_filter(
    text: str,
    ngram: int = 5,
    max_repeated_ngram_share: float | None = 0.3,
    max_repeated_line_share: float | None = 0.3,
) -> FilterResult:
    """Drop text that loops: too many repeated lines or repeated word n-grams."""
    if max_repeated_line_share is not None:
        share = repeated_line_share(text)
        if share > max_repeated_line_share:
            line, count = Counter(line.strip() for line in text.splitlines() if line.strip()).most_common(1)[0]
            return False, f"{100 * share:.0f}% of the lines repeat (e.g. {line[:40]!r} x{count})"
    if max_repeated_ngram_share is not None:
        share = repeated_ngram_share(text, ngram)
        if share > max_repeated_ngram_share:
            return False, f"{100 * share:.0f}% of the {ngram}-grams repeat an earlier one"
    return KEPT


def summary_filter(completion: str, template: Template, max_summary_chars: int | None = None) -> FilterResult:
    """R1's readable layout: the reasoning closes, then a (short) summary that gives the answer."""
    if template.reasoning_close not in completion:
        return False, f"the reasoning never closes (no {template.reasoning_close})"
    _, summary = template.split(completion)
    if not summary:
        return False, f"nothing follows {template.reasoning_close}"
    if template.extract_answer(completion) is None:
        return False, f"the text after {template.reasoning_close} gives no answer"
    if max_summary_chars is not None and len(summary) > max_summary_chars:
        return False, f"summary of {len(summary)} characters is longer than {max_summary_chars}"
    return KEPT


def check_completion(
    completion: str,
    settings: FilterSettings,
    template: Template,
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[str | None, str | None]:
    """(name of the first filter that drops ``completion``, its reason), or (None, None) when it passes all."""
    reasoning, summary = template.split(completion)
    checks: dict[str, Callable[[], FilterResult]] = {
        "summary": lambda: (
            summary_filter(completion, template, settings.max_summary_chars) if settings.require_summary else KEPT
        ),
        "length": lambda: length_filter(
            reasoning,
            completion,
            settings.min_chars,
            settings.max_chars,
            settings.max_tokens,
            settings.max_paragraph_chars,
            count_tokens,
        ),
        "code_only": lambda: (
            code_only_filter(reasoning, settings.max_code_share) if settings.max_code_share is not None else KEPT
        ),
        "language": lambda: (
            language_filter(reasoning, settings.language, settings.min_target_share) if settings.language else KEPT
        ),
        "repetition": lambda: repetition_filter(
            f"{reasoning}\n{summary}",
            settings.repetition_ngram,
            settings.max_repeated_ngram_share,
            settings.max_repeated_line_share,
        ),
    }
    for name in FILTER_NAMES:
        kept, reason = checks[name]()
        if not kept:
            return name, reason
    return None, None


def empty_stats(names: Iterable[str] = FILTER_NAMES) -> dict[str, Any]:
    return {"total": 0, "kept": 0, "removed": dict.fromkeys(names, 0), "examples": {}}


def count_removal(stats: dict[str, Any], name: str, reason: str | None) -> None:
    stats["removed"][name] = stats["removed"].get(name, 0) + 1
    stats["examples"].setdefault(name, reason)


def apply_filters(
    samples: Iterable[dict[str, Any]],
    settings: FilterSettings,
    template: Template,
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The samples (dicts with a ``completion`` string in ``template``'s layout) that pass every filter, and
    stats: ``total``, ``kept``, ``removed`` per filter, and the first reason each filter gave."""
    kept: list[dict[str, Any]] = []
    stats = empty_stats()
    for sample in samples:
        stats["total"] += 1
        name, reason = check_completion(sample["completion"], settings, template, count_tokens)
        if name is None:
            kept.append(sample)
        else:
            count_removal(stats, name, reason)
    stats["kept"] = len(kept)
    return kept, stats
