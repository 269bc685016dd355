"""The pipeline: stages chained by output directories, the manifest, resume after a failure."""

from __future__ import annotations

import json

import pytest
import yaml

from r1lab.cli import main as cli_main


def _grpo_stage(name, model_input=None, **overrides):
    config = {
        "task": "gym:chain_sum",
        "task_size": 8,
        "task_options": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
        "rewards": ["xml.soft_format", "reward_helpers.distinct_characters"],
        "num_generations": 4,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_completion_length": 8,
        "max_steps": 1,
        "save_strategy": "no",
        "logging_steps": 1,
        **overrides,
    }
    stage = {"name": name, "command": "grpo", "config": config}
    if model_input:
        stage["inputs"] = {"model": model_input}
    return stage


def _write_pipeline(path, stages, **extra):
    path.write_text(yaml.safe_dump({"name": "tiny", "stages": stages, **extra}))
    return str(path)


def test_three_stage_pipeline_chains_outputs_and_writes_manifest(tiny_model_dir, tmp_path, capsys):
    recipe = _write_pipeline(
        tmp_path / "pipeline.yaml",
        [_grpo_stage("first"), _grpo_stage("second", "first"), _grpo_stage("third", "second")],
        defaults={"model": tiny_model_dir, "seed": 3},
    )
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", recipe, "--run_dir", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = manifest["stages"]
    assert [stage["name"] for stage in stages] == ["first", "second", "third"]
    assert all(stage["status"] == "finished" for stage in stages)
    assert stages[1]["config"]["model"] == str(run_dir / "01-first")
    assert stages[2]["config"]["model"] == str(run_dir / "02-second")
    assert stages[0]["config"]["model"] == tiny_model_dir and stages[0]["config"]["seed"] == 3
    for stage in stages:
        assert (run_dir / stage["output"].split("/")[-1] / "r1lab_stage.json").exists()
        assert stage["started"] <= stage["ended"] and "figures" in stage
    assert cli_main(["status", str(run_dir)]) == 0
    assert "third" in capsys.readouterr().out


def test_resume_after_an_injected_failure_skips_finished_stages(tiny_model_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    failing = _write_pipeline(
        tmp_path / "failing.yaml",
        # max_completion_length beyond the tiny model's 1024-token context fails stage two at validation.
        [_grpo_stage("first"), _grpo_stage("second", "first", max_completion_length=5000)],
        defaults={"model": tiny_model_dir},
    )
    assert cli_main(["pipeline", "--config", failing, "--run_dir", str(run_dir)]) == 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [stage["status"] for stage in manifest["stages"]] == ["finished", "failed"]
    assert "context" in manifest["stages"][1]["error"]
    first_marker = (run_dir / "01-first" / "r1lab_stage.json").read_text()

    # Without --resume an existing run is refused rather than silently mixed.
    assert cli_main(["pipeline", "--config", failing, "--run_dir", str(run_dir)]) == 2
    assert "--resume" in capsys.readouterr().err

    fixed = _write_pipeline(
        tmp_path / "fixed.yaml",
        [_grpo_stage("first"), _grpo_stage("second", "first")],
        defaults={"model": tiny_model_dir},
    )
    assert cli_main(["pipeline", "--config", fixed, "--run_dir", str(run_dir), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "first: finished earlier, skipped" in out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [stage["status"] for stage in manifest["stages"]] == ["finished", "finished"]
    assert (run_dir / "01-first" / "r1lab_stage.json").read_text() == first_marker


@pytest.mark.parametrize(
    "stages, message",
    [
        ([_grpo_stage("a", "missing")], "names stage 'missing'"),
        ([_grpo_stage("a", "b"), _grpo_stage("b")], "names stage 'b'"),
        ([_grpo_stage("a"), _grpo_stage("a")], "used twice"),
        ([{"name": "a", "command": "bake", "config": {}}], "unknown command 'bake'"),
        ([{"name": "a", "command": "grpo", "config": {}, "extra": 1}], "unknown key"),
        ([], "no stages"),
    ],
)
def test_bad_pipelines_are_refused_before_anything_runs(tmp_path, capsys, stages, message):
    recipe = _write_pipeline(tmp_path / "bad.yaml", stages)
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", recipe, "--run_dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1lab: error:") and message in err
    assert not run_dir.exists()


def test_quickstart_shaped_pipeline_data_sft_grpo_eval_report(tiny_model_dir, tmp_path, capsys):
    """The quickstart's stages on the tiny model: cold-start data → SFT on it → GRPO → eval → report."""
    # 2-digit terms: enough distinct questions that the test split keeps some after leaving out train and validation
    task = {"task": "gym:chain_sum", "task_options": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}}
    eval_config = {**task, "limit": 3, "k": 2, "max_new_tokens": 8, "progress": False}
    stages = [
        {"name": "data", "command": "cold-start-data", "config": {**task, "task_size": 12}},
        {
            "name": "sft",
            "command": "sft",
            "inputs": {"train_file": "data"},
            "config": {**task, "max_steps": 1, "per_device_train_batch_size": 4, "save_strategy": "no"},
        },
        _grpo_stage("grpo", "sft"),
        {"name": "eval", "command": "eval", "inputs": {"model": "grpo"}, "config": eval_config},
        {"name": "report", "command": "report"},
    ]
    recipe = _write_pipeline(tmp_path / "pipeline.yaml", stages, defaults={"model": tiny_model_dir})
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", recipe, "--run_dir", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [stage["status"] for stage in manifest["stages"]] == ["finished"] * 5
    assert manifest["stages"][1]["config"]["train_file"] == str(run_dir / "01-data")
    assert json.loads((run_dir / "04-eval" / "summary.json").read_text())["questions"] == 3
    assert (run_dir / "report.html").is_file()
    # a resumed finished run does nothing again
    assert cli_main(["pipeline", "--config", recipe, "--run_dir", str(run_dir), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished earlier, skipped") == 5
    assert "held-out questions: 3" in printed and "pass@1" in printed
    assert f"report: {run_dir / 'report.html'}" in printed


@pytest.mark.parametrize("name", ["quickstart", "r1-zero", "r1", "cpu-rl", "r1-cpu", "code-rl"])
def test_shipped_pipelines_build_every_stage_config(name, tmp_path, capsys, monkeypatch):
    """--dry_run builds and checks each stage's config as the run would (keys, types, inputs, each command's check)
    and runs nothing. The GPU recipes are checked as on a GPU machine with vLLM installed."""
    import os

    from conftest import REPO_ROOT

    monkeypatch.setattr("r1lab.vllm_support.vllm_installed", lambda: True)
    monkeypatch.setattr("r1lab.vllm_support.gpu_visible", lambda: True)

    recipe = os.path.join(REPO_ROOT, "recipes", name, "pipeline.yaml")
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", recipe, "--run_dir", str(run_dir), "--dry_run", "true"]) == 0
    assert "stage configs valid, nothing run" in capsys.readouterr().out
    assert not run_dir.exists()
