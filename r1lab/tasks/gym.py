"""Procedural tasks from reasoning-gym, generated offline and scored by reasoning-gym itself.

``task: gym:chain_sum`` with ``task_size``, ``task_seed`` and generator options in ``task_options``
(for chain_sum: ``min_terms``, ``max_terms``, ``min_digits``, ``max_digits``). Each split is drawn with its
own seed; validation never repeats a train question, test never repeats a train or validation one.
"""

from __future__ import annotations

import re
from typing import Any

from r1lab.errors import UserError
from r1lab.tasks.base import Task
from r1lab.tasks.registry import register_task

# Offsets the seed of each split so that train and test are different draws.
_SPLIT_SEED_OFFSETS = {"train": 0, "validation": 7_919, "test": 1_000_003}
# The splits whose questions a split leaves out (same task_size and seed): a stage trained on train
# (cold start) and one on validation (RL) are both scored on unseen test questions.
_HELD_OUT_FROM = {"train": (), "validation": ("train",), "test": ("train", "validation")}
_CHAIN = re.compile(r"^\s*(-?\d+)((?:\s*[-+]\s*\d+)+)\s*$")


def stepwise_solution(expression: str) -> str | None:
    """A left-to-right worked solution of a chain of additions/subtractions, e.g. ``4 - 1 - 7``."""
    match = _CHAIN.match(expression)
    if not match:
        return None
    total = int(match.group(1))
    lines = []
    for operator, operand in re.findall(r"([-+])\s*(\d+)", match.group(2)):
        value = int(operand)
        result = total + value if operator == "+" else total - value
        lines.append(f"{total} {operator} {value} = {result}")
        total = result
    lines.append(f"So the result is {total}.")
    return "\n".join(lines)


@register_task("gym", parametrized=True)
class GymTask(Task):
    def __init__(self, spec, gym_name: str):
        import reasoning_gym  # heavy (it loads every generator): imported when a gym task is used

        if gym_name not in reasoning_gym.factory.DATASETS:
            raise UserError(f"unknown reasoning-gym task {gym_name!r} (see reasoning_gym.factory.DATASETS)")
        super().__init__(spec)
        self.gym_name = gym_name
        self.name = f"gym:{gym_name}"
        self._entries: dict[tuple[str, int], dict[str, Any]] = {}

    def _generate(self, split: str):
        import reasoning_gym

        if split not in _SPLIT_SEED_OFFSETS:
            raise UserError(f"unknown split {split!r} for {self.name}; choose one of: {', '.join(_SPLIT_SEED_OFFSETS)}")
        try:
            return reasoning_gym.create_dataset(
                self.gym_name,
                size=self.spec.task_size,
                seed=self.spec.task_seed + _SPLIT_SEED_OFFSETS[split],
                **self.spec.task_options,
            )
        except (ValueError, TypeError, AssertionError) as error:
            raise UserError(f"cannot create reasoning-gym task {self.gym_name!r}: {error}") from None

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        split = split or self.spec.split
        if self.spec.task_size < 1:
            raise UserError(f"task_size must be at least 1, got {self.spec.task_size}")
        generated = self._generate(split)
        excluded: set[str] = set()
        for earlier in _HELD_OUT_FROM[split]:
            excluded |= {entry["question"] for entry in self._generate(earlier)}
        rows = []
        for index in range(len(generated)):
            entry = generated[index]
            if entry["question"] in excluded:
                continue
            self._entries[(split, index)] = {"dataset": generated, "entry": entry}
            metadata = entry.get("metadata") or {}
            solution = metadata.get("answer_cot")
            if solution:
                solution = solution.split("####")[0].strip()
            elif isinstance(metadata.get("expression"), str):
                solution = stepwise_solution(metadata["expression"])
            row = {"question": entry["question"], "answer": str(entry["answer"]), "task_index": index, "split": split}
            if solution:
                row["solution"] = solution
            rows.append(row)
        return self.select_rows(rows, limit, f"{self.name} [{split}]")

    def is_correct(self, extracted: str, row: dict[str, Any]) -> bool:
        key = (row.get("split", self.spec.split), int(row["task_index"]))
        if key not in self._entries:
            self.load(split=key[0], limit=None)
        found = self._entries[key]
        try:
            score = found["dataset"].score_answer(answer=extracted, entry=found["entry"])
        except Exception:  # reasoning-gym scorers may choke on hostile strings: that is a wrong answer
            return False
        return score is not None and float(score) >= 0.999
