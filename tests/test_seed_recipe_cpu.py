"""The README's seed-recipe command on a CPU: the recipe's bf16 weights fall back to float32 on a CPU without bf16
units (bf16 is emulated there, and slower), and two steps finish (slow tier: minutes)."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from r1lab.cli import main as cli_main
from r1lab.models import cpu_fallback_dtype, cpu_has_bf16

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bf16_weights_fall_back_to_float32_only_on_a_cpu_without_bf16_units(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="r1lab")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("r1lab.models.cpu_has_bf16", lambda: False)
    assert cpu_fallback_dtype(torch.bfloat16, "m") == torch.float32
    assert "no bf16 units" in caplog.text
    assert cpu_fallback_dtype(torch.float16, "m") == torch.float16
    monkeypatch.setattr("r1lab.models.cpu_has_bf16", lambda: True)
    assert cpu_fallback_dtype(torch.bfloat16, "m") == torch.bfloat16
    assert isinstance(cpu_has_bf16(), bool)  # the real check reads this machine's flags


@pytest.mark.slow
def test_the_seed_recipe_trains_two_steps_on_the_cpu(gsm8k_fixture_dir, tmp_path):
    output_dir = tmp_path / "seed"
    code = cli_main(
        [
            "grpo",
            "--config",
            os.path.join(REPO_ROOT, "recipes/seed-gsm8k/grpo.yaml"),
            "--model",
            "embedded",
            "--dataset",
            gsm8k_fixture_dir,
            "--limit",
            "8",
            "--max_steps",
            "2",
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    marker = json.loads((output_dir / "r1lab_stage.json").read_text())
    assert marker["status"] == "finished"
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum("loss" in record for record in records) == 2
