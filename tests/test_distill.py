"""Distillation = rejection sampling with a teacher + SFT of a student: the recipe, the pipelines in
docs/stages.md, and the teacher → student → eval chain on tiny models."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from test_rejection import OPTIONS, SAMPLES_PER_QUESTION, chain_sum_rows, stub_generation

from r1lab.cli import main as cli_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("recipe", ["recipes/r1/distill.yaml", "recipes/quickstart/distill.yaml"])
def test_distill_recipes_name_a_teacher_and_a_student(recipe):
    from r1lab.config import load_config
    from r1lab.stages.distill import R1DistillConfig
    from r1lab.training.stage import check_final_eval

    config = load_config(R1DistillConfig, os.path.join(REPO_ROOT, recipe), {})
    assert config.teacher and config.model != config.teacher and not config.train_file
    assert config.method == "sft" and config.max_length and config.num_samples >= 1
    check_final_eval(config)


def test_pipelines_in_the_docs_are_valid():
    from r1lab.pipeline import PipelineConfig, _build_stage_config, plan_stages

    text = Path(os.path.join(REPO_ROOT, "docs/stages.md")).read_text(encoding="utf-8")
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]
    pipelines = [block for block in blocks if "run_dir" in block]
    assert pipelines
    for values in pipelines:
        config = PipelineConfig(**values, config_dir=os.path.join(REPO_ROOT, "recipes/r1"))
        plans = plan_stages(config)
        outputs = {plan.name: plan.output_dir for plan in plans}
        commands = [_build_stage_config(plan, outputs)[1] for plan in plans]  # every key known, every value typed
        student = commands[[plan.name for plan in plans].index("student")]
        assert student.train_file == outputs["teacher-samples"]


def test_teacher_samples_then_student_sft_then_eval(tiny_model_dir, tmp_path, monkeypatch):
    from conftest import build_tiny_model_dir

    rows = chain_sum_rows()
    stub_generation(monkeypatch, rows, unsolvable=1)  # the teacher; eval samples with the real sampler
    student = build_tiny_model_dir(str(tmp_path / "student"), seed=1)
    stages = [
        {
            "name": "teacher-samples",
            "command": "rejection-sampling",
            "config": {
                "model": tiny_model_dir,
                "task": "gym:chain_sum",
                "task_size": 4,
                "task_options": OPTIONS,
                "num_samples": SAMPLES_PER_QUESTION,
                "max_per_question": 2,
                "general_ratio": 0,
            },
        },
        {
            "name": "student",
            "command": "sft",
            "config": {"model": student, "max_steps": 1, "per_device_train_batch_size": 2, "save_strategy": "no"},
            "inputs": {"train_file": "teacher-samples"},
        },
        {
            "name": "student-eval",
            "command": "eval",
            "config": {
                "task": "gym:chain_sum",
                "task_size": 8,
                "task_options": OPTIONS,
                "limit": 2,
                "k": 1,
                "max_new_tokens": 4,
                "progress": False,
            },
            "inputs": {"model": "student"},
        },
    ]
    recipe = tmp_path / "distill.yaml"
    recipe.write_text(yaml.safe_dump({"name": "distill", "stages": stages}))
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", str(recipe), "--run_dir", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [stage["status"] for stage in manifest["stages"]] == ["finished"] * 3
    teacher, trained, evaluated = manifest["stages"]
    assert teacher["figures"]["kept_reasoning"] == 6 and teacher["figures"]["general_added"] == 0
    assert trained["config"]["train_file"] == str(run_dir / "01-teacher-samples")
    assert trained["figures"]["train_samples"] == 6
    assert evaluated["config"]["model"] == str(run_dir / "02-student") and evaluated["figures"]["questions"] == 2


# --- r1lab distill: the one-command form -------------------------------------------------------------------

DISTILL_TRAINING = [
    "--max_steps",
    "1",
    "--per_device_train_batch_size",
    "2",
    "--logging_steps",
    "1",
    "--save_strategy",
    "no",
    "--report_to",
    "none",
]


def _distill(student, output, *extra) -> int:
    return cli_main(
        [
            "distill",
            "--model",
            student,
            "--task",
            "gym:chain_sum",
            "--task_size",
            "4",
            "--task_options",
            json.dumps(OPTIONS),
            "--output_dir",
            str(output),
            *DISTILL_TRAINING,
            *extra,
        ]
    )


def _weights(path):
    from safetensors.torch import load_file

    return load_file(os.path.join(path, "model.safetensors"))


def test_distill_samples_the_teacher_then_trains_the_student(tiny_model_dir, tmp_path, monkeypatch):
    from conftest import build_tiny_model_dir

    calls = []
    stub_generation(monkeypatch, chain_sum_rows(), unsolvable=1, calls=calls)
    student = build_tiny_model_dir(str(tmp_path / "student"), seed=1)
    output = tmp_path / "distilled"
    code = _distill(
        student,
        output,
        "--teacher",
        tiny_model_dir,
        "--num_samples",
        str(SAMPLES_PER_QUESTION),
        "--max_per_question",
        "2",
        "--teacher_temperature",
        "0.8",
    )
    assert code == 0
    assert len(calls) == 1 and calls[0]["temperature"] == 0.8
    samples = [
        json.loads(line)
        for line in (output / "teacher-samples" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(samples) == 6 and {sample["source"] for sample in samples} == {
        "reasoning"
    }  # 3 solvable x 2, no general data
    marker = json.loads((output / "r1lab_stage.json").read_text())
    assert marker["stage"] == "distill" and marker["figures"]["train_samples"] == 6
    assert marker["figures"]["teacher"]["verified"] == 3 * 3  # per solvable question: kept, over the cap, repetitive
    before, after = _weights(student), _weights(str(output))
    assert any(not before[name].equal(after[name]) for name in before), "the student's weights did not change"


def test_distill_reuses_finished_teacher_samples_unless_overwrite(tiny_model_dir, tmp_path, monkeypatch):
    from r1lab.config import build_config
    from r1lab.stages.distill import R1DistillConfig, teacher_traces

    output = tmp_path / "distilled"
    samples = output / "teacher-samples"
    samples.mkdir(parents=True)
    (samples / "r1lab_stage.json").write_text(json.dumps({"stage": "rejection-sampling", "status": "finished"}))
    settings = {"model": tiny_model_dir, "teacher": tiny_model_dir, "output_dir": str(output), "report_to": "none"}
    sampled = []
    monkeypatch.setattr("r1lab.stages.rejection.main", lambda config: sampled.append(config.output) or {"verified": 1})
    assert teacher_traces(build_config(R1DistillConfig, settings)) == (str(samples), None)
    assert sampled == []
    assert teacher_traces(build_config(R1DistillConfig, {**settings, "overwrite": True})) == (
        str(samples),
        {"verified": 1},
    )
    assert sampled == [str(samples)]


def test_distill_from_a_train_file_needs_no_teacher(tiny_model_dir, tmp_path):
    train_file = tmp_path / "traces.jsonl"
    rows = [
        {
            "prompt": f"What is {n} + 1?",
            "completion": f"<reasoning>\n{n} + 1 = {n + 1}\n</reasoning>\n<answer>\n{n + 1}\n</answer>",
        }
        for n in range(4)
    ]
    train_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "distilled"
    assert _distill(tiny_model_dir, output, "--train_file", str(train_file)) == 0
    marker = json.loads((output / "r1lab_stage.json").read_text())
    assert (
        marker["stage"] == "distill"
        and marker["figures"]["train_samples"] == 4
        and marker["figures"]["teacher"] is None
    )
    assert not (output / "teacher-samples").exists()


def test_on_policy_distillation_trains_the_student_towards_the_teacher(tiny_model_dir, tmp_path):
    from conftest import build_tiny_model_dir

    student = build_tiny_model_dir(str(tmp_path / "student"), seed=1)
    output = tmp_path / "on-policy"
    code = _distill(
        student,
        output,
        "--teacher",
        tiny_model_dir,
        "--method",
        "on_policy",
        "--teacher_max_new_tokens",
        "6",
        "--jsd_beta",
        "0.5",
    )
    assert code == 0
    marker = json.loads((output / "r1lab_stage.json").read_text())
    assert marker["stage"] == "distill" and marker["config"]["method"] == "on_policy"
    before, after = _weights(student), _weights(str(output))
    assert any(not before[name].equal(after[name]) for name in before), "the student's weights did not change"


def _other_vocabulary_model(tmp_path) -> str:
    from conftest import build_tiny_model_dir
    from transformers import AutoTokenizer

    path = build_tiny_model_dir(str(tmp_path / "other-vocab"), seed=2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.add_tokens(["<r1lab-extra-token>"])
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs a teacher (--teacher MODEL) or its traces"),
        (["--teacher", "/nonexistent/teacher"], "/nonexistent/teacher"),
        (["--teacher", "TINY", "--method", "logits"], "method must be one of sft, on_policy"),
        (["--method", "on_policy"], "method on_policy needs a teacher"),
        (["--teacher", "TINY", "--method", "on_policy", "--jsd_beta", "1.5"], "jsd_beta must be at most 1.0"),
        (["--teacher", "OTHER", "--method", "on_policy"], "tokenize differently"),
        (["--teacher", "TINY", "--num_samples", "0"], "num_samples must be at least 1"),
        (["--teacher", "TINY", "--teacher_max_new_tokens", "0"], "teacher_max_new_tokens must be at least 1"),
        (["--teacher", "TINY", "--teacher_temperature", "-1"], "teacher_temperature must be at least 0.0"),
    ],
)
def test_distill_bad_input_is_one_line_exit_2_nothing_written(extra, message, tiny_model_dir, tmp_path, capsys):
    replace = {"TINY": tiny_model_dir}
    if "OTHER" in extra:
        replace["OTHER"] = _other_vocabulary_model(tmp_path)
        capsys.readouterr()  # the model's save progress bar
    output = tmp_path / "distilled"
    assert _distill(tiny_model_dir, output, *[replace.get(value, value) for value in extra]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error
    assert not output.exists()
