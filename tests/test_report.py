"""The report builds from a synthetic metrics file and eval summary; bad input is one error line."""

from __future__ import annotations

import json
import os

import pytest

from r1lab.errors import UserError


def _synthetic_stage(folder) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.jsonl"), "w", encoding="utf-8") as handle:
        for step in range(1, 6):
            record = {"step": step, "reward": 0.1 * step, "rewards/accuracy/mean": 0.05 * step, "loss": 0.01,
                      "completions/mean_length": 50 + step, "frac_reward_zero_std": 0.5}
            handle.write(json.dumps(record) + "\n")
        handle.write("{\"step\": 6, \"rew")  # a line cut by a crash
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump({"questions": 3, "k": 4, "greedy_accuracy": 0.5, "pass_at_1": 0.375, "format_rate": 1.0}, handle)
    return str(folder)


def test_report_embeds_plots_and_eval_table(tmp_path):
    from r1lab.report import ReportConfig, main

    stage = _synthetic_stage(tmp_path / "stage")
    result = main(ReportConfig(run_dir=stage))
    page = open(result["report"], encoding="utf-8").read()
    assert "data:image/png;base64," in page
    assert "<td>0.375</td>" in page and "pass_at_1" in page
    assert os.path.getsize(os.path.join(stage, "training.png")) > 1000
    assert os.stat(result["report"]).st_mode & 0o044  # readable by others, like any file we write


def test_report_refuses_an_empty_directory(tmp_path):
    from r1lab.report import ReportConfig, main

    with pytest.raises(UserError, match="nothing to report"):
        main(ReportConfig(run_dir=str(tmp_path)))
    assert os.listdir(tmp_path) == []
