"""Readability filters on hand-made reasoning traces."""

from __future__ import annotations

import pytest

from r1lab.errors import UserError
from r1lab.filters import (
    FilterSettings,
    apply_filters,
    code_only_filter,
    filter_settings,
    language_filter,
    length_filter,
    repetition_filter,
    summary_filter,
)
from r1lab.templates import get_template

XML = get_template("xml")
THINK = get_template("think")
ENGLISH = "First add 4 and 3 to get 7. Then add 3 more, which gives 10. So the total is 10."
CHINESE = "首先把四和三相加得到七。然后再加三，得到十。所以总数是十。"


def test_language_keeps_the_target_and_drops_mixed_text():
    assert language_filter(ENGLISH, "en", 0.95) == (True, None)
    assert language_filter(CHINESE, "zh", 0.95) == (True, None)
    kept, reason = language_filter(ENGLISH + " " + CHINESE, "en", 0.95)
    assert not kept and "not en" in reason
    assert not language_filter(ENGLISH, "zh", 0.95)[0]


def test_language_ignores_math_code_and_single_letters():
    chinese_with_math = CHINESE + " 设 $x = \\frac{a}{b}$，则 x + y = 10。"
    assert language_filter(chinese_with_math, "zh", 0.95) == (True, None)
    assert language_filter("4 + 3 = 7\n7 + 3 = 10", "en", 0.95) == (True, None)


def test_code_only_reasoning_is_dropped_but_prose_with_a_snippet_is_kept():
    code_only = "```python\ntotal = 4 + 3 + 3\nprint(total)\n```"
    kept, reason = code_only_filter(code_only, 0.8)
    assert not kept and "code blocks" in reason
    with_prose = ENGLISH + " " + ENGLISH + "\n```python\nprint(4 + 3 + 3)\n```"
    assert code_only_filter(with_prose, 0.8) == (True, None)
    assert code_only_filter(ENGLISH, 0.0) == (True, None)


def test_length_bounds_on_characters_tokens_and_paragraphs():
    assert length_filter(ENGLISH, ENGLISH, min_chars=1, max_chars=1000) == (True, None)
    assert not length_filter("", "", min_chars=1)[0]
    kept, reason = length_filter(ENGLISH, ENGLISH, max_chars=20)
    assert not kept and "longer than 20" in reason
    kept, reason = length_filter(ENGLISH, ENGLISH, max_tokens=5)
    assert not kept and "tokens" in reason
    assert length_filter(ENGLISH, ENGLISH, max_tokens=5, count_tokens=lambda text: 3) == (True, None)
    two_paragraphs = "Short one.\n\n" + "x" * 300
    assert not length_filter(two_paragraphs, two_paragraphs, max_paragraph_chars=200)[0]
    assert length_filter("a\n\nb", "a\n\nb", max_paragraph_chars=200) == (True, None)


def test_repetition_catches_loops_not_ordinary_steps():
    steps = "4 + 3 = 7\n7 + 3 = 10\nSo the result is 10."
    assert repetition_filter(steps) == (True, None)
    assert repetition_filter(ENGLISH) == (True, None)
    looping_lines = "Let me add the numbers.\n" * 6 + "The answer is 10."
    kept, reason = repetition_filter(looping_lines)
    assert not kept and "lines repeat" in reason
    looping_phrase = "I need to add the numbers again and " * 10
    kept, reason = repetition_filter(looping_phrase)
    assert not kept and "5-grams" in reason
    assert repetition_filter(looping_phrase, max_repeated_ngram_share=None, max_repeated_line_share=None) == (
        True,
        None,
    )


def test_summary_must_follow_the_reasoning():
    assert summary_filter(XML.format(ENGLISH, "10"), XML) == (True, None)
    assert summary_filter(THINK.format(ENGLISH, "10"), THINK) == (True, None)
    kept, reason = summary_filter("<think>\n" + ENGLISH, THINK)
    assert not kept and "never closes" in reason
    kept, reason = summary_filter("<think>\n" + ENGLISH + "\n</think>\n", THINK)
    assert not kept and "nothing follows" in reason
    kept, reason = summary_filter("<reasoning>\nx\n</reasoning>\nten", XML)
    assert not kept and "no answer" in reason
    kept, reason = summary_filter(THINK.format(ENGLISH, "10") + " " + "blah " * 300, THINK, max_summary_chars=100)
    assert not kept and "summary" in reason


def test_apply_filters_counts_each_removal_once_under_the_first_filter():
    samples = [
        {"completion": XML.format(ENGLISH, "10")},
        {"completion": XML.format(ENGLISH + " " + CHINESE, "10")},
        {"completion": XML.format("Let me add.\n" * 8, "10")},
        {"completion": "<reasoning>\n" + ENGLISH},  # no summary, and mixed content does not matter
        {"completion": XML.format("```\nprint(10)\n```", "10")},
    ]
    kept, stats = apply_filters(samples, FilterSettings(), XML)
    assert kept == samples[:1]
    assert stats["total"] == 5 and stats["kept"] == 1
    assert stats["removed"] == {"summary": 1, "length": 0, "code_only": 1, "language": 1, "repetition": 1}
    assert set(stats["examples"]) == {"summary", "code_only", "language", "repetition"}


def test_settings_are_validated_like_config_fields():
    assert filter_settings({"max_chars": "500", "language": None}).max_chars == 500
    with pytest.raises(UserError, match="did you mean max_chars"):
        filter_settings({"max_char": 500})
    with pytest.raises(UserError, match="language"):
        filter_settings({"language": "fr"})
    with pytest.raises(UserError, match="between 0 and 1"):
        filter_settings({"max_code_share": 2})
