"""A task loads rows, builds the prompt and owns answer checking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from r1lab.checking import answers_match
from r1lab.config import setting
from r1lab.errors import UserError
from r1lab.templates import Template


@dataclass(frozen=True)
class Verdict:
    extracted: str | None  # the final answer read from the completion, None when it gave none
    correct: bool
    formatted: bool  # the completion follows the template's layout strictly


@dataclass
class TaskSpec:
    """Which task and which rows: the fields every stage config shares."""

    task: str = setting("gsm8k", "The task: gsm8k, gym:<reasoning-gym task>, code, mix, or a registered task's name.")
    dataset: str | None = setting(None, "A local file or directory, or a hub id; null: the task's default.")
    split: str = setting("train", "Which split's rows: train, validation or test.")
    limit: int | None = setting(None, "At most this many rows (the first ones); null: all.", minimum=1)
    skip: int = setting(
        0,
        "Leave out this many first rows (before limit): e.g. GRPO on train questions a cold start on the first "
        "ones never saw.",
        minimum=0,
    )
    task_size: int = setting(1000, "Rows generated per split for procedural (reasoning-gym) tasks.", minimum=1)
    task_seed: int = setting(42, "The seed procedural tasks generate their rows from.", minimum=0)
    task_options: dict[str, Any] = setting(
        default_factory=dict,
        help="The procedural task's own options, e.g. {min_terms: 2, max_terms: 3} for gym:chain_sum.",
    )


class Task:
    """Base task: rows have ``question`` and ``answer`` (the gold); correctness is mathematical equality."""

    name = "task"
    has_gold = True  # False: general prompts, scored by an eval's judges only (no accuracy)

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows of the split as dicts with at least ``question`` and ``answer`` (strings)."""
        raise NotImplementedError

    def select_rows(self, rows: list[dict[str, Any]], limit: int | None, source: str) -> list[dict[str, Any]]:
        """A split's rows cut to the spec's skip and the caller's limit (the spec's when None)."""
        return apply_limit(rows, self.spec.limit if limit is None else limit, source, skip=self.spec.skip)

    def prompt(self, question: str, template: Template) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": template.system_prompt},
            {"role": "user", "content": question},
        ]

    def is_correct(self, extracted: str, row: dict[str, Any]) -> bool:
        return answers_match(extracted, row["answer"])

    def check(self, completion: str, row: dict[str, Any], template: Template) -> Verdict:
        extracted = template.extract_answer(completion)
        correct = extracted is not None and self.is_correct(extracted, row)
        return Verdict(extracted=extracted, correct=correct, formatted=template.is_formatted(completion))


def apply_limit(rows: list[dict[str, Any]], limit: int | None, source: str, skip: int = 0) -> list[dict[str, Any]]:
    """Rows ``skip`` to ``skip + limit`` (all after ``skip`` when limit is None); UserError when out of range."""
    if not rows:
        raise UserError(f"dataset {source} is empty")
    if skip < 0:
        raise UserError(f"skip must be at least 0, got {skip}")
    if skip >= len(rows):
        raise UserError(f"skip {skip} leaves no rows: {source} has {len(rows)} rows")
    rows = rows[skip:]
    if limit is None:
        return rows
    if limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    if limit > len(rows):
        after = f" after skipping {skip}" if skip else ""
        raise UserError(f"limit {limit} is beyond the data: {source} has {len(rows)} rows{after}")
    return rows[:limit]
