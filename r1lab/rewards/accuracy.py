"""Accuracy: the task's own checker decides (math-verify equality by default)."""

from __future__ import annotations

from r1lab.rewards.base import RewardFunction, batch_rows, completion_text, register
from r1lab.tasks.base import Task, TaskSpec
from r1lab.templates import get_template


@register("accuracy")
def accuracy(template: str = "xml", task=None, score: float = 1.0, partial: bool = False):
    """``score`` when the completion's final answer is correct for its row, else 0.

    ``task`` is the run's task object (stages pass it); without one, the gold is the row's ``answer``
    column compared by mathematical equality. ``partial``: ``score`` times the share of the answer's checks that
    passed, for tasks whose verdict has one (``task: code``: the tests passed); all-or-nothing otherwise.
    """
    layout = get_template(template)
    checker = task if task is not None else Task(TaskSpec())

    def value(verdict) -> float:
        if partial and getattr(verdict, "fraction", None) is not None:
            return score * float(verdict.fraction)
        return score if verdict.correct else 0.0

    def score_accuracy(text, row):
        return value(checker.check(text, row, layout))

    if hasattr(checker, "check_batch"):  # a task that checks many completions at once (code: a sandbox pool)
        return BatchCheckedAccuracy(score_accuracy, checker, layout, value)
    return score_accuracy


class BatchCheckedAccuracy(RewardFunction):
    """The accuracy reward over ``task.check_batch``: a batch's completions are checked together; if the batch
    fails as a whole, each completion is checked alone (a failure there is a counted 0, as for any reward)."""

    def __init__(self, scorer, checker, layout, value):
        super().__init__("accuracy", scorer)
        self.checker, self.layout, self.value = checker, layout, value

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        rows = batch_rows(prompts, completions or [], kwargs)
        try:
            verdicts = self.checker.check_batch([completion_text(row["completion"]) for row in rows], rows, self.layout)
            scores: list[float | None] = [float(self.value(verdict)) for verdict in verdicts]
        except Exception:
            return super().__call__(prompts=prompts, completions=completions, **kwargs)
        if kwargs.get("log_metric") is not None:
            kwargs["log_metric"](f"reward_failures/{self.__name__}", 0.0)
        return scores
