"""Any local (or hub) dataset with a question and an answer column, and competition math sets."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from r1lab.errors import UserError
from r1lab.tasks.base import Task, Verdict
from r1lab.tasks.files import (
    looks_local,
    read_hub_rows,
    read_local_rows,
    read_prompt_rows,
    require_columns,
)
from r1lab.tasks.registry import register_task
from r1lab.templates import Template


@register_task("jsonl")
class QuestionAnswerTask(Task):
    """``task: jsonl`` with ``dataset: path.jsonl``; column names via ``task_options``
    (``question_key``, ``answer_key``, optional ``solution_key``)."""

    name = "jsonl"
    default_dataset: str | None = None
    default_config: str | None = None
    default_keys = ("question", "answer", "solution")

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        split = split or self.spec.split
        options = dict(self.spec.task_options)
        question_key = options.pop("question_key", self.default_keys[0])
        answer_key = options.pop("answer_key", self.default_keys[1])
        solution_key = options.pop("solution_key", self.default_keys[2])
        hub_config = options.pop("hub_config", self.default_config)
        if options:
            raise UserError(f"unknown task_options for task {self.name!r}: {', '.join(sorted(options))}")
        source = self.spec.dataset or self.default_dataset
        if not source:
            raise UserError(f"task {self.name!r} needs a dataset: pass --dataset PATH.jsonl")
        source = os.path.expanduser(source)
        raw = (
            read_local_rows(source, split)
            if looks_local(source)
            else read_hub_rows(source, hub_config, self.hub_split(source, split))
        )
        require_columns(raw, (question_key, answer_key), source)
        rows = []
        for index, item in enumerate(raw):
            answer = str(item[answer_key]).strip()
            if not answer:
                raise UserError(f"dataset {source} row {index + 1}: empty answer in column {answer_key!r}")
            row = {"question": str(item[question_key]), "answer": answer, "task_index": index}
            if item.get(solution_key):
                row["solution"] = str(item[solution_key])
            rows.append(row)
        return self.select_rows(rows, limit, f"{source} [{split}]")

    def hub_split(self, dataset_id: str, split: str) -> str:
        """The hub split to read for ``split`` (the same one, unless a set keeps its test questions elsewhere)."""
        return split


@register_task("math")
class MathTask(QuestionAnswerTask):
    """Competition math with LaTeX answers (MATH-500 by default; AIME 2024 via ``--dataset``), math-verify checked."""

    name = "math"
    default_dataset = "HuggingFaceH4/MATH-500"
    default_keys = ("problem", "answer", "solution")

    # Benchmarks published as a single ``train`` split: evaluating on ``test`` reads that split.
    TEST_SPLIT_ALIASES: ClassVar[dict[str, str]] = {"huggingfaceh4/aime_2024": "train"}

    def hub_split(self, dataset_id: str, split: str) -> str:
        if split == "test":
            return self.TEST_SPLIT_ALIASES.get(dataset_id.lower(), split)
        return split


@register_task("prompts")
class GeneralPromptsTask(Task):
    """``task: prompts`` with ``dataset: prompts.jsonl``: general prompts without a gold answer (R1's stage-4
    prompts). Nothing is right or wrong: ``r1lab eval`` scores their completions with its ``judges`` (the
    model rewards GRPO uses) and reports the layout rate; ``task_options``: ``question_key``, ``hub_config``."""

    name = "prompts"
    has_gold = False

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        split = split or self.spec.split
        options = dict(self.spec.task_options)
        question_key, hub_config = options.pop("question_key", None), options.pop("hub_config", None)
        if options:
            raise UserError(
                f"unknown task_options for task {self.name!r}: {', '.join(sorted(options))} (question_key, hub_config)"
            )
        if not self.spec.dataset:
            raise UserError(
                "task 'prompts' needs a dataset: pass --dataset prompts.jsonl (a 'prompt' or 'question' column)"
            )
        rows = read_prompt_rows(self.spec.dataset, split, question_key, hub_config)
        rows = [{**row, "task_index": index, "source": "general"} for index, row in enumerate(rows)]
        return self.select_rows(rows, limit, f"{self.spec.dataset} [{split}]")

    def check(self, completion: str, row: dict[str, Any], template: Template) -> Verdict:
        return Verdict(extracted=None, correct=False, formatted=template.is_formatted(completion))
