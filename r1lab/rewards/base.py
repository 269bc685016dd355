"""What every reward is built on: the registry of reward factories, the TRL reward function around a pure scorer,
batched rewards, and the rows a reward sees. Every other module of ``r1lab.rewards`` imports this one; it imports
none of them.

A *scorer* is a pure function ``score(text, row) -> float`` of one completion's text and its dataset row (the
row's columns, plus ``prompt``, ``completion`` and ``completion_ids`` as TRL gave them); it may return a
:class:`Scored` instead, the score with the figures behind it. :class:`RewardFunction` turns one into a TRL reward
function (``f(prompts=..., completions=..., **columns) -> list[float]``) that isolates failures: a completion whose
scorer raises scores 0, logged (the first few in full) and counted. :class:`BatchReward` scores a whole batch at
once (model rewards need that), only on the rows of its sources (R1 stage 4's routing). :class:`CallableReward`
calls a TRL reward function written elsewhere (TRL's own, open-r1's, yours) exactly as TRL calls it, on the whole
batch, with the same failure isolation per batch.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from r1lab.errors import UserError

logger = logging.getLogger("r1lab.rewards")

# A scorer reads one completion's text and its dataset row and returns a score (a float or a Scored).
Scorer = Callable[[str, dict[str, Any]], Any]
# name -> factory ``(**options) -> scorer`` (or a RewardFunction); filled by @register as the reward modules are
# imported (``r1lab.rewards`` imports every built-in one), then only read.
FACTORIES: dict[str, Callable[..., Any]] = {}
# Keywords TRL passes to reward functions that are not per-row dataset columns.
NON_ROW_KWARGS = {"trainer_state", "log_extra", "log_metric", "completion_ids", "environments"}
# How many failures of one reward are written to the log in full; the rest are only counted.
LOGGED_FAILURES = 3


@dataclass(frozen=True)
class Scored:
    """A scorer's score with the figures behind it (``{"tokens": 412, "correct": 1.0}``): the reward logs each
    figure's mean over the batch as ``reward_stats/<name>/<key>``, the score is what training sees."""

    value: float
    stats: Mapping[str, float] = field(default_factory=dict)


def register(name: str):
    """Decorator: ``@register("xml.soft_format")`` on a factory ``(**options) -> scorer``."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        FACTORIES[name] = factory
        return factory

    return decorate


def completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or a conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, dict) else message
            if isinstance(content, list):  # content blocks
                content = "".join(block.get("text", "") for block in content if isinstance(block, dict))
            parts.append(str(content))
        return "".join(parts)
    return str(completion)


def prompt_text(prompt: Any) -> str:
    """The user's words in a prompt: the user messages of a conversation (no system prompt), or the text."""
    if isinstance(prompt, list):
        user = [message for message in prompt if isinstance(message, dict) and message.get("role") == "user"]
        return "\n".join(completion_text([message]) for message in (user or prompt[-1:]))
    return "" if prompt is None else str(prompt)


def batch_rows(prompts, completions, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per completion: the dataset columns TRL passed, the prompt, the completion as TRL gave it (text
    or messages; TRL never passes it as a column) and, when TRL passed them, its token ids (``completion_ids``)."""
    columns = {
        key: value
        for key, value in kwargs.items()
        if key not in NON_ROW_KWARGS and isinstance(value, list) and len(value) == len(completions)
    }
    token_ids = kwargs.get("completion_ids")
    if not (isinstance(token_ids, (list, tuple)) and len(token_ids) == len(completions)):
        token_ids = None
    rows = []
    for index, completion in enumerate(completions):
        row = {key: value[index] for key, value in columns.items()}
        if prompts is not None:
            row["prompt"] = prompts[index]
        row["completion"] = completion
        if token_ids is not None:
            row["completion_ids"] = token_ids[index]
        rows.append(row)
    return rows


def row_source(row: dict[str, Any], task=None) -> str | None:
    """Where a row comes from: its ``source`` column, else the task's answer, else None (unknown)."""
    source = row.get("source")
    if source:
        return str(source)
    finder = getattr(task, "source_of", None)
    return finder(row) if finder is not None else None


def in_sources(row: dict[str, Any], sources: tuple[str, ...] | None, task=None) -> bool:
    """Whether a reward limited to ``sources`` (None: every source) scores ``row``; a row whose source is unknown
    is scored by every reward (routing only narrows rows that say where they come from)."""
    if sources is None:
        return True
    source = row_source(row, task)
    return source is None or source in sources


class RewardFunction:
    """A TRL reward function around a scorer: isolates failures (score 0, logged and counted)."""

    def __init__(self, name: str, scorer: Scorer):
        self.__name__ = name  # TRL names the logged component after this
        self.scorer = scorer
        self.failures = 0
        self._failures_logged = 0

    def log_failure(self, message: str) -> None:
        """Say why a completion could not be scored (the first few in full; the caller counts every one)."""
        self._failures_logged += 1
        if self._failures_logged <= LOGGED_FAILURES:
            logger.warning("reward %s failed on a completion (scored 0): %s", self.__name__, message)

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        """One score per completion (a subclass's None: the reward does not apply to it, as TRL reads it)."""
        completions = completions or []
        scores: list[float | None] = []
        stats: dict[str, list[float]] = {}
        failures_now = 0
        for row in batch_rows(prompts, completions, kwargs):
            try:
                result = self.scorer(completion_text(row["completion"]), row)
                if isinstance(result, Scored):
                    for key, value in result.stats.items():
                        stats.setdefault(key, []).append(float(value))
                    result = result.value
                scores.append(float(result))
            except Exception as error:  # one bad completion must not stop training
                failures_now += 1
                self.failures += 1
                self.log_failure(repr(error))
                scores.append(0.0)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric(f"reward_failures/{self.__name__}", float(failures_now))
            for key, values in sorted(stats.items()):
                log_metric(f"reward_stats/{self.__name__}/{key}", sum(values) / len(values))
        return scores

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__})"


class BatchReward(RewardFunction):
    """A reward that scores a batch at once, only on the rows of its ``sources`` (None: every row).

    Subclasses implement :meth:`score_batch`: one score per text, ``None`` for one that failed (scored 0,
    counted in ``failures`` and ``reward_failures/<name>``), and put per-batch figures into ``metrics``
    (logged as ``reward_stats/<name>/<key>``). An exception out of ``score_batch`` fails the whole batch,
    except a :class:`~r1lab.errors.UserError` (a misconfigured reward: stop with its message). Rows of other
    sources get ``None``, which TRL leaves out of the weighted sum and of the reward's logged mean.
    """

    def __init__(self, name: str, sources: tuple[str, ...] | None = None, task=None):
        super().__init__(name, self._score_one)
        self.sources = sources
        self.task = task

    def score_batch(
        self, texts: list[str], rows: list[dict[str, Any]], metrics: dict[str, float]
    ) -> list[float | None]:
        raise NotImplementedError

    def applies(self, row: dict[str, Any]) -> bool:
        return in_sources(row, self.sources, self.task)

    def _score_one(self, text: str, row: dict[str, Any]) -> float:
        """The pure scorer interface (``scorer(text, row)``) on one completion; a failure raises."""
        score = self.score_batch([text], [row], {})[0]
        if score is None:
            raise RuntimeError(f"reward {self.__name__} could not score the completion")
        return score

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        completions = completions or []
        rows = batch_rows(prompts, completions, kwargs)
        applicable = [index for index, row in enumerate(rows) if self.applies(row)]
        texts = [completion_text(rows[index]["completion"]) for index in applicable]
        metrics: dict[str, float] = {}
        failures_before = self.failures
        try:
            results = (
                list(self.score_batch(texts, [rows[index] for index in applicable], metrics)) if applicable else []
            )
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


async def _awaited(awaitable):
    return await awaitable


def _trl_score(value: Any) -> tuple[float | None, bool]:
    """One value a TRL reward function returned, as TRL reads it: None (or NaN) skips the completion (left out of
    the weighted sum and of the reward's mean); a finite number is the score. Anything else (inf, a string) is a
    failure: ``(0.0, False)``."""
    if value is None:
        return None, True
    if isinstance(value, (str, bytes)):  # float("3") would pass; TRL's tensor of the scores would not
        return 0.0, False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0, False
    if math.isnan(number):
        return None, True
    return (number, True) if math.isfinite(number) else (0.0, False)


class CallableReward(RewardFunction):
    """A TRL reward function called exactly as TRL's GRPOTrainer calls it: once per batch, with ``prompts``,
    ``completions``, ``completion_ids``, ``trainer_state``, ``log_extra``, ``log_metric`` (and ``environments``)
    and every dataset column, so rewards that compare a group's completions, read token ids or shape by training
    progress work as they do under TRL. The gold answer reaches it both as ``answer`` (r1lab's column) and as
    ``solution`` (the name TRL's and open-r1's rewards read) unless the data has its own ``solution``. An async
    function is awaited. A batch whose call raises or returns the wrong number of scores scores 0 throughout,
    logged and counted in ``reward_failures/<name>`` (one per completion); training goes on."""

    def __init__(self, name: str, function: Callable[..., Any]):
        super().__init__(name, self._score_one)
        self.function = function

    def _score_one(self, text: str, row: dict[str, Any]) -> float:
        """The scorer interface (``scorer(text, row)``): the completion as a batch of one; a failure raises."""
        columns = {key: [value] for key, value in row.items() if key not in ("prompt", "completion", "completion_ids")}
        if "completion_ids" in row:
            columns["completion_ids"] = [row["completion_ids"]]
        failures_before = self.failures
        (score,) = self(prompts=[row.get("prompt")], completions=[row.get("completion", text)], **columns)
        if self.failures != failures_before:
            raise RuntimeError(f"reward {self.__name__} could not score the completion")
        return 0.0 if score is None else score

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        completions = completions if completions is not None else []
        count = len(completions)
        passed = dict(kwargs)
        if "solution" not in passed and "answer" in passed:
            passed["solution"] = passed["answer"]
        try:
            results = self.function(prompts=prompts, completions=completions, **passed)
            if inspect.isawaitable(results):
                results = asyncio.run(_awaited(results))
            results = list(results)
            if len(results) != count:
                raise ValueError(f"returned {len(results)} scores for {count} completions")
        except Exception as error:  # the batch failed: every completion scores 0, training goes on
            self.log_failure(f"the batch of {count} failed: {error!r}")
            results, failed = [0.0] * count, count
        else:
            failed = 0
            checked = []
            for value in results:
                score, ok = _trl_score(value)
                if not ok:
                    failed += 1
                    self.log_failure(f"not a finite number: {value!r}")
                checked.append(score)
            results = checked
        self.failures += failed
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric(f"reward_failures/{self.__name__}", float(failed))
        return results
