"""Tasks by name. A task module registers its class with ``@register_task("name")``; ``r1lab.tasks`` imports the
built-in task modules, so that every built-in task is registered once the package is imported.

A parametrized task (``@register_task("gym", parametrized=True)``) is named ``gym:<argument>``; its class is
built with ``(spec, argument)``, a plain one with ``(spec)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from r1lab.errors import UserError
from r1lab.tasks.base import Task, TaskSpec


@dataclass(frozen=True)
class RegisteredTask:
    task_class: Callable[..., Task]  # a Task class: built with (spec), a parametrized one (spec, argument)
    parametrized: bool

    def display_name(self, name: str) -> str:
        return f"{name}:<name>" if self.parametrized else name


# name -> RegisteredTask; filled by @register_task as the task modules are imported, then only read.
TASKS: dict[str, RegisteredTask] = {}


def register_task(name: str, parametrized: bool = False):
    """Class decorator: ``@register_task("gsm8k")`` makes ``task: gsm8k`` build this class."""
    if ":" in name or not name:
        raise ValueError(f"a task name is a plain word, got {name!r}")

    def decorate(task_class: type[Task]) -> type[Task]:
        TASKS[name] = RegisteredTask(task_class, parametrized)
        return task_class

    return decorate


def task_names() -> list[str]:
    """Every registered task as a config names it (``gym:<name>`` for a parametrized one)."""
    return [registered.display_name(name) for name, registered in TASKS.items()]


def get_task(spec: TaskSpec) -> Task:
    """The task a config names (``spec.task``), built with the config's task settings."""
    name, colon, argument = spec.task.partition(":")
    registered = TASKS.get(name)
    if registered is None or registered.parametrized != bool(colon):
        raise UserError(f"unknown task {spec.task!r}; choose one of: {', '.join(task_names())}")
    if registered.parametrized:
        return registered.task_class(spec, argument)
    return registered.task_class(spec)
