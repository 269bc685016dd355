"""The reward registry and the wrapper that turns a pure scorer into a TRL reward function."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from r1lab.errors import UserError

logger = logging.getLogger("r1lab.rewards")

# A scorer reads one completion's text and its dataset row and returns a score.
Scorer = Callable[[str, dict[str, Any]], float]

_FACTORIES: dict[str, Callable[..., Scorer]] = {}
# Dataset columns that TRL passes but that are not per-row data.
_NON_ROW_KWARGS = {"trainer_state", "log_extra", "log_metric", "completion_ids", "environments"}
# How many failures of one reward are written to the log in full; the rest are only counted.
_LOGGED_FAILURES = 3


def register(name: str):
    """Decorator: ``@register("xml.soft_format")`` on a factory ``(**options) -> scorer``."""

    def decorate(factory: Callable[..., Scorer]) -> Callable[..., Scorer]:
        _FACTORIES[name] = factory
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


class RewardFunction:
    """A TRL reward function around a scorer: isolates failures (score 0, logged and counted)."""

    def __init__(self, name: str, scorer: Scorer):
        self.__name__ = name  # TRL names the logged component after this
        self.scorer = scorer
        self.failures = 0

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        completions = completions or []
        row_columns = {
            key: value
            for key, value in kwargs.items()
            if key not in _NON_ROW_KWARGS and isinstance(value, list) and len(value) == len(completions)
        }
        scores = []
        failures_now = 0
        for index, completion in enumerate(completions):
            row = {key: value[index] for key, value in row_columns.items()}
            if prompts is not None:
                row["prompt"] = prompts[index]
            row["completion"] = completion  # as TRL gave it (text or messages); TRL never passes it as a column
            try:
                scores.append(float(self.scorer(completion_text(completion), row)))
            except Exception as error:  # one bad completion must not stop training
                failures_now += 1
                self.failures += 1
                if self.failures <= _LOGGED_FAILURES:
                    logger.warning("reward %s failed on a completion (scored 0): %r", self.__name__, error)
                scores.append(0.0)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric(f"reward_failures/{self.__name__}", float(failures_now))
        return scores

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__})"


def _load_builtin_rewards() -> None:
    # Importing these modules registers their rewards.
    from r1lab.rewards import accuracy, format, seed  # noqa: F401
    from r1lab.rewards import language, model_rewards, routing  # noqa: F401


def reward_names() -> list[str]:
    _load_builtin_rewards()
    return sorted(_FACTORIES)


def _import_dotted(path: str) -> Callable:
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
    except (ImportError, AttributeError, ValueError):
        raise UserError(
            f"unknown reward {path!r}: not a registered name ({', '.join(reward_names())}) "
            "nor an importable function path"
        ) from None
    if not callable(function):
        raise UserError(f"reward {path!r} is not callable")
    return function


def _coerce_options(name: str, options: dict[str, Any], accepted) -> dict[str, Any]:
    """Options whose default is a number, bool or string converted to that type, so that a bad value
    (``score: high``) is an error now rather than a reward that silently scores 0 on every completion."""
    from r1lab.config import coerce

    coerced = dict(options)
    for key, value in options.items():
        default = accepted[key].default
        if isinstance(default, (bool, int, float, str)):
            coerced[key] = coerce(f"reward {name!r} option {key}", value, type(default))
    return coerced


def get_reward(name: str, **options: Any) -> RewardFunction:
    """A reward by registered name (with its options) or by dotted import path (no options)."""
    _load_builtin_rewards()
    if name in _FACTORIES:
        factory = _FACTORIES[name]
        accepted = inspect.signature(factory).parameters
        unknown = [key for key in options if key not in accepted]
        if unknown:
            allowed = ", ".join(accepted) or "none"
            raise UserError(f"reward {name!r} has no option(s) {', '.join(unknown)} (options: {allowed})")
        options = _coerce_options(name, options, accepted)
        built = factory(**options)
        # A factory may build its own RewardFunction (batched model rewards, rewards routed by source).
        return built if isinstance(built, RewardFunction) else RewardFunction(name, built)
    if "." not in name and ":" not in name:
        raise UserError(f"unknown reward {name!r}; choose one of: {', '.join(reward_names())}")
    if options:
        raise UserError(f"reward {name!r} is an imported function and takes no options")
    trl_function = _import_dotted(name)

    def scorer_from_trl_function(text: str, row: dict[str, Any]) -> float:
        # The completion as TRL gave it: a conversational dataset's reward reads completion[0]["content"].
        columns = {key: [value] for key, value in row.items() if key not in ("prompt", "completion")}
        return trl_function(prompts=[row.get("prompt")], completions=[row.get("completion", text)], **columns)[0]

    return RewardFunction(name, scorer_from_trl_function)


def check_reward_names(entries: Any) -> None:
    """Every reward a recipe names exists (registered, or an importable function); nothing is built or loaded."""
    _load_builtin_rewards()
    if not isinstance(entries, list) or not entries:
        raise UserError("rewards is empty: name at least one reward")
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise UserError(f"rewards: each entry is a name or {{name: ..., weight: ...}}, got {entry!r}")
        if name in _FACTORIES:
            continue
        if "." not in name and ":" not in name:
            raise UserError(f"unknown reward {name!r}; choose one of: {', '.join(reward_names())}")
        _import_dotted(name)


def build_rewards(
    entries: list[Any], context: dict[str, Any], weights: list[float] | None = None
) -> tuple[list[RewardFunction], list[float] | None]:
    """Rewards from a recipe's ``rewards`` list, each entry a name or ``{name: …, weight: …, <options>}``.

    ``context`` (the run's ``task`` and ``template``) fills the options a reward accepts but the entry
    leaves out. Returns the functions and their weights (None: all 1.0, TRL's default).
    """
    _load_builtin_rewards()
    if not entries:
        raise UserError("rewards is empty: name at least one reward")
    functions, entry_weights = [], []
    for entry in entries:
        if isinstance(entry, str):
            name, options, weight = entry, {}, None
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            options = {key: value for key, value in entry.items() if key not in ("name", "weight")}
            name, weight = entry["name"], entry.get("weight")
        else:
            raise UserError(f"rewards: each entry is a name or {{name: ..., weight: ...}}, got {entry!r}")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
            raise UserError(f"rewards: weight of {name!r} must be a number, got {weight!r}")
        if name in _FACTORIES:
            accepted = inspect.signature(_FACTORIES[name]).parameters
            for key, value in context.items():
                if key in accepted and key not in options:
                    options[key] = value
        functions.append(get_reward(name, **options))
        entry_weights.append(weight)
    if any(weight is not None for weight in entry_weights):
        if weights is not None:
            raise UserError("give reward weights either in the rewards entries or in reward_weights, not both")
        weights = [1.0 if weight is None else float(weight) for weight in entry_weights]
    if weights is not None and len(weights) != len(functions):
        raise UserError(f"reward_weights has {len(weights)} values for {len(functions)} rewards")
    return functions, weights
