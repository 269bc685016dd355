"""Every r1lab command, declared once: the CLI (``r1lab <command>``) and the pipeline (``command:`` of a stage)
both read :data:`COMMANDS`. A command is a module with a config dataclass and a ``main(config)``; adding a stage is
one module and one entry here (docs/extending.md).

Modules are imported when their command runs (``importlib``), so ``r1lab --help`` and a pipeline's bad input stay
fast: several stage modules import TRL at the top.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from r1lab.config import load_config, parse_overrides
from r1lab.errors import UserError


@dataclass(frozen=True)
class Command:
    module: str  # holds ``main(config)`` (and the config class)
    config_class: str
    summary: str
    entry: str = "main"  # the function in ``module`` that runs the command
    # The stage contract: the function in ``module`` that checks a config before anything runs: every setting, the
    # names it gives (task, template, rewards); no model, no rows, no input or output path (an earlier stage of a
    # pipeline makes those). A pipeline runs every stage's check before its first stage starts, as --dry_run does;
    # the stage's own main runs it too.
    check: str = "check"
    positional: str | None = None  # a config field that may be given as the first bare argument
    # Pipeline: run by every launched process together (accelerate's data parallelism), not by rank 0 alone.
    all_ranks: bool = False
    # Pipeline: the stage's output directory holds a finish marker when it is done (else the manifest decides).
    finish_marker: bool = True
    in_pipeline: bool = True  # may be a pipeline stage


COMMANDS = {
    "grpo": Command(
        "r1lab.stages.grpo", "R1GRPOConfig", "GRPO with rule rewards (R1-Zero, R1 stages 2 and 4)", all_ranks=True
    ),
    "eval": Command(
        "r1lab.evaluate",
        "EvalConfig",
        "greedy accuracy, pass@1 over k samples, cons@k; --compare A B",
        finish_marker=False,
    ),
    "sft": Command(
        "r1lab.stages.sft",
        "R1SFTConfig",
        "SFT on chat samples, loss on the answer only (cold start, distillation)",
        all_ranks=True,
    ),
    "cold-start-data": Command(
        "r1lab.stages.cold_start", "ColdStartDataConfig", "verified, filtered reasoning traces as a chat jsonl"
    ),
    "distill": Command(
        "r1lab.stages.distill",
        "R1DistillConfig",
        "a teacher's verified traces -> SFT of a student (or on-policy, teacher logits)",
        all_ranks=True,
    ),
    "rejection-sampling": Command(
        "r1lab.stages.rejection",
        "RejectionSamplingConfig",
        "a model's verified samples + general data as a chat jsonl (R1 stage 3, distillation)",
    ),
    "pipeline": Command(
        "r1lab.pipeline", "PipelineConfig", "run stages in order in one run directory (--resume)", in_pipeline=False
    ),
    "report": Command(
        "r1lab.report",
        "ReportConfig",
        "plots + one self-contained HTML page for a run or stage",
        positional="run_dir",
        finish_marker=False,
    ),
    "status": Command(
        "r1lab.pipeline",
        "StatusConfig",
        "print a pipeline run's stage table",
        "status_main",
        positional="run_dir",
        in_pipeline=False,
    ),
    "bench": Command(
        "r1lab.bench",
        "BenchConfig",
        "r1lab's GRPO against the seed's script: s/step, tok/s, memory, ratios",
        positional="target",
        in_pipeline=False,
    ),
}


def pipeline_commands() -> list[str]:
    return [name for name, command in COMMANDS.items() if command.in_pipeline]


def load_command(name: str) -> tuple[Any, type]:
    """(the command's module, its config class); a UserError for an unknown command."""
    if name not in COMMANDS:
        raise UserError(f"unknown command {name!r}; choose one of: {', '.join(COMMANDS)}")
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    return module, getattr(module, command.config_class)


def command_config(name: str, arguments: list[str]):
    """The config of ``r1lab <name> [--config recipe.yaml] [--key value ...]``: the recipe, overridden by the
    command line; the command's positional field may come first as a bare argument."""
    _, config_class = load_command(name)
    positional = COMMANDS[name].positional
    if positional and arguments and not arguments[0].startswith("--"):
        arguments = [f"--{positional}", *arguments]
    overrides = parse_overrides(arguments)
    config_path = overrides.pop("config", None)
    if isinstance(config_path, bool):  # a bare --config: True
        raise UserError("--config needs a path")
    config = load_config(config_class, config_path, overrides)
    if config_path and getattr(config, "config_dir", "absent") is None:
        config.config_dir = os.path.dirname(os.path.abspath(config_path))
    return config


def run_command(name: str, arguments: list[str]) -> Any:
    """Build the command's config from ``arguments`` and run it; returns what its entry returns."""
    module, _ = load_command(name)
    return getattr(module, COMMANDS[name].entry)(command_config(name, arguments))


def configure_logging() -> None:
    """What every r1lab process sets up before a command runs: INFO lines on stderr, quiet dependencies."""
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
