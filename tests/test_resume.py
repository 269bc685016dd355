"""Resume after a kill: a tiny-model run killed with SIGKILL mid-way and resumed ends where an uninterrupted
run ends: the same weights, the same per-step metrics, the same GRPO completions.

The killed run is a real ``python -m r1lab`` process, killed once a checkpoint has been saved; the resumed
and the uninterrupted runs are in-process. The GRPO run crosses an epoch boundary after the checkpoint (a new
sampler after the resume must still give the next epoch's order); the SFT run also loses its newest checkpoint
as a kill during its save would (no trainer_state.json), so it resumes from the one before.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1lab.cli import main as cli_main
from r1lab.outputs import is_complete_checkpoint

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
# Timing figures differ between any two runs.
TIMING_KEYS = {"step_seconds", "step_time", "train_runtime", "train_samples_per_second", "train_steps_per_second"}

GRPO_RUN = [
    "grpo",
    "--task",
    "gym:chain_sum",
    "--task_size",
    "2",  # one prompt per step: epoch 0 is steps 1-2, epoch 1 step 3
    "--task_options",
    "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
    "--rewards",
    "xml.soft_format,reward_helpers.distinct_characters",
    "--num_generations",
    "4",
    "--per_device_train_batch_size",
    "4",
    "--gradient_accumulation_steps",
    "1",
    "--max_completion_length",
    "8",
    "--max_steps",
    "3",
    "--learning_rate",
    "1e-2",
    "--logging_steps",
    "1",
    "--save_steps",
    "1",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
]
SFT_RUN = [
    "sft",
    "--task",
    "gym:chain_sum",
    "--task_size",
    "8",
    "--task_options",
    "{min_terms: 2, max_terms: 3, min_digits: 1, max_digits: 2}",
    "--per_device_train_batch_size",
    "2",  # 4 steps an epoch
    "--max_steps",
    "5",
    "--learning_rate",
    "1e-2",
    "--logging_steps",
    "1",
    "--save_steps",
    "1",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
]


def run_and_kill(
    argv: list[str],
    output_dir,
    after_checkpoint: int,
    log_path,
    timeout: float = 300,
    program: tuple[str, ...] = ("-m", "r1lab"),
) -> None:
    """``python -m r1lab <argv>`` (or ``python <program> <argv>``), SIGKILLed as soon as checkpoint-<after_checkpoint>
    is complete (its trainer_state.json, written last, is whole)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS_DIR, env.get("PYTHONPATH")]))
    ready = output_dir / f"checkpoint-{after_checkpoint}" / "trainer_state.json"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *program, *argv], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while not is_complete_checkpoint(str(ready.parent)):
                if process.poll() is not None:
                    pytest.fail(
                        f"the run ended (code {process.returncode}) before {ready} appeared:\n{Path(log_path).read_text()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"no {ready} after {timeout} s:\n{Path(log_path).read_text()[-3000:]}")
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (output_dir / "r1lab_stage.json").exists(), "the run finished before the kill"
    assert not (output_dir / "model.safetensors").exists()


def weights(model_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


def assert_same_weights(resumed_dir, reference_dir) -> None:
    import torch

    resumed, reference = weights(resumed_dir), weights(reference_dir)
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(resumed[name], reference[name], rtol=1e-5, atol=1e-6), name


def json_lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def assert_same_records(resumed: list[dict], reference: list[dict]) -> None:
    assert [record.get("step") for record in resumed] == [record.get("step") for record in reference]
    for got, want in zip(resumed, reference):
        assert set(got) == set(want), (got.get("step"), set(got) ^ set(want))
        for key, value in want.items():
            if key in TIMING_KEYS:
                continue
            if isinstance(value, float):
                assert math.isclose(got[key], value, rel_tol=1e-5, abs_tol=1e-7), (want["step"], key, got[key], value)
            else:
                assert got[key] == value, (want["step"], key)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        # dynamic sampling: question 1's groups are flat (dropped, more prompts drawn); the extra draws must repeat
        ["--dynamic_sampling", "true", "--rewards", "xml.soft_format,reward_helpers.varies_on_even_questions"],
    ],
    ids=["plain", "dynamic-sampling"],
)
def test_grpo_killed_mid_run_and_resumed_matches_an_uninterrupted_run(tiny_model_dir, tmp_path, caplog, extra):
    caplog.set_level(logging.INFO, logger="r1lab")
    killed = tmp_path / "killed"
    run = [*GRPO_RUN, "--model", tiny_model_dir, *extra]
    run_and_kill([*run, "--output_dir", str(killed)], killed, after_checkpoint=2, log_path=tmp_path / "killed.log")
    first_checkpoint = (killed / "checkpoint-1" / "trainer_state.json").read_bytes()

    assert cli_main([*run, "--output_dir", str(killed), "--resume", "true"]) == 0
    resumed_from = [r.getMessage() for r in caplog.records if r.getMessage().startswith("r1lab: resuming from")]
    assert len(resumed_from) == 1 and "checkpoint-" in resumed_from[0]
    assert int(resumed_from[0].rsplit("-", 1)[1]) >= 2  # not from the start
    assert (killed / "checkpoint-1" / "trainer_state.json").read_bytes() == first_checkpoint  # not trained again

    reference = tmp_path / "reference"
    assert cli_main([*run, "--output_dir", str(reference)]) == 0

    assert_same_weights(str(killed), str(reference))
    assert_same_records(json_lines(killed / "metrics.jsonl"), json_lines(reference / "metrics.jsonl"))
    # the same prompts in the same order, the same sampled completions and rewards
    assert json_lines(killed / "completions.jsonl") == json_lines(reference / "completions.jsonl")
    marker, reference_marker = (json.loads((d / "r1lab_stage.json").read_text()) for d in (killed, reference))
    assert math.isclose(
        marker["figures"]["train_loss"], reference_marker["figures"]["train_loss"], rel_tol=1e-4, abs_tol=1e-9
    )
    assert marker["figures"]["reward"] == pytest.approx(reference_marker["figures"]["reward"])
    if "--dynamic_sampling" in extra:  # flat groups were dropped and re-drawn, the same way in both runs
        assert any(
            record.get("dynamic_sampling/groups_dropped", 0) > 0 for record in json_lines(killed / "metrics.jsonl")
        )


def test_sft_killed_mid_run_and_resumed_from_an_earlier_checkpoint_matches(tiny_model_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="r1lab")
    killed = tmp_path / "killed"
    run = [*SFT_RUN, "--model", tiny_model_dir]
    run_and_kill([*run, "--output_dir", str(killed)], killed, after_checkpoint=3, log_path=tmp_path / "killed.log")
    # The newest checkpoint loses the file written last, as when the kill lands during its save: --resume
    # passes over it to the one before.
    from r1lab.outputs import last_checkpoint

    newest = last_checkpoint(str(killed))
    os.unlink(os.path.join(newest, "trainer_state.json"))
    earlier = last_checkpoint(str(killed))
    assert earlier is not None and earlier != newest

    assert cli_main([*run, "--output_dir", str(killed), "--resume", "true"]) == 0
    assert f"r1lab: resuming from {earlier}" in [record.getMessage() for record in caplog.records]
    reference = tmp_path / "reference"
    assert cli_main([*run, "--output_dir", str(reference)]) == 0

    assert_same_weights(str(killed), str(reference))
    assert_same_records(json_lines(killed / "metrics.jsonl"), json_lines(reference / "metrics.jsonl"))
    marker, reference_marker = (json.loads((d / "r1lab_stage.json").read_text()) for d in (killed, reference))
    assert math.isclose(marker["figures"]["train_loss"], reference_marker["figures"]["train_loss"], rel_tol=1e-5)


def test_the_last_checkpoint_is_the_last_complete_one(tmp_path):
    from r1lab import pipeline
    from r1lab.outputs import last_checkpoint

    assert pipeline.last_checkpoint is last_checkpoint  # the pipeline resumes from the same one

    for step, state in ((1, "{}"), (2, "{}"), (10, '{"global_step": 10}'), (11, None), (12, ""), (13, '{"global_st')):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:  # 11: not written yet; 12, 13: the kill came while it was written
            (folder / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-x").mkdir()
    (tmp_path / "checkpoint-14").write_text("a file")
    assert last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")
    assert last_checkpoint(str(tmp_path / "missing")) is None


def test_metrics_of_steps_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    """A killed run may have logged steps past its last checkpoint: the resumed run logs them again."""
    from r1lab.run_files import METRICS, keep_records_up_to

    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": step, "loss": 1.0 / step}) + "\n" for step in (1, 2, 3, 4)]
    path.write_text("".join(lines) + '{"step": 5, "lo')  # cut off mid-line by the kill
    assert [record["step"] for record in keep_records_up_to(str(path), METRICS, 3)] == [1, 2, 3]
    assert path.read_text() == "".join(lines[:3])
    assert (
        keep_records_up_to(str(path), METRICS, 0) == [] and path.read_text() == ""
    )  # a fresh run starts an empty file


def test_a_resumed_sampler_gives_each_epoch_the_uninterrupted_order():
    from r1lab.training.grpo_trainer import EpochSeededRepeatSampler

    def order(sampler, epoch):
        sampler.set_epoch(epoch)
        return list(sampler)

    uninterrupted = EpochSeededRepeatSampler(list(range(6)), mini_repeat_count=2, batch_size=3, seed=42)
    orders = [order(uninterrupted, epoch) for epoch in range(4)]
    assert len({tuple(o) for o in orders}) > 1  # epochs are shuffled differently
    for epoch in range(4):  # a new sampler (a resumed run) starting at any epoch
        assert (
            order(EpochSeededRepeatSampler(list(range(6)), mini_repeat_count=2, batch_size=3, seed=42), epoch)
            == orders[epoch]
        )


@pytest.mark.slow
def test_pipeline_killed_mid_stage_and_resumed_matches_an_uninterrupted_stage(tiny_model_dir, tmp_path):
    import yaml

    values = dict(zip(GRPO_RUN[1::2], GRPO_RUN[2::2]))
    config = {key.lstrip("-"): yaml.safe_load(value) for key, value in values.items()}
    recipe = tmp_path / "pipeline.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "killed",
                "defaults": {"model": tiny_model_dir},
                "stages": [{"name": "train", "command": "grpo", "config": config}],
            }
        )
    )
    run_dir = tmp_path / "run"
    stage = run_dir / "01-train"
    pipeline = ["pipeline", "--config", str(recipe), "--run_dir", str(run_dir)]
    run_and_kill(pipeline, stage, after_checkpoint=2, log_path=tmp_path / "killed.log")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"][0]["status"] == "running"  # as the kill left it

    assert cli_main([*pipeline, "--resume", "true"]) == 0
    assert json.loads((run_dir / "manifest.json").read_text())["stages"][0]["status"] == "finished"
    reference = tmp_path / "reference"
    assert cli_main([*GRPO_RUN, "--model", tiny_model_dir, "--output_dir", str(reference)]) == 0
    assert_same_weights(str(stage), str(reference))
    assert_same_records(json_lines(stage / "metrics.jsonl"), json_lines(reference / "metrics.jsonl"))
    assert json_lines(stage / "completions.jsonl") == json_lines(reference / "completions.jsonl")
