"""Accuracy: the task's own checker decides (math-verify equality by default)."""

from __future__ import annotations

from r1lab.rewards.base import register
from r1lab.tasks.base import Task, TaskSpec
from r1lab.templates import get_template


@register("accuracy")
def accuracy(template: str = "xml", task=None, score: float = 1.0):
    """``score`` when the completion's final answer is correct for its row, else 0.

    ``task`` is the run's task object (stages pass it); without one, the gold is the row's ``answer``
    column compared by mathematical equality.
    """
    layout = get_template(template)
    checker = task if task is not None else Task(TaskSpec())

    def score_accuracy(text, row):
        return score if checker.check(text, row, layout).correct else 0.0

    return score_accuracy
