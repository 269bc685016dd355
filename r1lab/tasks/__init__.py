"""Tasks by name: ``gsm8k``, ``math``, ``jsonl`` (any question/answer file), ``gym:<reasoning-gym name>``,
``mix`` (a reasoning task plus general prompts, R1 stage 4) and ``code`` (programs run against tests). A task loads
rows, builds the prompt and owns answer checking; a new one is one module with a ``@register_task`` class
(docs/extending.md)."""

from r1lab.tasks import code, gsm8k, gym, local, mix  # noqa: F401  (importing a task module registers its tasks)
from r1lab.tasks.base import Task, TaskSpec, Verdict
from r1lab.tasks.registry import get_task, register_task, task_names

__all__ = ["Task", "TaskSpec", "Verdict", "get_task", "register_task", "task_names"]
