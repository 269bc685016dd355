"""Batched rewards and routing by data source (R1's stage 4: one RL run, rule rewards on reasoning prompts,
reward models on general prompts).

A row's *source* is its ``source`` column when the data has one, else what the run's task says about it
(``task.source_of(row)``: the ``mix`` task knows which of its rows are ``reasoning`` and which ``general``).
A reward limited to some sources returns ``None`` for the other rows; TRL 1.16's GRPOTrainer turns None into
NaN and leaves it out of the weighted sum (``nansum``) and of the reward's logged mean (``nanmean``), so each
sample is scored only by the rewards its source asks for. Rows whose source is unknown (a plain task, no
``source`` column) are scored by every reward: routing only narrows rows that say where they come from.

- :class:`BatchReward` — a :class:`~r1lab.rewards.registry.RewardFunction` that scores the applicable rows
  of a batch in one call (model rewards need that), isolates failures (a failed score is a logged,
  counted 0, never a crash) and logs its own batch metrics through TRL's ``log_metric``.
- ``routed`` — any other reward (``accuracy``, ``think.format``, a dotted path …) limited to some sources:
  ``{name: routed, reward: accuracy, sources: [reasoning], options: {score: 1.0}}``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from r1lab.errors import UserError
from r1lab.rewards.registry import _LOGGED_FAILURES, _NON_ROW_KWARGS, RewardFunction, completion_text, register

logger = logging.getLogger("r1lab.rewards")


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


def row_source(row: dict[str, Any], task=None) -> str | None:
    """Where a row comes from: its ``source`` column, else the task's answer, else None (unknown)."""
    source = row.get("source")
    if source:
        return str(source)
    finder = getattr(task, "source_of", None)
    return finder(row) if finder is not None else None


def batch_rows(prompts, completions, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per completion, built the way :class:`RewardFunction` builds the row its scorer sees."""
    columns = {
        key: value
        for key, value in kwargs.items()
        if key not in _NON_ROW_KWARGS and isinstance(value, list) and len(value) == len(completions)
    }
    rows = []
    for index, completion in enumerate(completions):
        row = {key: value[index] for key, value in columns.items()}
        if prompts is not None:
            row["prompt"] = prompts[index]
        row["completion"] = completion
        rows.append(row)
    return rows


def prompt_text(prompt: Any) -> str:
    """The user's words in a prompt: the user messages of a conversation (no system prompt), or the text."""
    if isinstance(prompt, list):
        user = [message for message in prompt if isinstance(message, dict) and message.get("role") == "user"]
        return "\n".join(completion_text([message]) for message in (user or prompt[-1:]))
    return "" if prompt is None else str(prompt)


class BatchReward(RewardFunction):
    """A reward that scores a batch at once, only on the rows of its ``sources``.

    Subclasses implement :meth:`score_batch`: one score per text, ``None`` for one that failed (scored 0,
    counted in ``failures`` and ``reward_failures/<name>``), and put per-batch figures into ``metrics``
    (logged as ``reward_stats/<name>/<key>``). An exception out of ``score_batch`` fails the whole batch,
    except a :class:`~r1lab.errors.UserError` (a misconfigured reward: stop with its message).
    """

    def __init__(self, name: str, sources: tuple[str, ...] | None = None, task=None):
        super().__init__(name, self._score_one)
        self.sources = sources
        self.task = task
        self._failures_logged = 0

    def score_batch(self, texts: list[str], rows: list[dict[str, Any]], metrics: dict[str, float]) -> list[float | None]:
        raise NotImplementedError

    def applies(self, row: dict[str, Any]) -> bool:
        if self.sources is None:
            return True
        source = row_source(row, self.task)
        return source is None or source in self.sources

    def _score_one(self, text: str, row: dict[str, Any]) -> float:
        """The pure scorer interface (``scorer(text, row)``) on one completion; a failure raises."""
        score = self.score_batch([text], [row], {})[0]
        if score is None:
            raise RuntimeError(f"reward {self.__name__} could not score the completion")
        return score

    def log_failure(self, message: str) -> None:
        """Say why a completion could not be scored (the first few in full; all are counted)."""
        self._failures_logged += 1
        if self._failures_logged <= _LOGGED_FAILURES:
            logger.warning("reward %s failed on a completion (scored 0): %s", self.__name__, message)

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        completions = completions or []
        rows = batch_rows(prompts, completions, kwargs)
        applicable = [index for index, row in enumerate(rows) if self.applies(row)]
        texts = [completion_text(rows[index]["completion"]) for index in applicable]
        metrics: dict[str, float] = {}
        failures_before = self.failures
        try:
            results = list(self.score_batch(texts, [rows[index] for index in applicable], metrics)) if applicable else []
            if len(results) != len(applicable):
                raise RuntimeError(f"scored {len(results)} of {len(applicable)} completions")
        except UserError:
            raise
        except Exception as error:  # the batch failed: every applicable completion scores 0
            self.log_failure(f"the batch of {len(applicable)} failed: {error!r}")
            results = [None] * len(applicable)
        scores: list[float | None] = [None] * len(completions)
        for index, result in zip(applicable, results):
            if result is not None and not math.isfinite(float(result)):
                self.log_failure(f"non-finite score {result!r}")
                result = None
            if result is None:  # failed: a counted 0
                self.failures += 1
                scores[index] = 0.0
            else:
                scores[index] = float(result)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric(f"reward_failures/{self.__name__}", float(self.failures - failures_before))
            if self.sources is not None:
                log_metric(f"reward_stats/{self.__name__}/rows", float(len(applicable)))
            for key, value in sorted(metrics.items()):
                log_metric(f"reward_stats/{self.__name__}/{key}", float(value))
        return scores


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
        applicable = [
            index
            for index, row in enumerate(rows)
            if (source := row_source(row, self.task)) is None or source in self.sources
        ]
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
    from r1lab.rewards.registry import build_rewards

    if not reward:
        raise UserError("reward 'routed' needs reward: <name> (the reward to route), e.g. reward: accuracy")
    if reward == "routed":
        raise UserError("reward 'routed' cannot route itself")
    if options is not None and not isinstance(options, dict):
        raise UserError(f"reward 'routed' option options must be a mapping of the inner reward's options, got {options!r}")
    parsed = parse_sources(sources, task, f"routed {reward}")
    if parsed is None:
        raise UserError(f"reward 'routed' ({reward}) needs sources: [..], e.g. sources: [reasoning]")
    context = {"task": task, "template": template}
    (inner,), _ = build_rewards([{"name": reward, **(options or {})}], {k: v for k, v in context.items() if v is not None})
    return RoutedReward(inner, parsed, task)
