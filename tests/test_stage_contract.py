"""The stage contract: each command's ``check`` runs for every stage of a pipeline before the first stage starts, and
``--dry_run`` runs the same checks. Every refusal below sits in the pipeline's LAST stage, after a first stage that
would write its outputs: the run must stop with one line, exit 2, and nothing written."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from r1lab.cli import main as cli_main
from r1lab.commands import COMMANDS, load_command, pipeline_commands

FIRST_STAGE = {  # cheap and offline, and it writes a dataset: it must not run when a later stage is refused
    "name": "data",
    "command": "cold-start-data",
    "config": {"task": "gym:chain_sum", "task_size": 8, "source": "solutions"},
}
GRPO = {"task": "gym:chain_sum", "task_size": 8, "max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 2}
TRL_REPETITION = "trl.rewards.get_repetition_penalty_reward"
VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None

REFUSALS = [
    ("grpo", {**GRPO, "heldout_eval": {"every": 0}}, "heldout_eval needs every"),
    ("grpo", {**GRPO, "max_resample_rounds": -1}, "max_resample_rounds must be at least 0"),
    ("grpo", {**GRPO, "max_oversampling": 0.5}, "max_oversampling must be at least 1.0"),
    ("grpo", {**GRPO, "generation_loop": "rlab"}, "generation_loop must be one of"),
    ("grpo", {**GRPO, "sampling_dtype": "float16"}, "sampling_dtype must be one of"),
    ("grpo", {**GRPO, "vllm_importance_sampling_mode": "token"}, "vllm_importance_sampling_mode must be one of"),
    (
        "grpo",
        {**GRPO, "rewards": [{"name": TRL_REPETITION, "options": {"ngram_size": 3, "max_penalty": 0.5}}]},
        "max_penalty",
    ),
    ("grpo", {**GRPO, "rewards": ["no_such_reward"]}, "no_such_reward"),
    ("grpo", {**GRPO, "template": "yaml"}, "yaml"),
    ("grpo", {**GRPO, "final_eval": {"k": 0}}, "k must be at least 1"),
    ("grpo", {**GRPO, "use_peft": True, "lora_r": 0}, "lora_r must be at least 1"),
    ("grpo", {**GRPO, "stop_at_answer": True, "template": "think"}, "stop_at_answer"),
    ("sft", {"task": "gym:chain_sum", "packing": True, "max_length": None}, "packing needs max_length"),
    ("sft", {"task": "gym:chain_sum", "max_length": 4}, "max_length must be at least 8"),
    ("sft", {"task": "no_such_task"}, "unknown task 'no_such_task'"),
    ("eval", {"task": "gym:chain_sum", "k": 0}, "k must be at least 1"),
    ("eval", {"task": "gym:chain_sum", "backend": "tpu"}, "backend"),
    ("eval", {"task": "gym:chain_sum", "template": "yaml"}, "yaml"),
    (
        "cold-start-data",
        {"task": "gym:chain_sum", "source": "internet"},
        "source must be one of solutions, zero, fewshot, got 'internet'",
    ),
    ("cold-start-data", {"task": "gym:chain_sum", "source": "zero"}, "source zero needs --completions_file"),
    ("cold-start-data", {"task": "gym:chain_sum", "max_per_question": 0}, "max_per_question must be at least 1"),
    ("rejection-sampling", {"task": "mix"}, "give a reasoning task"),
    ("rejection-sampling", {"task": "gym:chain_sum", "temperature": -1.0}, "temperature"),
    (
        "rejection-sampling",
        {"task": "gym:chain_sum", "model_dtype": "int4"},
        "model_dtype must be one of auto, float32, bfloat16, float16",
    ),
    ("distill", {"task": "gym:chain_sum", "teacher": "embedded", "method": "onpolicy"}, "method must be one of"),
    ("distill", {"task": "gym:chain_sum", "method": "on_policy"}, "method on_policy needs a teacher"),
    ("distill", {"task": "gym:chain_sum", "teacher": "embedded", "method": "on_policy", "jsd_beta": 2.0}, "jsd_beta"),
    ("distill", {"task": "gym:chain_sum", "teacher": "embedded", "teacher_temperature": -1.0}, "teacher_temperature"),
    ("report", {"samples_per_phase": -1}, "samples_per_phase must be 0 or more"),
]
if not VLLM_INSTALLED:
    REFUSALS.append(("grpo", {**GRPO, "use_vllm": True}, "vLLM is not installed"))


def _pipeline(tmp_path, command, config) -> str:
    last = {"name": "last", "command": command, "config": config}
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        yaml.safe_dump({"name": "contract", "defaults": {"model": "embedded"}, "stages": [FIRST_STAGE, last]})
    )
    return str(path)


@pytest.mark.parametrize("command, config, message", REFUSALS, ids=[f"{c}-{m[:30]}" for c, _, m in REFUSALS])
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry_run"])
def test_a_bad_last_stage_stops_the_pipeline_before_anything_is_written(
    tmp_path, capsys, command, config, message, dry_run
):
    run_dir = tmp_path / "run"
    arguments = ["pipeline", "--config", _pipeline(tmp_path, command, config), "--run_dir", str(run_dir)]
    assert cli_main(arguments + (["--dry_run", "true"] if dry_run else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1lab: error: stage 'last':") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not run_dir.exists()


def test_the_battery_covers_every_pipeline_command():
    assert {command for command, _, _ in REFUSALS} == set(pipeline_commands())


@pytest.mark.parametrize("name", pipeline_commands())
def test_every_pipeline_command_declares_its_check(name):
    module, _ = load_command(name)
    assert callable(getattr(module, COMMANDS[name].check, None)), f"{module.__name__} has no {COMMANDS[name].check}()"
