"""Dynamic sampling's pure parts: which groups are flat, and groups of several scored batches joined into one."""

from __future__ import annotations

import math

import torch

from r1lab.training.grpo_trainer import flat_groups, join_groups

NAN = math.nan


def test_flat_groups_read_the_weighted_total_as_trl_does():
    rewards = torch.tensor(
        [
            [1.0, 0.0],
            [1.0, 0.0],  # group 0: totals 1, 1 → flat
            [1.0, 0.0],
            [0.0, 1.0],  # group 1: totals 1, 2 with weights (1, 2) → varies
            [0.0, 0.5],
            [1.0, 0.0],  # group 2: totals 1, 1 → flat once weighted
            [NAN, NAN],
            [1.0, 0.0],  # group 3: one scored row → flat
            [NAN, 1.0],
            [0.0, 0.0],  # group 4: a NaN component is left out of the sum (nansum): 2 vs 0 → varies
        ]
    )
    weights = torch.tensor([1.0, 2.0])
    assert flat_groups(rewards, weights, 2).tolist() == [True, False, True, True, False]


def test_tiny_differences_are_variance_only_above_float_noise():
    rewards = torch.tensor([[0.3], [0.1 + 0.2], [0.3], [0.31]])
    assert flat_groups(rewards, torch.tensor([1.0]), 2).tolist() == [True, False]


def _batch(prompt_width, completion_width, rows, base):
    return {
        "prompt_ids": torch.full((rows, prompt_width), base, dtype=torch.long),
        "prompt_mask": torch.ones((rows, prompt_width), dtype=torch.long),
        "completion_ids": torch.full((rows, completion_width), base + 1, dtype=torch.long),
        "completion_mask": torch.ones((rows, completion_width), dtype=torch.long),
        "advantages": torch.arange(rows, dtype=torch.float32) + base,
        "old_per_token_logps": torch.full((rows, completion_width), -1.0),
        "num_items_in_batch": torch.tensor(rows * completion_width),
    }


def test_join_groups_pads_prompts_left_and_completions_right_and_recounts_tokens():
    first, second = _batch(3, 2, 4, 10), _batch(5, 4, 4, 20)  # two batches of 2 groups of 2
    joined = join_groups([(first, 1), (second, 0)], group_size=2, pad_token_id=0)
    assert joined["prompt_ids"].shape == (4, 5) and joined["completion_ids"].shape == (4, 4)
    assert joined["prompt_ids"][0].tolist() == [0, 0, 10, 10, 10]  # left-padded
    assert joined["prompt_mask"][0].tolist() == [0, 0, 1, 1, 1]
    assert joined["completion_ids"][0].tolist() == [11, 11, 0, 0]  # right-padded
    assert joined["completion_mask"][0].tolist() == [1, 1, 0, 0]
    assert joined["old_per_token_logps"][0].tolist() == [-1.0, -1.0, 0.0, 0.0]
    assert joined["advantages"].tolist() == [12.0, 13.0, 20.0, 21.0]  # group 1 of the first, group 0 of the second
    assert int(joined["num_items_in_batch"]) == 2 * 2 + 2 * 4


def test_join_groups_refuses_what_it_cannot_pad():
    batch = {**_batch(2, 2, 2, 1), "pixel_values": torch.zeros((2, 3))}
    try:
        join_groups([(batch, 0)], group_size=2, pad_token_id=0)
    except ValueError as error:
        assert "pixel_values" in str(error)
    else:
        raise AssertionError("joined a batch holding images")


def test_oversampled_prompt_count_fills_the_step_about_five_times_in_six():
    from r1lab.training.grpo_trainer import oversampled_prompt_count, varied_share

    assert oversampled_prompt_count(4, None, 3.0) == 4  # no history: no extras
    assert oversampled_prompt_count(4, 1.0, 3.0) == 4  # every group varies
    # share 0.5: n = 12 gives 6 - sqrt(3) = 4.27 >= 4; n = 11 gives 5.5 - 1.66 = 3.84 < 4
    assert oversampled_prompt_count(4, 0.5, 3.0) == 12
    assert oversampled_prompt_count(4, 0.5, 2.0) == 8  # capped at max_oversampling x wanted
    assert oversampled_prompt_count(4, 0.0, 3.0) == 12 and oversampled_prompt_count(4, 0.1, 1.0) == 4
    history = [
        {"loss": 1.0},
        {"dynamic_sampling/groups_sampled": 8.0, "dynamic_sampling/groups_dropped": 6.0},
        {"dynamic_sampling/groups_sampled": 4.0, "dynamic_sampling/groups_dropped": 0.0},
    ]
    assert varied_share(history) == 0.5 and varied_share([{"loss": 1.0}]) is None
