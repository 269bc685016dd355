"""The seed script's five rewards, bit-faithful, bugs included (its regexes lack re.DOTALL, so any
multi-line reasoning fails both format checks; correctness is exact string match), minus its printing.
Use these to reproduce the seed's run; the fixed ``xml.*`` rewards and ``accuracy`` are the defaults."""

from __future__ import annotations

import re

from r1lab.rewards.base import register


def seed_extract_xml_answer(text: str) -> str:
    answer = text.split("<answer>")[-1]
    answer = answer.split("</answer>")[0]
    return answer.strip()


def seed_count_xml(text: str) -> float:
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= len(text.split("\n</answer>\n")[-1]) * 0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (len(text.split("\n</answer>")[-1]) - 1) * 0.001
    return count


_SEED_STRICT = r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
_SEED_SOFT = r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"


@register("seed.xmlcount")
def xmlcount():
    return lambda text, row: seed_count_xml(text)


@register("seed.soft_format")
def soft_format():
    return lambda text, row: 0.5 if re.match(_SEED_SOFT, text) else 0.0


@register("seed.strict_format")
def strict_format():
    return lambda text, row: 0.5 if re.match(_SEED_STRICT, text) else 0.0


@register("seed.int_answer")
def int_answer():
    return lambda text, row: 0.5 if seed_extract_xml_answer(text).isdigit() else 0.0


@register("seed.correctness")
def correctness():
    return lambda text, row: 2.0 if seed_extract_xml_answer(text) == row["answer"] else 0.0
