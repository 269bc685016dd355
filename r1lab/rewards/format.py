"""Format rewards: does the completion follow the template's layout?"""

from __future__ import annotations

from r1lab.rewards.base import register
from r1lab.templates import get_template


@register("xml.strict_format")
def xml_strict_format(score: float = 0.5):
    """The seed's strict check with multi-line reasoning allowed: the whole completion is the layout."""
    template = get_template("xml")
    return lambda text, row: score if template.strict_pattern.match(text) else 0.0


@register("xml.soft_format")
def xml_soft_format(score: float = 0.5):
    """The seed's soft check with multi-line reasoning allowed: the tags in order, text may follow."""
    template = get_template("xml")
    return lambda text, row: score if template.soft_pattern.match(text) else 0.0


@register("think.format")
def think_format(score: float = 1.0):
    """R1's layout: ``<think>`` reasoning ``</think>`` followed by a non-empty summary."""
    template = get_template("think")
    return lambda text, row: score if template.strict_pattern.match(text) else 0.0
