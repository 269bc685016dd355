"""A task: "Is 417 even or odd?", generated offline from ``task_seed`` and the split; the gold is a word."""

import random

from r1lab.tasks.base import Task, apply_limit
from r1lab.tasks.registry import register_task


@register_task("example.parity")
class ParityTask(Task):
    name = "example.parity"

    def load(self, split=None, limit=None):
        split = split or self.spec.split
        draw = random.Random(f"{self.spec.task_seed}/{split}")  # each split its own draw
        rows = []
        for index in range(self.spec.task_size):
            number = draw.randint(0, 999)
            rows.append(
                {
                    "question": f"Is {number} even or odd?",
                    "answer": "even" if number % 2 == 0 else "odd",
                    "solution": f"{number} = 2 x {number // 2} + {number % 2}, so the remainder is {number % 2}.",
                    "task_index": index,
                }
            )
        return apply_limit(rows, limit if limit is not None else self.spec.limit, f"{self.name} [{split}]")

    def is_correct(self, extracted, row):
        return extracted.strip().lower().rstrip(".") == row["answer"]
