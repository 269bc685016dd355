"""``r1lab <command> [--config recipe.yaml] [--key value ...]``: one entry point, one sub-command per stage."""

from __future__ import annotations

import os
import sys

from r1lab.commands import COMMANDS, configure_logging, load_command, run_command
from r1lab.errors import UserError, environment_error
from r1lab.reference import command_help

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


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else EXIT_USAGE
    name, rest = argv[0], argv[1:]
    module, config_class = load_command(name)
    if any(argument in ("-h", "--help") for argument in rest):
        print(command_help(name, config_class))
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
