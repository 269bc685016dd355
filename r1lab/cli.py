"""``r1lab <command> [--config recipe.yaml] [--key value ...]``: one entry point, one sub-command per stage."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import sys
import warnings
from dataclasses import dataclass

from r1lab.errors import UserError

EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    module: str  # holds ``main(config)`` (and the config class)
    config_class: str
    summary: str
    entry: str = "main"  # the function in ``module`` that runs the command
    positional: str | None = None  # a config field that may be given as the first bare argument


COMMANDS = {
    "grpo": Command("r1lab.stages.grpo", "R1GRPOConfig", "GRPO with rule rewards (R1-Zero, R1 stages 2 and 4)"),
    "eval": Command("r1lab.evaluate", "EvalConfig", "greedy accuracy, pass@1 over k samples, cons@k; --compare A B"),
    "sft": Command("r1lab.stages.sft", "R1SFTConfig", "SFT on chat samples, loss on the answer only (cold start, distillation)"),
    "cold-start-data": Command("r1lab.stages.cold_start", "ColdStartDataConfig", "verified, filtered reasoning traces as a chat jsonl"),
    "distill": Command("r1lab.stages.distill", "R1DistillConfig", "a teacher's verified traces -> SFT of a student (or on-policy, teacher logits)"),
    "rejection-sampling": Command("r1lab.stages.rejection", "RejectionSamplingConfig", "a model's verified samples + general data as a chat jsonl (R1 stage 3, distillation)"),
    "pipeline": Command("r1lab.pipeline", "PipelineConfig", "run stages in order in one run directory (--resume)"),
    "report": Command("r1lab.report", "ReportConfig", "plots + one self-contained HTML page for a run or stage", positional="run_dir"),
    "status": Command("r1lab.pipeline", "StatusConfig", "print a pipeline run's stage table", "status_main", "run_dir"),
    "bench": Command("r1lab.bench", "BenchConfig", "r1lab's GRPO against the seed's script: s/step, tok/s, memory, ratios", positional="target"),
}

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
    from r1lab.config import field_types

    own = []
    for cls in config_class.__mro__:
        if cls.__module__.startswith("r1lab") and dataclasses.is_dataclass(cls):
            own.extend(f.name for f in dataclasses.fields(cls) if f.name in cls.__dict__.get("__annotations__", {}))
    types_by_name = field_types(config_class)
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in dataclasses.fields(config_class) if f.init and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)}
    lines = [f"usage: r1lab {name} [--config recipe.yaml] [--key value ...]", "", f"{COMMANDS[name].summary}", "", "r1lab fields:"]
    for field_name in dict.fromkeys(own):
        annotation = getattr(types_by_name.get(field_name), "__name__", str(types_by_name.get(field_name)))
        lines.append(f"  --{field_name:<22} {annotation.replace('typing.', ''):<22} default: {defaults.get(field_name)!r}")
    trl_base = next((cls for cls in config_class.__mro__ if cls.__module__.startswith(("trl", "transformers"))), None)
    if trl_base is not None:
        lines.append(f"\nand every field of {trl_base.__module__.split('.')[0]}'s {trl_base.__name__} (see its documentation).")
    return "\n".join(lines)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Deprecation chatter from transformers/torch about settings r1lab does not use.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found.*")
    try:
        import transformers

        transformers.logging.set_verbosity_warning()
    except ImportError:
        pass


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else EXIT_USAGE
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UserError(f"unknown command {name!r}; choose one of: {', '.join(COMMANDS)}")
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    config_class = getattr(module, command.config_class)
    if any(argument in ("-h", "--help") for argument in rest):
        print(_command_help(name, config_class))
        return 0
    if name == "eval" and any(argument.startswith("--compare") for argument in rest):
        return module.compare_command(rest)
    from r1lab.config import load_config, parse_overrides

    if command.positional and rest and not rest[0].startswith("--"):
        rest = [f"--{command.positional}", *rest]
    overrides = parse_overrides(rest)
    config_path = overrides.pop("config", None)
    if config_path is True:
        raise UserError("--config needs a path")
    config = load_config(config_class, config_path, overrides)
    if config_path and getattr(config, "config_dir", "absent") is None:
        config.config_dir = os.path.dirname(os.path.abspath(config_path))
    getattr(module, command.entry)(config)
    return 0


def main(argv: list[str] | None = None) -> int:
    _configure_logging()
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UserError as error:
        print(f"r1lab: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("r1lab: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a full disk or a read-only directory: one line too; anything else is a bug
        from r1lab.errors import environment_error

        message = environment_error(error)
        if message is None:
            raise
        print(f"r1lab: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
