"""The one-time warnings of the metrics callback when a GRPO run's groups have no reward variance."""

from __future__ import annotations

import logging

from r1lab.training.callbacks import MetricsFileCallback


def _warned(tmp_path, caplog, records) -> str:
    caplog.set_level(logging.WARNING, logger="r1lab")
    callback = MetricsFileCallback(str(tmp_path))
    callback.history = records
    callback._warn_if_not_learning()
    callback._warn_if_not_learning()  # once only
    return caplog.text


def test_flat_groups_without_dynamic_sampling_teach_nothing(tmp_path, caplog):
    text = _warned(tmp_path, caplog, [{"frac_reward_zero_std": 0.75}])
    assert text.count("75% of prompt groups so far have zero reward variance") == 1
    assert "teach nothing" in text and "dynamic sampling" not in text


def test_dynamic_sampling_says_what_it_did_with_flat_groups(tmp_path, caplog):
    records = [
        {"frac_reward_zero_std": 0.6, "dynamic_sampling/rounds": 2.0, "dynamic_sampling/effective_groups": 4.0},
        {"frac_reward_zero_std": 0.8, "dynamic_sampling/rounds": 3.0, "dynamic_sampling/effective_groups": 3.0},
    ]
    text = _warned(tmp_path, caplog, records)
    assert text.count("70% of the prompt groups sampled so far had zero reward variance") == 1
    assert "dynamic sampling dropped them" in text and "2.5 generation rounds per step, 3.5 groups" in text
    assert "teach nothing" not in text
