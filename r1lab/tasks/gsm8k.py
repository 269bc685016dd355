"""GSM8K: grade-school math word problems; the gold is the number after ``####``."""

from __future__ import annotations

import os
import re
from typing import Any

from r1lab.checking import parse_plain_number
from r1lab.errors import UserError
from r1lab.tasks.base import Task
from r1lab.tasks.files import (
    looks_local,
    read_hub_rows,
    read_local_rows,
    require_columns,
)
from r1lab.tasks.registry import register_task

HUB_ID = "openai/gsm8k"
_CALCULATOR_MARK = re.compile(r"<<[^>]*>>")


def gold_from_solution(solution: str) -> str | None:
    """The text after ``####`` with thousands separators removed, or None when there is no ``####``."""
    if "####" not in solution:
        return None
    return solution.split("####")[1].strip().replace(",", "")


def rationale_from_solution(solution: str) -> str:
    """The worked solution before ``####`` with the ``<<48/2=24>>`` calculator marks removed."""
    return _CALCULATOR_MARK.sub("", solution.split("####")[0]).strip()


@register_task("gsm8k")
class GSM8KTask(Task):
    name = "gsm8k"

    def __init__(self, spec):
        if spec.task_options:
            raise UserError(f"task gsm8k takes no task_options (got {', '.join(sorted(spec.task_options))})")
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
                }
            )
        return self.select_rows(rows, limit, f"{source} [{split}]")
