"""``r1lab <command> [--config recipe.yaml] [--key value ...]``: one entry point, one sub-command per stage."""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap

from r1lab.commands import COMMANDS, configure_logging, load_command, run_command
from r1lab.config import field_help, field_types, literal_choices
from r1lab.errors import UserError, environment_error

EXIT_USAGE = 2


USAGE = """usage: r1lab <command> [--config recipe.yaml] [--key value ...]

commands:
{commands}

Any config field can be set in the YAML recipe and overridden on the command line:
  --learning_rate 1e-5  --rewards accuracy,xml.soft_format  --task_options '{{min_terms: 3}}'  --limit null
`r1lab <command> --help` lists the command's fields."""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def _command_help(name: str, config_class) -> str:
    own = []
    for cls in config_class.__mro__:
        if cls.__module__.startswith("r1lab") and dataclasses.is_dataclass(cls):
            own.extend(f.name for f in dataclasses.fields(cls) if f.name in cls.__dict__.get("__annotations__", {}))
    types_by_name = field_types(config_class)
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in dataclasses.fields(config_class) if f.init and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)}
    helps = field_help(config_class)
    lines = [f"usage: r1lab {name} [--config recipe.yaml] [--key value ...]", "", f"{COMMANDS[name].summary}", "", "r1lab fields:"]
    for field_name in dict.fromkeys(own):
        choices = literal_choices(types_by_name.get(field_name))
        annotation = getattr(types_by_name.get(field_name), "__name__", str(types_by_name.get(field_name)))
        if choices is not None:
            annotation = "|".join("null" if choice is None else str(choice) for choice in choices)
        lines.append(f"  --{field_name:<22} {annotation.replace('typing.', ''):<22} default: {defaults.get(field_name)!r}")
        if helps.get(field_name):
            lines.extend(textwrap.wrap(helps[field_name], width=110, initial_indent=" " * 6, subsequent_indent=" " * 6))
    trl_base = next((cls for cls in config_class.__mro__ if cls.__module__.startswith(("trl", "transformers"))), None)
    if trl_base is not None:
        lines.append(f"\nand every field of {trl_base.__module__.split('.')[0]}'s {trl_base.__name__} (see its documentation).")
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else EXIT_USAGE
    name, rest = argv[0], argv[1:]
    module, config_class = load_command(name)
    if any(argument in ("-h", "--help") for argument in rest):
        print(_command_help(name, config_class))
        return 0
    if name == "eval" and any(argument.startswith("--compare") for argument in rest):
        return module.compare_command(rest)
    run_command(name, rest)
    return 0


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UserError as error:
        print(f"r1lab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("r1lab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (r1lab grpo --help | head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # a full disk or a read-only directory: one line too; anything else is a bug
        message = environment_error(error)
        if message is None:
            raise
        print(f"r1lab: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
