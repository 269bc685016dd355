"""Two CPU processes over gloo under ``accelerate launch`` (configs/accelerate/cpu_2proc.yaml): a pipeline of
cold-start data → SFT → GRPO → eval on the tiny model, launched as ``accelerate launch … -m r1lab pipeline``.

It shows: both ranks train both stages and finish (exit 0, each rank logs its rank); the stages see a world of
2 (stage markers); the files are rank 0's alone (one manifest, one metrics.jsonl per training stage with one
line per logged step, the pipeline's progress printed once); the rank-0-only stages (data, eval) run once; the
weights stay identical across ranks (each rank logs a fingerprint of its trained weights) and equal the saved
model's.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCELERATE_CONFIG = os.path.join(REPO_ROOT, "configs", "accelerate", "cpu_2proc.yaml")
# 2-digit terms: the test split keeps questions after leaving out the train and validation draws
TASK = {"task": "gym:chain_sum", "task_options": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}}
FINGERPRINT = re.compile(r"r1lab: rank (\d)/(\d) finished (\w+) training, weights fingerprint (\w+)")
# What a machine that cannot run gloo between two local processes says (no loopback, sandboxed sockets).
NO_GLOO = ("DistNetworkError", "connectFullMesh", "Connection refused", "Address already in use", "Gloo")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pipeline(tmp_path, model_dir) -> str:
    stages = [
        {"name": "data", "command": "cold-start-data", "config": {**TASK, "task_size": 12}},
        {
            "name": "sft",
            "command": "sft",
            "inputs": {"train_file": "data"},
            "config": {
                **TASK,
                "max_steps": 2,
                "per_device_train_batch_size": 2,
                "learning_rate": 1e-2,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": "none",
            },
        },
        {
            "name": "grpo",
            "command": "grpo",
            "inputs": {"model": "sft"},
            "config": {
                **TASK,
                "task_size": 8,
                "rewards": ["xml.soft_format", "accuracy", "reward_helpers.distinct_characters"],
                "num_generations": 4,
                "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "max_completion_length": 8,
                "max_steps": 2,
                "learning_rate": 1e-2,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": "none",
            },
        },
        {
            "name": "eval",
            "command": "eval",
            "inputs": {"model": "grpo"},
            "config": {**TASK, "limit": 2, "k": 1, "max_new_tokens": 4, "progress": False},
        },
    ]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "ddp", "stages": stages, "defaults": {"model": model_dir, "seed": 3}}))
    return str(path)


def _fingerprint_of_saved(model_dir: str) -> str:
    import torch
    from transformers import AutoModelForCausalLM

    from r1lab.training.checkpoints import weights_fingerprint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ranks summed with one thread each: the same reduction order
    try:
        return weights_fingerprint(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32))
    finally:
        torch.set_num_threads(threads)


def test_pipeline_on_two_cpu_processes_writes_once_and_keeps_ranks_identical(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        ACCELERATE_CONFIG,
        "--main_process_port",
        str(_free_port()),
        "-m",
        "r1lab",
        "pipeline",
        "--config",
        _pipeline(tmp_path, tiny_model_dir),
        "--run_dir",
        str(run_dir),
    ]
    tests_dir = os.path.join(REPO_ROOT, "tests")  # reward_helpers: a reward with variance, so GRPO moves the weights
    python_path = os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": python_path}
    began = time.time()
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=420)
    seconds = time.time() - began
    output = result.stdout + result.stderr
    if result.returncode != 0 and any(sign in output for sign in NO_GLOO) and "Traceback" not in result.stdout:
        pytest.skip(f"accelerate could not start two gloo processes here: {output[-800:]}")
    assert result.returncode == 0, output[-6000:]
    print(f"2-process pipeline: {seconds:.1f} s")

    # both ranks trained both stages, in a world of 2, and their weights agree with each other and the saved model
    logged = {
        (stage, int(rank)): (int(world), fingerprint) for rank, world, stage, fingerprint in FINGERPRINT.findall(output)
    }
    assert set(logged) == {("sft", 0), ("sft", 1), ("grpo", 0), ("grpo", 1)}, output[-4000:]
    for stage, number in (("sft", "02"), ("grpo", "03")):
        assert logged[(stage, 0)][0] == logged[(stage, 1)][0] == 2
        assert logged[(stage, 0)][1] == logged[(stage, 1)][1] != "None", f"{stage}: the ranks' weights differ"
        stage_dir = run_dir / f"{number}-{stage}"
        marker = json.loads((stage_dir / "r1lab_stage.json").read_text())
        assert marker["figures"]["world_size"] == 2
        assert marker["figures"]["weights_fingerprint"] == logged[(stage, 0)][1]
        assert _fingerprint_of_saved(str(stage_dir)) == logged[(stage, 0)][1], f"{stage}: saved weights differ"
        # one metrics line per logged step, not one per rank
        records = [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
        assert [record["step"] for record in records if "loss" in record] == [1, 2]
    # both stages trained: SFT moved the tiny model's weights, GRPO the SFT model's
    assert _fingerprint_of_saved(str(run_dir / "02-sft")) != _fingerprint_of_saved(tiny_model_dir)
    assert logged[("grpo", 0)][1] != logged[("sft", 0)][1], "GRPO did not change the weights"

    # rank 0's files only: one manifest, one metrics file per training stage, no leftover staging directories
    files = [os.path.join(root, name) for root, _, names in os.walk(run_dir) for name in names]
    assert [path for path in files if path.endswith("manifest.json")] == [str(run_dir / "manifest.json")]
    assert sorted(os.path.relpath(p, run_dir) for p in files if p.endswith("metrics.jsonl")) == [
        os.path.join("02-sft", "metrics.jsonl"),
        os.path.join("03-grpo", "metrics.jsonl"),
    ]
    assert not [path for path in files if "/.model-" in path or os.path.basename(path).startswith(".manifest")]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [stage["status"] for stage in manifest["stages"]] == ["finished"] * 4
    assert json.loads((run_dir / "04-eval" / "summary.json").read_text())["questions"] == 2
    # GRPO's completions are gathered from both ranks onto rank 0: 4 per rank and step
    completions = (run_dir / "03-grpo" / "completions.jsonl").read_text().splitlines()
    assert len(completions) == 2 * 2 * 4
    # the pipeline's progress is printed by rank 0 only
    assert result.stdout.count("r1lab pipeline: stage 2/4 sft (sft)") == 1
