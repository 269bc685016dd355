"""Batched rewards and routing by data source (R1's stage 4: one RL run, rule rewards on reasoning prompts,
reward models on general prompts).

A row's *source* is its ``source`` column when the data has one, else what the run's task says about it
(``task.source_of(row)``: the ``mix`` task knows which of its rows are ``reasoning`` and which ``general``).
A reward limited to some sources returns ``None`` for the other rows; TRL 1.16's GRPOTrainer turns None into
NaN and leaves it out of the weighted sum (``nansum``) and of the reward's logged mean (``nanmean``), so each
sample is scored only by the rewards its source asks for. Rows whose source is unknown (a plain task, no
``source`` column) are scored by every reward: routing only narrows rows that say where they come from.

- :class:`~r1lab.rewards.base.BatchReward` — a reward that scores the applicable rows of a batch in one call
  (model rewards need that), isolates failures (a failed score is a logged, counted 0, never a crash) and logs
  its own batch metrics through TRL's ``log_metric``.
- ``routed`` — any other reward (``accuracy``, ``think.format``, a dotted path …) limited to some sources:
  ``{name: routed, reward: accuracy, sources: [reasoning], options: {score: 1.0}}``.
"""

from __future__ import annotations

from typing import Any

from r1lab.errors import UserError
from r1lab.rewards.base import RewardFunction, batch_rows, in_sources, register
from r1lab.rewards.registry import build_rewards


def parse_sources(value: Any, task=None, reward: str = "reward") -> tuple[str, ...] | None:
    """``sources`` option → a tuple of source names (None: every row). Checked against the task's own
    sources when it declares them (``task.SOURCES``), so a typo is an error now, not a reward that never runs."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(item, str) and item for item in value):
        raise UserError(f"reward {reward!r} option sources must be a non-empty list of source names, got {value!r}")
    known = getattr(task, "SOURCES", None)
    if known:
        unknown = [item for item in value if item not in known]
        if unknown:
            raise UserError(
                f"reward {reward!r}: unknown source(s) {', '.join(unknown)} for task {task.name!r} "
                f"(its sources: {', '.join(known)})"
            )
    return tuple(value)


class RoutedReward(RewardFunction):
    """Another reward limited to some sources: it sees only the applicable rows; the others get None."""

    def __init__(self, inner: RewardFunction, sources: tuple[str, ...], task=None):
        super().__init__(inner.__name__, inner.scorer)
        self.inner = inner
        self.sources = sources
        self.task = task

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        completions = completions or []
        count = len(completions)
        rows = batch_rows(prompts, completions, kwargs)
        applicable = [index for index, row in enumerate(rows) if in_sources(row, self.sources, self.task)]
        scores: list[float | None] = [None] * count
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric(f"reward_stats/{self.__name__}/rows", float(len(applicable)))
        if not applicable:
            if log_metric is not None:  # the same keys every step
                log_metric(f"reward_failures/{self.__name__}", 0.0)
            return scores

        def subset(values):
            return [values[index] for index in applicable]

        passed = {
            key: subset(value) if isinstance(value, list) and len(value) == count else value
            for key, value in kwargs.items()
        }
        log_extra = kwargs.get("log_extra")
        if log_extra is not None:  # TRL expects one value per completion of the whole batch

            def log_extra_scattered(column, values):
                full = [None] * count
                for index, value in zip(applicable, values):
                    full[index] = value
                log_extra(column, full)

            passed["log_extra"] = log_extra_scattered
        results = self.inner(
            prompts=subset(prompts) if prompts is not None else None, completions=subset(completions), **passed
        )
        for index, result in zip(applicable, results):
            scores[index] = result
        self.failures = self.inner.failures
        return scores


@register("routed")
def routed(reward: str = "", sources: Any = None, options: Any = None, task=None, template: str = "xml"):
    """``reward`` (a registered name or dotted path, with its ``options``) scored only on rows from ``sources``;
    the run's ``task`` and ``template`` reach the inner reward as they would reach it directly."""
    if not reward:
        raise UserError("reward 'routed' needs reward: <name> (the reward to route), e.g. reward: accuracy")
    if reward == "routed":
        raise UserError("reward 'routed' cannot route itself")
    if options is not None and not isinstance(options, dict):
        raise UserError(
            f"reward 'routed' option options must be a mapping of the inner reward's options, got {options!r}"
        )
    parsed = parse_sources(sources, task, f"routed {reward}")
    if parsed is None:
        raise UserError(f"reward 'routed' ({reward}) needs sources: [..], e.g. sources: [reasoning]")
    context = {"task": task, "template": template}
    (inner,), _ = build_rewards(
        [{"name": reward, **(options or {})}], {k: v for k, v in context.items() if v is not None}
    )
    return RoutedReward(inner, parsed, task)
