"""Tiny-model integration: two real GRPO steps on CPU through the CLI."""

from __future__ import annotations

import json
import os

from r1lab.cli import main as cli_main


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


def test_two_grpo_steps_change_weights_and_log_reward_components(tiny_model_dir, tmp_path):
    output_dir = tmp_path / "grpo"
    code = cli_main(
        [
            "grpo",
            "--model", tiny_model_dir,
            "--task", "gym:chain_sum",
            "--task_size", "20",
            "--task_options", "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--rewards", "xml.soft_format,seed.xmlcount,accuracy,reward_helpers.distinct_characters",
            "--num_generations", "4",
            "--per_device_train_batch_size", "4",
            "--gradient_accumulation_steps", "1",
            "--max_completion_length", "16",
            "--max_steps", "2",
            "--learning_rate", "1e-2",
            "--logging_steps", "1",
            "--save_strategy", "no",
            "--final_eval", "{limit: 3, k: 2, max_new_tokens: 8, progress: false}",
            "--output_dir", str(output_dir),
        ]
    )
    assert code == 0
    before, after = _weights(tiny_model_dir), _weights(str(output_dir))
    changed = [name for name in before if not (before[name] == after[name]).all()]
    assert changed, "GRPO did not change any weight"

    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    first = records[0]
    for key in (
        "rewards/xml.soft_format/mean",
        "rewards/seed.xmlcount/mean",
        "rewards/accuracy/mean",
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "completions/clipped_ratio",
        "completions/mean_length",
        "loss",
        "learning_rate",
        "step_seconds",
    ):
        assert key in first, key
    marker = json.loads((output_dir / "r1lab_stage.json").read_text())
    assert marker["status"] == "finished" and marker["stage"] == "grpo"

    logged = [json.loads(line) for line in (output_dir / "completions.jsonl").read_text().splitlines()]
    assert {record["step"] for record in logged} == {1, 2} and len(logged) == 2 * 4
    assert set(logged[0]["rewards"]) >= {"accuracy", "xml.soft_format"} and logged[0]["question"]

    # final_eval: the trained model evaluated on the task's test split, 3 questions x 2 samples
    summary = json.loads((output_dir / "eval" / "summary.json").read_text())
    assert summary["questions"] == 3 and summary["k"] == 2 and summary["split"] == "test"
    assert marker["figures"]["final_eval"]["questions"] == 3

    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(str(output_dir))
    AutoTokenizer.from_pretrained(str(output_dir))


def test_finished_output_is_not_overwritten(tiny_model_dir, tmp_path, capsys):
    output_dir = tmp_path / "done"
    output_dir.mkdir()
    (output_dir / "r1lab_stage.json").write_text("{}")
    code = cli_main(["grpo", "--model", tiny_model_dir, "--task", "gym:chain_sum", "--output_dir", str(output_dir)])
    assert code == 2
    assert "finished stage" in capsys.readouterr().err
