"""Reward functions by name.

Every reward is a TRL-signature callable ``f(prompts=..., completions=..., **dataset_columns) -> list[float]``
built from a pure per-completion scorer ``score(text, row) -> float``. Look one up with
``get_reward(name, **options)``; ``name`` is a registered name (see ``REWARD_NAMES``) or a dotted path
``package.module.function`` to your own TRL reward function.
"""

from r1lab.rewards.registry import build_rewards, get_reward, reward_names

__all__ = ["build_rewards", "get_reward", "reward_names"]
