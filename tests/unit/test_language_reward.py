"""language_consistency (R1 stage 2): script counting, the reasoning part of both templates, targets, metrics."""

from __future__ import annotations

import pytest

from r1lab.errors import UserError
from r1lab.filters import language_counts
from r1lab.rewards import build_rewards, get_reward
from r1lab.rewards.language import (
    ScriptCounts,
    language_consistency,
    reasoning_part,
    resolve_target,
    script_counts,
)
from r1lab.templates import get_template

XML = get_template("xml")
THINK = get_template("think")

ENGLISH = "First add the two numbers, then divide the total by three to get the average."
CHINESE = "首先把两个数相加，然后把总和除以三得到平均值。"  # 21 Han characters


def think(reasoning: str, summary: str = "The answer is \\boxed{4}.") -> str:
    return f"<think>\n{reasoning}\n</think>\n{summary}"


def xml(reasoning: str, answer: str = "4") -> str:
    return f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>\n"


def score(text: str, language: str = "en", template: str = "think", prompt=None) -> float:
    reward = get_reward("language_consistency", language=language, template=template)
    return reward(prompts=[prompt], completions=[text])[0]


# ---------------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------------
def test_counts_latin_words_han_characters_and_other_scripts():
    assert script_counts(ENGLISH) == ScriptCounts(en=15, zh=0, other=0)
    assert script_counts(CHINESE) == ScriptCounts(en=0, zh=21, other=0)
    # Cyrillic words and kana count as "other"; digits and punctuation count for nothing
    assert script_counts("Привет мир 123 !!") == ScriptCounts(en=0, zh=0, other=2)
    assert script_counts("ひらがな") == ScriptCounts(other=4)
    assert script_counts("") == ScriptCounts() and script_counts(None).total == 0


def test_math_code_and_single_letter_variables_carry_no_language():
    text = "Let x be $\\frac{a}{b} = 12$ and `total_sum = 3` so \\( y \\) holds"
    # Latin words of 2+ letters outside math/code: Let, be, and, so, holds
    assert script_counts(text) == ScriptCounts(en=5)


def test_en_and_zh_counts_match_the_cold_start_language_filter():
    text = f"{ENGLISH} {CHINESE} $x^2$ ```code here``` ok"
    counts, filtered = script_counts(text), language_counts(text)
    assert (counts.en, counts.zh) == (filtered["en"], filtered["zh"])


# ---------------------------------------------------------------------------------------------------
# The score
# ---------------------------------------------------------------------------------------------------
def test_fully_english_reasoning_scores_1_and_fully_chinese_scores_0_for_target_en():
    assert score(think(ENGLISH)) == 1.0
    assert score(think(CHINESE)) == 0.0
    assert score(think(CHINESE), language="zh") == 1.0
    assert score(think(ENGLISH), language="zh") == 0.0


def test_mixed_reasoning_scores_the_proportion_of_target_units():
    mixed = "We add them 然后除以三"  # 3 Latin words (We, add, them) + 5 Han characters
    assert script_counts(mixed) == ScriptCounts(en=3, zh=5)
    assert score(think(mixed)) == pytest.approx(3 / 8)
    assert score(think(mixed), language="zh") == pytest.approx(5 / 8)
    value, counts = language_consistency(mixed, "en")
    assert value == pytest.approx(3 / 8) and counts.total == 8


def test_empty_absent_or_wordless_reasoning_scores_0():
    assert score(think("", "The answer is 4.")) == 0.0  # empty reasoning
    assert score("The answer is four, plain text without any tags.") == 0.0  # absent: no reasoning tag
    assert score(think("3 + 4 = 7")) == 0.0  # nothing countable
    assert language_consistency(None, "en") == (0.0, ScriptCounts())


def test_only_the_reasoning_part_counts_in_both_templates():
    # English reasoning, Chinese answer/summary: the summary is not the reasoning's language
    assert score(think(ENGLISH, "答案是四。"), template="think") == 1.0
    assert score(xml(ENGLISH, "答案是四"), template="xml") == 1.0
    assert score(xml(CHINESE, "four"), template="xml") == 0.0
    assert reasoning_part(xml(ENGLISH), XML) == ENGLISH
    assert reasoning_part(think(ENGLISH), THINK) == ENGLISH
    # A chat template that opens <think> in the prompt: only the closing tag is in the completion
    assert reasoning_part(f"{ENGLISH}\n</think>\nDone.", THINK) == ENGLISH
    # Cut at the length cap: the open reasoning is still reasoning
    assert reasoning_part(f"<think>\n{CHINESE}", THINK) == CHINESE
    assert reasoning_part("no tags at all", THINK) is None


def test_target_prompt_follows_the_prompts_dominant_language_not_the_system_prompt():
    chinese_prompt = [
        {"role": "system", "content": "Respond in the following format, thinking step by step in English words."},
        {"role": "user", "content": "小明有三个苹果，又买了两个，他现在有几个苹果？"},
    ]
    english_prompt = [{"role": "user", "content": "Tom has three apples and buys two more. How many now?"}]
    assert resolve_target("prompt", chinese_prompt) == "zh"
    assert resolve_target("prompt", english_prompt) == "en"
    assert resolve_target("prompt", [{"role": "user", "content": "12 + 7 = ?"}]) == "en"  # no words: fallback
    assert resolve_target("prompt", "Привет, как дела?") == "other"
    assert score(think(CHINESE), language="prompt", prompt=chinese_prompt) == 1.0
    assert score(think(ENGLISH), language="prompt", prompt=chinese_prompt) == 0.0
    assert score(think(ENGLISH), language="prompt", prompt=english_prompt) == 1.0
    reward = get_reward("language_consistency", language="prompt", fallback="zh", template="think")
    assert reward(prompts=["3 * 4"], completions=[think(CHINESE)]) == [1.0]


# ---------------------------------------------------------------------------------------------------
# As a reward in a recipe
# ---------------------------------------------------------------------------------------------------
def test_metrics_expose_the_counts_and_conversational_completions_work():
    reward = get_reward("language_consistency", template="think")
    logged = {}
    completions = [
        [{"role": "assistant", "content": think(ENGLISH)}],
        [{"role": "assistant", "content": think(CHINESE)}],
        [{"role": "assistant", "content": "no reasoning"}],
    ]
    scores = reward(prompts=[None] * 3, completions=completions, log_metric=logged.__setitem__)
    assert scores == [1.0, 0.0, 0.0]
    assert logged["reward_stats/language_consistency/en"] == pytest.approx(15 / 3)
    assert logged["reward_stats/language_consistency/zh"] == pytest.approx(21 / 3)
    assert logged["reward_stats/language_consistency/no_reasoning"] == 1.0
    assert logged["reward_failures/language_consistency"] == 0.0


def test_recipe_entry_with_r1_like_weights_gets_the_run_template():
    functions, weights = build_rewards(
        [{"name": "accuracy", "weight": 1.0}, {"name": "language_consistency", "language": "en", "weight": 1.0}],
        {"template": "think"},
    )
    assert [f.__name__ for f in functions] == ["accuracy", "language_consistency"] and weights == [1.0, 1.0]
    assert functions[1].template.name == "think"  # the run's template reached the reward
    assert functions[1](prompts=[None], completions=[think(ENGLISH)]) == [1.0]


def test_bad_options_are_errors_now():
    with pytest.raises(UserError, match="language 'fr'"):
        get_reward("language_consistency", language="fr")
    with pytest.raises(UserError, match="fallback"):
        get_reward("language_consistency", language="prompt", fallback="prompt")
    with pytest.raises(UserError, match="sources"):
        get_reward("language_consistency", sources=[])
