"""Every command's r1lab settings as they are declared (type, allowed values, default, bounds, help), grouped by the
config class that declares them: what ``r1lab <command> --help`` prints and what ``docs/settings.md`` holds.

    python -m r1lab.reference > docs/settings.md

regenerates the page; ``tests/unit/test_config.py`` fails when the page and the declarations differ.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import textwrap
import typing
from dataclasses import dataclass
from typing import Any

from r1lab.commands import COMMANDS, load_command
from r1lab.config import field_help, field_types, literal_choices


@dataclass(frozen=True)
class FieldDoc:
    name: str
    kind: str  # the type, or the allowed values separated by |
    default: Any
    minimum: float | None
    maximum: float | None
    help: str

    def bounds(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f">= {self.minimum}"
        return f"<= {self.maximum}" if self.maximum is not None else ""


def _kind(annotation: Any) -> str:
    choices = literal_choices(annotation)
    if choices is not None:
        return "|".join("null" if choice is None else str(choice) for choice in choices)
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    return (text or str(annotation)).replace("typing.", "")


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else None


def declared_fields(config_class: type) -> list[tuple[str, list[FieldDoc]]]:
    """(declaring class, its fields) for each r1lab dataclass in the config's ancestry, the most general first;
    a field is listed under the class that declares it last. TRL's / transformers' own fields are not listed."""
    types_by_name = field_types(config_class)
    helps = field_help(config_class)
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    owner: dict[str, str] = {}
    for cls in reversed(config_class.__mro__):
        if cls.__module__.startswith("r1lab") and dataclasses.is_dataclass(cls):
            for name in inspect.get_annotations(cls):
                if name in fields:
                    owner.pop(name, None)
                    owner[name] = cls.__name__
    groups: dict[str, list[FieldDoc]] = {}
    for name, group in owner.items():
        field = fields[name]
        groups.setdefault(group, []).append(
            FieldDoc(
                name,
                _kind(types_by_name.get(name)),
                _default(field),
                field.metadata.get("minimum"),
                field.metadata.get("maximum"),
                helps.get(name, ""),
            )
        )
    return list(groups.items())


def _trl_base(config_class: type) -> type | None:
    return next((cls for cls in config_class.__mro__ if cls.__module__.startswith(("trl", "transformers"))), None)


def command_help(name: str, config_class: type) -> str:
    """``r1lab <name> --help``: every r1lab field with its type or values, default, bounds and help, grouped."""
    lines = [f"usage: r1lab {name} [--config recipe.yaml] [--key value ...]", "", COMMANDS[name].summary]
    for group, docs in declared_fields(config_class):
        lines += ["", f"r1lab fields ({group}):"]
        for doc in docs:
            bounds = f"  [{doc.bounds()}]" if doc.bounds() else ""
            lines.append(f"  --{doc.name:<22} {doc.kind:<22} default: {doc.default!r}{bounds}")
            if doc.help:
                lines.extend(textwrap.wrap(doc.help, width=110, initial_indent=" " * 6, subsequent_indent=" " * 6))
    trl_base = _trl_base(config_class)
    if trl_base is not None:
        lines.append(
            f"\nand every field of {trl_base.__module__.split('.')[0]}'s {trl_base.__name__} (see its documentation)."
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def settings_page() -> str:
    """docs/settings.md: one table per command, one row per r1lab field."""
    parts = [
        "# Settings of every command",
        "",
        "Generated from the declarations (`python -m r1lab.reference > docs/settings.md`); a test fails when they",
        "differ. `r1lab <command> --help` prints the same. Every value is checked where it is declared: a value",
        "outside the allowed ones or the bounds, or NaN / infinity for a number, is one error line before anything",
        "runs. Training commands also take every field of TRL's / transformers' config class named under their table.",
    ]
    for name in COMMANDS:
        _, config_class = load_command(name)
        parts += ["", f"## `r1lab {name}`", "", COMMANDS[name].summary]
        for group, docs in declared_fields(config_class):
            parts += [
                "",
                f"*{group}*",
                "",
                "| setting | type or values | default | bounds | what it does |",
                "|---|---|---|---|---|",
            ]
            parts += [
                f"| `{doc.name}` | {_cell(doc.kind)} | `{_cell(repr(doc.default))}` | {doc.bounds()} | {_cell(doc.help)} |"
                for doc in docs
            ]
        trl_base = _trl_base(config_class)
        if trl_base is not None:
            parts += ["", f"And every field of `{trl_base.__module__.split('.')[0]}.{trl_base.__name__}`."]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_page())
