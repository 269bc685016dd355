"""Language consistency (DeepSeek-R1 stage 2): the share of the reasoning written in the target language.

R1 adds "the proportion of target language words in the CoT" to the accuracy reward so that the reasoning
stops mixing languages. This module measures it by **script counting**, offline and deterministic:

- ``en`` counts Latin words of two letters or more (single letters are mostly variables: ``x``, ``n``);
- ``zh`` counts Han characters (Chinese has no spaces: one character stands for one unit);
- ``other`` counts kana and hangul characters and words of every other alphabet (Cyrillic, Greek, Arabic …).

Math and code carry no language and are removed first (``$…$``, ``\\(…\\)``, ``\\[…\\]``, LaTeX commands,
fenced and inline code), the same units as the cold-start ``language`` filter (:mod:`r1lab.filters`).
Script counting cannot tell English from French (both Latin) nor a Japanese kanji from a Chinese one; for
R1's problem — English and Chinese mixed in one CoT — that is the distinction that matters. A language-ID
library (langid, lingua, fastText) labels a whole text with one language, which is not a proportion, and
is unreliable on short, math-heavy spans; counting gives the proportion directly and needs no model.

The score is ``target units / all counted units`` of the reasoning part (inside ``<think>``/``<reasoning>``,
read with the run's template). Reasoning that is empty, absent (neither reasoning tag in the completion) or
has no countable word at all (``3 + 4 = 7``) scores **0.0**: there is no reasoning in any language to reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from r1lab.errors import UserError
from r1lab.rewards.base import BatchReward, prompt_text, register
from r1lab.rewards.routing import parse_sources
from r1lab.templates import Template, get_template

TARGETS = ("en", "zh", "prompt")

_LATIN = "A-Za-z\u00c0-\u024f\u1e00-\u1eff"
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA_HANGUL = "\u3040-\u30ff\u1100-\u11ff\uac00-\ud7af"
_LATIN_WORD = re.compile(f"[{_LATIN}]{{2,}}")
_HAN_CHAR = re.compile(f"[{_HAN}]")
_KANA_HANGUL_CHAR = re.compile(f"[{_KANA_HANGUL}]")
# A run of letters (\w minus digits and _) of any other script.
_OTHER_WORD = re.compile(f"(?:(?![{_LATIN}{_HAN}{_KANA_HANGUL}])[^\\W\\d_])+")
# Spans that carry no natural language: code, math, LaTeX commands.
_NON_LANGUAGE = (
    re.compile(r"```.*?(?:```|\Z)", re.DOTALL),
    re.compile(r"`[^`\n]*`"),
    re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$|\\\[.*?\\\]|\\\(.*?\\\)", re.DOTALL),
    re.compile(r"\\[A-Za-z]+"),
)


@dataclass(frozen=True)
class ScriptCounts:
    """Units of text per script: ``en`` Latin words, ``zh`` Han characters, ``other`` everything else."""

    en: int = 0
    zh: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.en + self.zh + self.other

    def share(self, language: str) -> float:
        """Proportion of the units in ``language`` (``en``, ``zh`` or ``other``); 0.0 when nothing counts."""
        return getattr(self, language) / self.total if self.total else 0.0

    def dominant(self) -> str | None:
        """The script with the most units (``en`` wins a tie, then ``zh``), None when nothing counts."""
        if not self.total:
            return None
        return max(
            ("en", "zh", "other"), key=lambda language: (getattr(self, language), language == "en", language == "zh")
        )


def script_counts(text: str | None) -> ScriptCounts:
    """Count the language units of ``text`` outside math and code."""
    if not text:
        return ScriptCounts()
    for pattern in _NON_LANGUAGE:
        text = pattern.sub(" ", text)
    return ScriptCounts(
        en=len(_LATIN_WORD.findall(text)),
        zh=len(_HAN_CHAR.findall(text)),
        other=len(_KANA_HANGUL_CHAR.findall(text)) + len(_OTHER_WORD.findall(text)),
    )


def reasoning_part(text: str, template: Template) -> str | None:
    """The reasoning of a completion in ``template``'s layout; None when it has neither reasoning tag.

    Only the closing tag is needed (chat templates such as R1-distill's put ``<think>`` in the prompt); with
    only the opening tag (cut at the length cap) the rest of the text is the reasoning.
    """
    if template.reasoning_open not in text and template.reasoning_close not in text:
        return None
    return template.split(text)[0]


def resolve_target(language: str, prompt: Any = None, fallback: str = "en") -> str:
    """``en``/``zh`` as given; ``prompt``: the dominant script of the prompt's user text (``other`` possible),
    ``fallback`` when the prompt has no countable word."""
    if language != "prompt":
        return language
    return script_counts(prompt_text(prompt)).dominant() or fallback


def language_consistency(reasoning: str | None, target: str) -> tuple[float, ScriptCounts]:
    """(score, counts): the share of ``reasoning``'s units in ``target``; 0.0 for empty or absent reasoning."""
    counts = script_counts(reasoning)
    return counts.share(target), counts


class LanguageConsistencyReward(BatchReward):
    """``language_consistency``: logs the mean units per script (``en``, ``zh``, ``other``) of the scored
    reasonings, how many had no countable reasoning (``no_reasoning``), and with ``language: prompt`` the
    share of rows whose target was ``zh``."""

    def __init__(self, language: str, template: Template, fallback: str, sources, task):
        super().__init__("language_consistency", sources, task)
        self.language = language
        self.template = template
        self.fallback = fallback

    def score_batch(self, texts, rows, metrics):
        scores, all_counts, targets = [], [], []
        for text, row in zip(texts, rows):
            target = resolve_target(self.language, row.get("prompt"), self.fallback)
            score, counts = language_consistency(reasoning_part(text, self.template), target)
            scores.append(score)
            all_counts.append(counts)
            targets.append(target)
        if texts:
            count = len(texts)
            metrics["en"] = sum(c.en for c in all_counts) / count
            metrics["zh"] = sum(c.zh for c in all_counts) / count
            metrics["other"] = sum(c.other for c in all_counts) / count
            metrics["no_reasoning"] = float(sum(1 for c in all_counts if not c.total))
            if self.language == "prompt":
                metrics["target_zh"] = sum(1 for target in targets if target == "zh") / count
        return scores


@register("language_consistency")
def language_consistency_reward(
    language: str = "en", template: str = "xml", fallback: str = "en", sources: Any = None, task=None
):
    """Share of the reasoning in ``language`` (``en``, ``zh`` or ``prompt``: the prompt's dominant script).

    ``fallback`` is the target when ``language: prompt`` meets a prompt with no words; ``sources`` limits
    the reward to rows of those sources (see :mod:`r1lab.rewards.routing`).
    """
    if language not in TARGETS:
        raise UserError(f"reward 'language_consistency': language {language!r} is not one of {', '.join(TARGETS)}")
    if fallback not in ("en", "zh"):
        raise UserError(f"reward 'language_consistency': fallback {fallback!r} is not en or zh")
    return LanguageConsistencyReward(
        language, get_template(template), fallback, parse_sources(sources, task, "language_consistency"), task
    )
