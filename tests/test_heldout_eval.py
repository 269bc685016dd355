"""GRPO's ``heldout_eval``: held-out accuracy at the start and every N steps, in heldout.jsonl, metrics and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1lab.cli import main as cli_main

TASK = [
    "--task",
    "gym:chain_sum",
    "--task_size",
    "20",
    "--task_options",
    "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 2}",
]


def grpo_args(model_dir, output_dir, heldout: str, steps: int = 3):
    return [
        "grpo",
        "--model",
        model_dir,
        *TASK,
        "--num_generations",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--gradient_accumulation_steps",
        "1",
        "--max_completion_length",
        "8",
        "--max_steps",
        str(steps),
        "--learning_rate",
        "1e-3",
        "--logging_steps",
        "1",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--heldout_eval",
        heldout,
        "--output_dir",
        str(output_dir),
    ]


def test_heldout_eval_logs_a_learning_curve(tiny_model_dir, tmp_path):
    output_dir = tmp_path / "grpo"
    heldout = "{every: 2, limit: 3, k: 2, temperature: 0.6, max_new_tokens: 6}"
    assert cli_main(grpo_args(tiny_model_dir, output_dir, heldout)) == 0
    curve = [json.loads(line) for line in (output_dir / "heldout.jsonl").read_text().splitlines()]
    assert [record["step"] for record in curve] == [0, 2, 3]  # the start, every 2 steps, the last step
    assert all(record["questions"] == 3 and record["k"] == 2 for record in curve)
    assert all(0 <= record["greedy_accuracy"] <= 1 and 0 <= record["pass_at_1"] <= 1 for record in curve)
    metrics = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    logged = {record["step"]: record.get("heldout/greedy_accuracy") for record in metrics if "loss" in record}
    assert logged[2] == curve[1]["greedy_accuracy"] and logged[3] == curve[2]["greedy_accuracy"]
    assert logged[1] is None
    # the step's own time does not include the eval's
    assert all("step_seconds" in record for record in metrics if "loss" in record)

    from r1lab.report import ReportConfig, build_report

    page = Path(build_report(ReportConfig(run_dir=str(output_dir)))).read_text(encoding="utf-8")
    assert page.count("<img") >= 1 and (output_dir / "training.png").is_file()
    from r1lab.report_data import read_metrics, with_heldout_start
    from r1lab.report_plots import training_panels

    records = with_heldout_start(read_metrics(str(output_dir / "metrics.jsonl")), str(output_dir))
    assert records[0]["step"] == 0 and records[0]["heldout/greedy_accuracy"] == curve[0]["greedy_accuracy"]
    assert any(title == "held-out accuracy" for title, _, _ in training_panels(records))


@pytest.mark.parametrize(
    "heldout, message",
    [
        ("{limit: 3}", "heldout_eval needs every"),
        ("{every: 0, limit: 3}", "heldout_eval needs every"),
        ("{every: 2, k: 0}", "k must be at least 1"),
        ("{every: 2, model: x}", "heldout_eval: model is set by the stage"),
        ("{every: 2, bogus: 1}", "bogus"),
        ("[1, 2]", "heldout_eval"),
    ],
)
def test_bad_heldout_eval_is_one_error_line_and_writes_nothing(tiny_model_dir, tmp_path, capsys, heldout, message):
    output_dir = tmp_path / "grpo"
    assert cli_main(grpo_args(tiny_model_dir, output_dir, heldout)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("r1lab: error: ") and message in error[-1], error
    assert not output_dir.exists()
