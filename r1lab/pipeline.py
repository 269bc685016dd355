"""``r1lab pipeline``: stages chained by their output directories and a manifest, nothing else.

A pipeline recipe lists stages in order. Each names a ``command`` (grpo, sft, eval, ...), its ``config``
(a recipe path or an inline mapping), optional ``overrides``, and ``inputs``: config fields filled with an
earlier stage's output directory (``inputs: {model: cold-start}``). Stage ``i`` writes to
``run_dir/NN-name``; ``run_dir/manifest.json`` records each stage's status, config, input, output,
start/end and key figures, rewritten atomically after every change.

Under ``accelerate launch`` (several processes) every process runs the training stages (grpo, sft) together;
the other stages (data, eval, report) and the manifest are rank 0's alone, the other ranks waiting at a
barrier after each stage, so that a stage starts once the previous one's output is complete.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from r1lab.commands import COMMANDS, load_command, pipeline_commands
from r1lab.config import build_config, config_to_dict, field_types, read_yaml_mapping, setting
from r1lab.distributed import is_main_process, wait_for_everyone
from r1lab.errors import UserError
from r1lab.hardware import cpu_computes_bf16, cpu_kind
from r1lab.outputs import (
    check_writable_dir,
    is_finished,
    is_inside,
    last_checkpoint,
)
from r1lab.run_files import MANIFEST, read_manifest, write_manifest
from r1lab.significance import format_transitions, transitions

_STAGE_NAME = re.compile(r"^[A-Za-z0-9][\w-]*$")


@dataclass
class PipelineConfig:
    stages: list[Any] = setting(
        default_factory=list,
        help="The stages in order, each {name: ..., command: ..., config: recipe.yaml or {...}, "
        "inputs: {field: earlier stage}}.",
    )
    name: str = setting("pipeline", "The run's name (its directory is runs/<name> unless run_dir says otherwise).")
    run_dir: str | None = setting(None, "Where the run goes; null: runs/<name>.")
    resume: bool = setting(False, "Continue a run in run_dir: finished stages are skipped, an unfinished one resumes.")
    dry_run: bool = setting(
        False, "Build and check every stage's config as the run would, print the plan, run nothing."
    )
    defaults: dict[str, Any] = setting(
        default_factory=dict, help="Fields set on every stage that has them, e.g. {model: embedded, seed: 0}."
    )
    config_dir: str | None = setting(None, "Where relative stage config paths resolve; set from --config.")


@dataclass
class StagePlan:
    index: int
    name: str
    command: str
    values: dict[str, Any]  # the stage's own config values, before inputs are filled in
    defaults: dict[str, Any]  # the pipeline's defaults: applied where the stage's config has the field
    inputs: dict[str, str]  # field -> earlier stage name
    output_dir: str


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _stage_values(entry: dict[str, Any], config_dir: str | None) -> dict[str, Any]:
    source = entry.get("config", {})
    if isinstance(source, str):
        path = source if os.path.isabs(source) or config_dir is None else os.path.join(config_dir, source)
        if not os.path.isfile(path) and os.path.isfile(source):
            path = source
        values = read_yaml_mapping(path)
    elif isinstance(source, dict):
        values = dict(source)
    else:
        raise UserError(f"stage {entry.get('name')!r}: config must be a recipe path or a mapping")
    overrides = entry.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise UserError(f"stage {entry.get('name')!r}: overrides must be a mapping")
    values.update(overrides)
    return values


def plan_stages(config: PipelineConfig) -> list[StagePlan]:
    """Validate the recipe's structure: names, commands, inputs that point at earlier stages."""
    if not config.stages:
        raise UserError("pipeline has no stages")
    if not config.run_dir and not _STAGE_NAME.match(config.name or ""):
        # the default run_dir is runs/<name>: a name with a path in it would put the run elsewhere
        raise UserError(f"pipeline name must be letters, digits, - or _ (it names runs/<name>), got {config.name!r}")
    run_dir = config.run_dir or os.path.join("runs", config.name)
    plans: list[StagePlan] = []
    for index, entry in enumerate(config.stages):
        if not isinstance(entry, dict):
            raise UserError(f"stage {index + 1}: expected a mapping with name, command, config")
        unknown = set(entry) - {"name", "command", "config", "overrides", "inputs"}
        if unknown:
            raise UserError(f"stage {index + 1}: unknown key(s) {', '.join(sorted(unknown))}")
        name, command = entry.get("name"), entry.get("command")
        if not isinstance(name, str) or not _STAGE_NAME.match(name):
            raise UserError(f"stage {index + 1}: name must be letters, digits, - or _, got {name!r}")
        if any(plan.name == name for plan in plans):
            raise UserError(f"stage name {name!r} is used twice")
        if command not in pipeline_commands():
            choices = ", ".join(pipeline_commands())
            raise UserError(f"stage {name!r}: unknown command {command!r}; choose one of: {choices}")
        inputs = entry.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise UserError(f"stage {name!r}: inputs must map a config field to an earlier stage's name")
        earlier = {plan.name for plan in plans}
        for field_name, source in inputs.items():
            if not isinstance(field_name, str) or not isinstance(source, str):
                raise UserError(
                    f"stage {name!r}: inputs must map a config field to one earlier stage's name, got {field_name!r}: {source!r}"
                )
            if source not in earlier:
                raise UserError(
                    f"stage {name!r}: input {field_name} names stage {source!r}, which does not run before it"
                )
        values = _stage_values(entry, config.config_dir)
        output_dir = os.path.join(run_dir, f"{index + 1:02d}-{name}")
        plans.append(StagePlan(index, name, command, values, dict(config.defaults), dict(inputs), output_dir))
    return plans


def _build_stage_config(plan: StagePlan, outputs: dict[str, str]):
    module, config_class = load_command(plan.command)
    known = field_types(config_class)
    values = {key: value for key, value in plan.defaults.items() if key in known}
    values.update(plan.values)
    for field_name, source in plan.inputs.items():
        values[field_name] = outputs[source]
    values.update(_output_fields(plan, known))
    try:
        stage_config = build_config(config_class, values, source=f"stage {plan.name!r}")
    except UserError as error:
        if str(error).startswith(f"stage {plan.name!r}"):
            raise
        raise UserError(f"stage {plan.name!r}: {error}") from None
    _check_stage_paths(plan, stage_config)
    return module, stage_config


def check_stages(plans: list[StagePlan]) -> None:
    """Every stage's config built as the run will build it (types, unknown keys, inputs, paths), then its command's
    check (:attr:`~r1lab.commands.Command.check`), before any stage runs; each problem as one UserError naming the
    stage. The real run and ``--dry_run`` both call this."""
    outputs = {plan.name: plan.output_dir for plan in plans}
    for plan in plans:
        module, stage_config = _build_stage_config(plan, outputs)
        try:
            getattr(module, COMMANDS[plan.command].check)(stage_config)
        except UserError as error:
            if str(error).startswith(f"stage {plan.name!r}"):
                raise
            raise UserError(f"stage {plan.name!r}: {error}") from None


def _check_stage_paths(plan: StagePlan, stage_config) -> None:
    """Every place a stage writes stays inside the run directory: the pipeline sets each stage's output (a
    directory linked elsewhere is refused), and a stage's own config may not send its final eval elsewhere."""
    run_dir = os.path.dirname(plan.output_dir)
    written = {}
    for name in ("output_dir", "output"):
        value = getattr(stage_config, name, None)
        if isinstance(value, str) and value:
            written[name] = value
    final_eval = getattr(stage_config, "final_eval", None)
    if isinstance(final_eval, dict) and isinstance(final_eval.get("output_dir"), str):
        written["final_eval.output_dir"] = final_eval["output_dir"]
    for name, path in written.items():
        if not is_inside(path, run_dir):
            raise UserError(f"stage {plan.name!r}: {name} {path} is outside the run directory {run_dir}")


def _output_fields(plan: StagePlan, known) -> dict[str, str]:
    """Where a stage writes, in its own config's words: every stage writes into its ``NN-name`` directory,
    except the report, which covers the whole run and lands at ``run_dir/report.html``."""
    run_dir = os.path.dirname(plan.output_dir)
    if plan.command == "report":
        return {"run_dir": run_dir, "output": os.path.join(run_dir, "report.html")}
    for name in ("output_dir", "output"):  # training stages and eval; cold-start-data's dataset directory
        if name in known:
            return {name: plan.output_dir}
    raise UserError(f"stage {plan.name!r}: command {plan.command!r} has no output setting")


class Manifest:
    """``manifest.json``: the run's table of stages, rewritten atomically on every change."""

    def __init__(self, run_dir: str, name: str, plans: list[StagePlan]):
        self.path = os.path.join(run_dir, MANIFEST.name)
        self.data: dict[str, Any] = {
            "name": name,
            "run_dir": run_dir,
            "created": _now(),
            "machine": {"cpu": cpu_kind().as_dict(), "cpu_computes_bf16": cpu_computes_bf16()},
            "stages": [
                {"name": p.name, "command": p.command, "status": "pending", "output": p.output_dir, "inputs": p.inputs}
                for p in plans
            ],
        }

    def load_previous(self) -> None:
        if not os.path.isfile(self.path):
            return
        previous = read_manifest(os.path.dirname(self.path))
        by_name = {stage["name"]: stage for stage in previous["stages"]}
        self.data["created"] = previous.get("created", self.data["created"])
        for stage in self.data["stages"]:
            old = by_name.get(stage["name"])
            if old and old.get("command") == stage["command"]:
                stage.update({key: value for key, value in old.items() if key not in ("inputs", "output")})

    def stage(self, name: str) -> dict[str, Any]:
        return next(stage for stage in self.data["stages"] if stage["name"] == name)

    def save(self) -> None:
        self.data["updated"] = _now()
        write_manifest(os.path.dirname(self.path), self.data)


def main(config: PipelineConfig) -> dict[str, Any]:
    plans = plan_stages(config)
    run_dir = os.path.dirname(plans[0].output_dir)
    if config.dry_run:
        return dry_run(plans)
    main_process = is_main_process()
    say = print if main_process else (lambda *args, **kwargs: None)
    manifest = Manifest(run_dir, config.name, plans)
    if os.path.isfile(manifest.path) and not config.resume:
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it (or choose another --run_dir)")
    check_writable_dir(run_dir, "run_dir")
    check_stages(plans)  # every stage's config, before the first one runs: a typo in stage 4 fails now, not hours later
    manifest.load_previous()
    wait_for_everyone()  # every rank has read the previous manifest before rank 0 rewrites it
    outputs: dict[str, str] = {}
    for plan in plans:
        record = manifest.stage(plan.name)
        outputs[plan.name] = plan.output_dir
        if record.get("status") == "finished" and (
            is_finished(plan.output_dir) or not COMMANDS[plan.command].finish_marker
        ):
            say(f"r1lab pipeline: {plan.name}: finished earlier, skipped")
            continue
        module, stage_config = _build_stage_config(plan, outputs)
        checkpoint = last_checkpoint(plan.output_dir) if hasattr(stage_config, "resume_from_checkpoint") else None
        if checkpoint and not stage_config.resume_from_checkpoint:
            stage_config.resume_from_checkpoint = checkpoint
            say(f"r1lab pipeline: {plan.name}: resuming from {checkpoint}")
        if hasattr(stage_config, "overwrite"):
            stage_config.overwrite = True  # an unfinished stage's leftovers are ours to replace
        record.update(status="running", started=_now(), config=config_to_dict(stage_config), error=None)
        record.pop("ended", None)
        if main_process:
            manifest.save()
        say(f"r1lab pipeline: stage {plan.index + 1}/{len(plans)} {plan.name} ({plan.command}) → {plan.output_dir}")
        began = time.time()
        try:
            figures = (module.main(stage_config) or {}) if main_process or COMMANDS[plan.command].all_ranks else {}
        except BaseException as error:
            record.update(status="failed", ended=_now(), error=f"{type(error).__name__}: {error}")
            if not isinstance(error, (UserError, KeyboardInterrupt)):
                record["traceback"] = traceback.format_exc(limit=5)
            if main_process:
                manifest.save()
            raise
        record.update(status="finished", ended=_now(), seconds=round(time.time() - began, 1), figures=figures)
        if main_process:
            manifest.save()
        wait_for_everyone()  # the next stage may read this one's output: rank 0 has finished writing it
    if not main_process:
        return manifest.data
    print_status(manifest.data)
    print_eval_table(manifest.data)
    reports = [
        stage["figures"]["report"] for stage in manifest.data["stages"] if (stage.get("figures") or {}).get("report")
    ]
    if reports:
        print(f"\nreport: {reports[-1]}")
    return manifest.data


def print_eval_table(manifest: dict[str, Any]) -> None:
    """Format rate and accuracy of every eval stage of the run, in order: base → cold start → RL."""
    rows = [stage for stage in manifest.get("stages", []) if stage.get("command") == "eval" and stage.get("figures")]
    if not rows:
        return
    columns = (
        ("greedy_format_rate", "format (greedy)"),
        ("greedy_accuracy", "accuracy (greedy)"),
        ("format_rate", "format (sampled)"),
        ("pass_at_1", "pass@1"),
        ("cons_at_k", "cons@k"),
    )
    width = max(len(stage["name"]) for stage in rows) + 2
    first = rows[0]["figures"]
    print(
        f"\nheld-out questions: {first.get('questions')} ({first.get('task')} [{first.get('split')}]), k = {first.get('k')}"
    )
    print(f"{'eval':<{width}}" + "".join(f"{label:>19}" for _, label in columns))
    for stage in rows:
        figures = stage["figures"]
        cells = [figures.get(key) for key, _ in columns]
        print(f"{stage['name']:<{width}}" + "".join(f"{'-' if v is None else f'{v:.3f}':>19}" for v in cells))
    print_significance(rows)


def print_significance(rows: list[dict[str, Any]]) -> None:
    """Each eval against the nearest earlier eval on the same questions: became right / wrong, the greedy sign
    test and a bootstrap interval for pass@1 (r1lab.significance)."""
    found = transitions([(stage["name"], stage.get("output") or "") for stage in rows])
    if found:
        print("\nsignificance (B against A on the same questions; B - A):")
        print("\n".join(format_transitions(found)))


def dry_run(plans: list[StagePlan]) -> dict[str, Any]:
    """Every stage's config built and checked exactly as the run checks it before its first stage
    (:func:`check_stages`); nothing runs."""
    check_stages(plans)
    for plan in plans:
        inputs = ", ".join(f"{field} ← {source}" for field, source in plan.inputs.items())
        print(
            f"{plan.index + 1:>2}  {plan.name:<20} {plan.command:<20} → {plan.output_dir}"
            + (f"   ({inputs})" if inputs else "")
        )
    print(f"r1lab pipeline: dry run: {len(plans)} stage configs valid, nothing run")
    return {"stages": [plan.name for plan in plans], "dry_run": True}


def print_status(manifest: Mapping[str, Any]) -> None:
    """The stage table, with each eval's format rate and accuracy."""
    print(f"\nrun {manifest.get('name')} in {manifest.get('run_dir')}")
    header = f"{'#':>2}  {'stage':<16} {'command':<16} {'status':<9} {'seconds':>8}  figures"
    print(header)
    print("-" * len(header))
    for number, stage in enumerate(manifest.get("stages", []), start=1):
        figures = stage.get("figures") or {}
        shown = ", ".join(
            f"{key} {figures[key]:.3f}" if isinstance(figures[key], float) else f"{key} {figures[key]}"
            for key in _HEADLINE_FIGURES
            if key in figures
        )
        seconds = stage.get("seconds")
        print(
            f"{number:>2}  {stage['name']:<16} {stage['command']:<16} {stage.get('status', '?'):<9} "
            f"{'' if seconds is None else f'{seconds:.0f}':>8}  {shown}"
        )


_HEADLINE_FIGURES = (
    "greedy_format_rate",
    "greedy_accuracy",
    "pass_at_1",
    "cons_at_k",
    "kept",
    "train_loss",
    "mean_step_seconds",
)


@dataclass
class StatusConfig:
    run_dir: str = setting("runs/quickstart", "The pipeline run whose stage table to print.")


def status_main(config: StatusConfig) -> Mapping[str, Any]:
    manifest = read_manifest(config.run_dir)
    print_status(manifest)
    return manifest
