"""Tasks by name: ``gsm8k``, ``math``, ``jsonl`` (any question/answer file), ``gym:<reasoning-gym name>`` and
``mix`` (a reasoning task plus general prompts, R1 stage 4) and ``code`` (programs run against tests)."""

from __future__ import annotations

from r1lab.errors import UserError
from r1lab.tasks.base import Task, TaskSpec, Verdict

TASK_NAMES = ("gsm8k", "math", "jsonl", "gym:<name>", "mix", "code")

__all__ = ["Task", "TaskSpec", "Verdict", "TASK_NAMES", "get_task"]


def get_task(spec: TaskSpec) -> Task:
    from r1lab.tasks.gsm8k import GSM8KTask
    from r1lab.tasks.local import MathTask, QuestionAnswerTask

    if spec.task.startswith("gym:"):
        import reasoning_gym

        from r1lab.tasks.gym import GymTask

        gym_name = spec.task[len("gym:") :]
        if gym_name not in reasoning_gym.factory.DATASETS:
            raise UserError(f"unknown reasoning-gym task {gym_name!r} (see reasoning_gym.factory.DATASETS)")
        return GymTask(spec, gym_name)
    by_name = {"gsm8k": GSM8KTask, "math": MathTask, "jsonl": QuestionAnswerTask}
    if spec.task == "mix":  # reasoning and general prompts together (R1 stage 4)
        from r1lab.tasks.mix import MixTask

        return MixTask(spec)
    if spec.task == "code":  # programs run against tests in a sandbox (r1lab.code)
        from r1lab.tasks.code import CodeTask

        return CodeTask(spec)
    if spec.task not in by_name:
        raise UserError(f"unknown task {spec.task!r}; choose one of: {', '.join(TASK_NAMES)}")
    if spec.task == "gsm8k" and spec.task_options:
        raise UserError(f"task gsm8k takes no task_options (got {', '.join(sorted(spec.task_options))})")
    return by_name[spec.task](spec)
