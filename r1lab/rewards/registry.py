"""Rewards by name: a registered name with its options, or the dotted path of your own TRL reward function.

``get_reward(name, **options)`` builds one; ``build_rewards(entries, context)`` builds a recipe's ``rewards`` list
with their weights. The built-in rewards register themselves (:func:`~r1lab.rewards.base.register`) when
``r1lab.rewards`` imports their modules.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from r1lab.config import coerce
from r1lab.errors import UserError
from r1lab.rewards.base import FACTORIES, RewardFunction


def reward_names() -> list[str]:
    return sorted(FACTORIES)


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
    coerced = dict(options)
    for key, value in options.items():
        default = accepted[key].default
        if isinstance(default, (bool, int, float, str)):
            coerced[key] = coerce(f"reward {name!r} option {key}", value, type(default))
    return coerced


def get_reward(name: str, **options: Any) -> RewardFunction:
    """A reward by registered name (with its options) or by dotted import path (no options)."""
    if name in FACTORIES:
        factory = FACTORIES[name]
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
    if not isinstance(entries, list) or not entries:
        raise UserError("rewards is empty: name at least one reward")
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise UserError(f"rewards: each entry is a name or {{name: ..., weight: ...}}, got {entry!r}")
        if name in FACTORIES:
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
        if name in FACTORIES:
            accepted = inspect.signature(FACTORIES[name]).parameters
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
