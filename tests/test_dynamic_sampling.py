"""Dynamic sampling (DAPO) in a real tiny GRPO run: flat groups are dropped and re-drawn, every group a step trains
on has reward variance, and every step trains on its configured number of groups."""

from __future__ import annotations

import json
import logging

import pytest

from r1lab.cli import main as cli_main


def _run(tiny_model_dir, output_dir, rewards, extra=()):
    return cli_main(
        [
            "grpo",
            "--model",
            tiny_model_dir,
            "--task",
            "gym:chain_sum",
            "--task_size",
            "8",
            "--task_options",
            "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--rewards",
            rewards,
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "2",
            "--max_completion_length",
            "10",
            "--max_steps",
            "3",
            "--learning_rate",
            "1e-2",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--dynamic_sampling",
            "true",
            "--output_dir",
            str(output_dir),
            *extra,
        ]
    )


@pytest.fixture
def joined_batches(monkeypatch):
    """Every batch dynamic sampling hands to TRL, as (its advantages, per group)."""
    import r1lab.training.grpo_trainer as grpo_trainer

    seen, real = [], grpo_trainer.join_groups

    def recording(picked, group_size, pad_token_id):
        joined = real(picked, group_size, pad_token_id)
        seen.append(joined["advantages"].view(-1, group_size))
        return joined

    monkeypatch.setattr(grpo_trainer, "join_groups", recording)
    return seen


def _records(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]


def test_every_trained_group_has_reward_variance(tiny_model_dir, tmp_path, joined_batches):
    """Odd-numbered questions' groups all score the same: they are dropped and replaced by groups that vary."""
    assert _run(tiny_model_dir, tmp_path / "run", "reward_helpers.varies_on_even_questions") == 0
    assert len(joined_batches) == 3  # one generation batch per optimizer step
    for groups in joined_batches:
        assert groups.shape == (2, 4)  # the configured 2 prompts x 4 completions per step
        assert all(group.abs().max() > 0 for group in groups), "a flat group was trained on"
    records = _records(tmp_path / "run")
    assert [record["dynamic_sampling/effective_groups"] for record in records] == [2.0, 2.0, 2.0]
    for record in records:
        dropped, sampled = record["dynamic_sampling/groups_dropped"], record["dynamic_sampling/groups_sampled"]
        extra = record["dynamic_sampling/groups_oversampled"]
        assert sampled == 2 * record["dynamic_sampling/rounds"] + extra and sampled - dropped >= 2
    assert any(record["dynamic_sampling/groups_dropped"] > 0 for record in records)  # odd questions came up
    assert records[0]["dynamic_sampling/groups_oversampled"] == 0  # no history yet
    assert any(
        record["dynamic_sampling/groups_oversampled"] > 0 for record in records[1:]
    )  # about half the groups vary


def test_no_oversampling_when_switched_off(tiny_model_dir, tmp_path, joined_batches):
    assert (
        _run(tiny_model_dir, tmp_path / "run", "reward_helpers.varies_on_even_questions", ["--max_oversampling", "1"])
        == 0
    )
    records = _records(tmp_path / "run")
    assert [record["dynamic_sampling/groups_oversampled"] for record in records] == [0.0] * 3
    assert all(record["dynamic_sampling/groups_sampled"] == 2 * record["dynamic_sampling/rounds"] for record in records)


def test_when_the_rounds_run_out_the_step_trains_on_what_it_found(tiny_model_dir, tmp_path, joined_batches, caplog):
    caplog.set_level(logging.WARNING, logger="r1lab")
    assert _run(tiny_model_dir, tmp_path / "flat", "reward_helpers.constant", ["--max_resample_rounds", "1"]) == 0
    assert all(groups.shape == (2, 4) and not groups.abs().max() > 0 for groups in joined_batches)
    records = _records(tmp_path / "flat")
    assert [record["dynamic_sampling/effective_groups"] for record in records] == [0.0] * 3
    assert [record["dynamic_sampling/rounds"] for record in records] == [2.0] * 3
    assert any(
        "dynamic sampling found 0 of 2 groups with reward variance in 2 rounds" in r.getMessage()
        for r in caplog.records
    )
