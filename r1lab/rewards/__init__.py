"""Reward functions by name.

Every reward is a TRL-signature callable ``f(prompts=..., completions=..., **dataset_columns) -> list[float]``
built from a pure per-completion scorer ``score(text, row) -> float`` (:mod:`r1lab.rewards.base`). Look one up
with ``get_reward(name, **options)``; ``name`` is a registered name (see ``reward_names()``) or the dotted path
``package.module.function`` of any TRL reward function or factory of one (TRL's own, open-r1's, yours). A new
built-in reward is one module with a ``@register("name")`` factory, imported below (docs/extending.md).
"""

# Importing a reward module registers its rewards.
from r1lab.rewards import (  # noqa: F401
    accuracy,
    format,
    language,
    long_cot,
    model_rewards,
    routing,
    seed,
)
from r1lab.rewards.registry import (
    build_rewards,
    check_reward_names,
    get_reward,
    reward_names,
)

__all__ = ["build_rewards", "check_reward_names", "get_reward", "reward_names"]
