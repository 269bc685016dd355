"""``task: mix`` — R1's stage 4 data: reasoning prompts (with gold answers) and general prompts (without).

::

    task: mix
    task_options:
      reasoning: {task: gsm8k, limit: 500}          # any task's settings (TaskSpec fields)
      general: {dataset: recipes/data/general_prompts.jsonl, limit: 200}

``reasoning`` holds the settings of the reasoning task (``task``, ``dataset``, ``limit``, ``task_size``,
``task_options`` …; ``split``, ``task_seed`` and ``task_size`` default to the mix's own). ``general`` is a
local or hub dataset of prompts (``dataset``, optional ``question_key`` — default ``prompt``, else
``question`` — and ``limit``); a string is the dataset alone. General prompts have no gold answer and
belong to the training split only: an eval of a mix task (another split) evaluates its reasoning part.

Every row carries its ``source`` (``reasoning`` or ``general``) and a ``split``; :meth:`MixTask.source_of`
reads it back from the ``split`` and ``task_index`` columns that reach reward functions, which is how routed
rewards (:mod:`r1lab.rewards.routing`) score each row only with the rewards of its source. ``limit`` on the mix
applies after interleaving the two sources evenly, so a small limit keeps both. General prompts get the
template's layout with a system prompt that asks for an answer rather than a ``\\boxed{}`` one.
"""

from __future__ import annotations

from typing import Any

from r1lab.config import build_config
from r1lab.errors import UserError
from r1lab.tasks.base import Task, TaskSpec, Verdict, apply_limit
from r1lab.tasks.files import read_prompt_rows
from r1lab.tasks.registry import get_task, register_task
from r1lab.templates import Template

GENERAL_THINK_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question or makes a request, and the "
    "Assistant helps. The Assistant first thinks about the reasoning process in the mind and then provides "
    "the user with the answer. The reasoning process is enclosed within <think> </think> tags, followed by "
    "the answer, i.e., <think> reasoning process here </think> answer here."
)
TRAIN_SPLIT = "train"


@register_task("mix")
class MixTask(Task):
    name = "mix"
    SOURCES = ("reasoning", "general")

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        options = dict(spec.task_options)
        reasoning = options.pop("reasoning", None)
        general = options.pop("general", None)
        if options:
            raise UserError(f"unknown task_options for task 'mix': {', '.join(sorted(options))} (reasoning, general)")
        if spec.dataset:
            raise UserError("task 'mix' reads task_options.reasoning and task_options.general, not dataset")
        if not isinstance(reasoning, dict) or not reasoning.get("task"):
            raise UserError("task 'mix' needs task_options.reasoning: {task: <name>, ...} (e.g. {task: gsm8k})")
        if reasoning["task"] == "mix":
            raise UserError("task 'mix': the reasoning task cannot be a mix")
        if isinstance(general, str):
            general = {"dataset": general}
        if not isinstance(general, dict) or not general.get("dataset"):
            raise UserError("task 'mix' needs task_options.general: {dataset: path/to/prompts.jsonl}")
        unknown = sorted(set(general) - {"dataset", "question_key", "limit", "hub_config"})
        if unknown:
            raise UserError(f"unknown task_options.general keys for task 'mix': {', '.join(unknown)}")
        inherited = {"split": spec.split, "task_seed": spec.task_seed, "task_size": spec.task_size}
        self.reasoning_spec = build_config(TaskSpec, {**inherited, **reasoning}, source="task_options.reasoning")
        self.reasoning = get_task(self.reasoning_spec)
        self.general = general
        # (split, task_index) → (source, the row as its own task wrote it)
        self._origin: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
        self._general_questions: set[str] = set()
        self._reasoning_questions: set[str] = set()

    def _general_rows(self, split: str) -> list[dict[str, Any]]:
        rows = read_prompt_rows(
            self.general["dataset"], split, self.general.get("question_key"), self.general.get("hub_config")
        )
        limit = self.general.get("limit")
        return apply_limit(
            rows, int(limit) if limit is not None else None, f"{self.general['dataset']} [general prompts]"
        )

    def load(self, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        split = split or self.spec.split
        reasoning_rows = self.reasoning.load(split=split)
        general_rows = self._general_rows(split) if split == TRAIN_SPLIT else []
        tagged = [("reasoning", row) for row in reasoning_rows] + [("general", row) for row in general_rows]
        # Interleave evenly: each row sorted by its relative position in its own source.
        counts = {"reasoning": len(reasoning_rows), "general": len(general_rows)}
        position = {"reasoning": 0, "general": 0}
        keyed = []
        for source, row in tagged:
            keyed.append(((position[source] + 0.5) / counts[source], source != "reasoning", source, row))
            position[source] += 1
        keyed.sort(key=lambda item: (item[0], item[1]))
        rows = []
        for index, (_, _, source, original) in enumerate(keyed):
            self._origin[(split, index)] = (source, original)
            (self._general_questions if source == "general" else self._reasoning_questions).add(original["question"])
            row = {"question": original["question"], "answer": original["answer"], "task_index": index}
            row.update({"split": split, "source": source})
            if original.get("solution"):
                row["solution"] = original["solution"]
            rows.append(row)
        return self.select_rows(rows, limit, f"mix [{split}]")

    def _lookup(self, row: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        try:
            key = (str(row.get("split", self.spec.split)), int(row["task_index"]))
        except (KeyError, TypeError, ValueError):
            return None
        if key not in self._origin:
            self.load(split=key[0], limit=None)
        return self._origin.get(key)

    def source_of(self, row: dict[str, Any]) -> str | None:
        """``reasoning`` or ``general`` for a row of this mix (its ``source``, or found by split/task_index)."""
        if row.get("source"):
            return str(row["source"])
        found = self._lookup(row)
        return found[0] if found else None

    def prompt(self, question: str, template: Template) -> list[dict[str, str]]:
        if question in self._general_questions and question not in self._reasoning_questions:
            system = GENERAL_THINK_SYSTEM_PROMPT if template.name == "think" else template.system_prompt
            return [{"role": "system", "content": system}, {"role": "user", "content": question}]
        return self.reasoning.prompt(question, template)

    def check(self, completion: str, row: dict[str, Any], template: Template) -> Verdict:
        """Reasoning rows: the reasoning task's own checker on its own row; general rows are never correct."""
        found = self._lookup(row)
        if found is None and row.get("answer"):  # a row from elsewhere with a gold: the reasoning task decides
            return self.reasoning.check(completion, row, template)
        if found is None or found[0] != "reasoning":
            extracted = template.extract_answer(completion)
            return Verdict(extracted=extracted, correct=False, formatted=template.is_formatted(completion))
        return self.reasoning.check(completion, found[1], template)
