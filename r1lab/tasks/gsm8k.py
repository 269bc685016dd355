"""GSM8K: grade-school math word problems; the gold is the number after ``####``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from r1lab.checking import parse_plain_number
from r1lab.config import build_config, setting
from r1lab.errors import UserError
from r1lab.tasks.base import Task, apply_limit
from r1lab.tasks.files import (
    looks_local,
    read_hub_rows,
    read_local_rows,
    require_columns,
)
from r1lab.tasks.registry import register_task

HUB_ID = "openai/gsm8k"
_CALCULATOR_MARK = re.compile(r"<<[^>]*>>")


@dataclass
class GSM8KOptions:
    """``task_options`` of task gsm8k: which questions a run draws (a curriculum by the worked solution's size)."""

    max_steps: int | None = setting(
        None,
        "Keep only questions whose worked solution has at most this many calculator steps (<<...>> marks; "
        "GSM8K's train questions have 0-9, most 2-4); null: all.",
        minimum=1,
    )


def gold_from_solution(solution: str) -> str | None:
    """The text after ``####`` with thousands separators removed, or None when there is no ``####``."""
    if "####" not in solution:
        return None
    return solution.split("####")[1].strip().replace(",", "")


def solution_steps(solution: str) -> int:
    """How many calculator steps (``<<48/2=24>>`` marks) a GSM8K worked solution has: its difficulty's proxy."""
    return len(_CALCULATOR_MARK.findall(solution))


def rationale_from_solution(solution: str) -> str:
    """The worked solution before ``####`` with the ``<<48/2=24>>`` calculator marks removed."""
    return _CALCULATOR_MARK.sub("", solution.split("####")[0]).strip()


@register_task("gsm8k")
class GSM8KTask(Task):
    name = "gsm8k"

    def __init__(self, spec):
        self.options = build_config(GSM8KOptions, dict(spec.task_options or {}), source="task gsm8k's task_options")
        super().__init__(spec)

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        split = split or self.spec.split
        source = os.path.expanduser(self.spec.dataset or HUB_ID)
        raw = read_local_rows(source, split) if looks_local(source) else read_hub_rows(source, "main", split)
        require_columns(raw, ("question", "answer"), source)
        rows = []
        for index, item in enumerate(raw):
            gold = gold_from_solution(str(item["answer"]))
            if gold is None:
                raise UserError(f"dataset {source} row {index + 1}: answer has no '####' final answer")
            if parse_plain_number(gold) is None:  # GSM8K's answers are numbers; any other gold is never matched
                raise UserError(
                    f"dataset {source} row {index + 1}: the final answer after '####' is not a number: {gold[:40]!r}"
                )
            rows.append(
                {
                    "question": str(item["question"]),
                    "answer": gold,
                    "solution": rationale_from_solution(str(item["answer"])),
                    "task_index": index,
                    "steps": solution_steps(str(item["answer"])),
                }
            )
        label = f"{source} [{split}]"
        max_steps = self.options.max_steps
        if max_steps is None:
            return self.select_rows(rows, limit, label)
        # skip counts the split's own rows (those a cold start drew from stay out), the limit the ones kept
        rows = [row for row in apply_limit(rows, None, label, skip=self.spec.skip) if row["steps"] <= max_steps]
        if not rows:
            raise UserError(f"task_options.max_steps {max_steps} keeps none of {label}'s questions")
        return apply_limit(rows, self.spec.limit if limit is None else limit, f"{label} (at most {max_steps} steps)")
