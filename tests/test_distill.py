"""Distillation = rejection sampling with a teacher + SFT of a student: the recipe, the pipelines in
docs/stages.md, and the teacher → student → eval chain on tiny models."""

from __future__ import annotations

import json
import os
import re

import yaml

from r1lab.cli import main as cli_main
from test_rejection import OPTIONS, SAMPLES_PER_QUESTION, chain_sum_rows, stub_generation

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_distill_recipe_is_an_sft_recipe_for_a_small_student():
    from r1lab.config import load_config
    from r1lab.stages.common import check_final_eval
    from r1lab.stages.sft import R1SFTConfig

    config = load_config(R1SFTConfig, os.path.join(REPO_ROOT, "recipes/r1/distill.yaml"), {})
    assert config.model == "Qwen/Qwen2.5-0.5B-Instruct" and config.template == "think"
    assert config.train_file and config.max_length
    check_final_eval(config)


def test_pipelines_in_the_docs_are_valid():
    from r1lab.pipeline import PipelineConfig, _build_stage_config, plan_stages

    text = open(os.path.join(REPO_ROOT, "docs/stages.md"), encoding="utf-8").read()
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
        {"name": "teacher-samples", "command": "rejection-sampling",
         "config": {"model": tiny_model_dir, "task": "gym:chain_sum", "task_size": 4, "task_options": OPTIONS,
                    "num_samples": SAMPLES_PER_QUESTION, "max_per_question": 2, "general_ratio": 0}},
        {"name": "student", "command": "sft",
         "config": {"model": student, "max_steps": 1, "per_device_train_batch_size": 2, "save_strategy": "no"},
         "inputs": {"train_file": "teacher-samples"}},
        {"name": "student-eval", "command": "eval",
         "config": {"task": "gym:chain_sum", "task_size": 8, "task_options": OPTIONS, "limit": 2, "k": 1,
                    "max_new_tokens": 4, "progress": False},
         "inputs": {"model": "student"}},
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
