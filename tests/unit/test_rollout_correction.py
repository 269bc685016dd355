"""Truncated importance sampling for rollouts sampled off the training forward (r1lab/training/rollout_correction.py),
on hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from r1lab.training.rollout_correction import importance_weights, sampled_tokens_only, weighted_advantages

# Two completions: row 0 has 3 tokens, row 1 has 2 (its last column is padding); row 1's second token was
# sampled without a log-probability (NaN): it counts as no difference.
TRAIN = torch.tensor([[-1.0, -2.0, -0.5], [-0.2, -3.0, -9.0]])
SAMPLING = torch.tensor([[-1.5, -1.0, -0.5], [-0.2, float("nan"), 0.0]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
# train - sampling on real tokens: row 0: +0.5, -1.0, 0.0; row 1: 0.0, (nan -> 0)


def test_token_truncate_clamps_each_tokens_ratio():
    weights, figures = importance_weights(TRAIN, SAMPLING, MASK, "token_truncate", clip_min=0.5, clip_max=1.5)
    expected = torch.tensor([[1.5, 0.5, 1.0], [1.0, 1.0, 1.0]])  # e^0.5 = 1.65 -> 1.5, e^-1 = 0.37 -> 0.5
    assert torch.allclose(weights, expected)
    assert figures.logp_difference_mean == pytest.approx((0.5 + 1.0 + 0.0 + 0.0) / 4)
    assert figures.logp_difference_max == pytest.approx(1.0)
    assert figures.capped_share == pytest.approx(2 / 5)  # 2 of the 5 real tokens
    assert (figures.ratio_min, figures.ratio_max) == pytest.approx((0.5, 1.5))


def test_token_mask_zeroes_tokens_outside_the_bounds():
    weights, figures = importance_weights(TRAIN, SAMPLING, MASK, "token_mask", clip_min=None, clip_max=1.5)
    assert torch.allclose(weights, torch.tensor([[0.0, math.exp(-1.0), 1.0], [1.0, 1.0, 1.0]]))
    assert figures.capped_share == pytest.approx(1 / 5)


def test_sequence_modes_weigh_whole_completions():
    weights, figures = importance_weights(TRAIN, SAMPLING, MASK, "sequence_mask", clip_min=None, clip_max=3.0)
    assert weights.shape == (2, 1)
    assert torch.allclose(weights, torch.tensor([[math.exp(-0.5)], [1.0]]))  # row 0: 0.5 - 1.0 + 0 = -0.5
    assert figures.capped_share == 0.0
    truncated, figures = importance_weights(TRAIN, SAMPLING, MASK, "sequence_truncate", clip_min=0.8, clip_max=3.0)
    assert torch.allclose(truncated, torch.tensor([[0.8], [1.0]])) and figures.capped_share == 0.5
    with pytest.raises(ValueError, match="unknown importance sampling mode"):
        importance_weights(TRAIN, SAMPLING, MASK, "token", None, None)


def test_weights_multiply_the_advantages_row_by_row():
    advantages = torch.tensor([2.0, -1.0])
    assert torch.equal(weighted_advantages(advantages, torch.tensor([[0.5], [3.0]])), torch.tensor([[1.0], [-3.0]]))
    per_token = weighted_advantages(advantages, torch.tensor([[1.0, 0.0], [2.0, 1.0]]))
    assert torch.equal(per_token, torch.tensor([[2.0, 0.0], [-2.0, -1.0]]))


def test_a_given_closing_token_has_no_sampling_logp():
    logps = [[-0.5, -1.0, -2.0], [-0.1, -0.2], [-3.0]]
    assert sampled_tokens_only(logps, [True, False, True]) == [[-0.5, -1.0, None], [-0.1, -0.2], [None]]
    assert logps == [[-0.5, -1.0, -2.0], [-0.1, -0.2], [-3.0]]  # the recorded ones (old log-probabilities) unchanged


def test_an_unsampled_token_leaves_the_sequence_ratio_alone():
    import torch

    train = torch.tensor([[-1.0, -2.0, -0.5]])
    sampling = torch.tensor([[float(x) if x is not None else float("nan") for x in [-1.1, -2.0, None]]])
    mask = torch.ones_like(train)
    weights, figures = importance_weights(train, sampling, mask, "sequence_truncate", None, 3.0)
    assert torch.allclose(weights, torch.exp(torch.tensor([[0.1]])))
    assert abs(figures.logp_difference_max - 0.1) < 1e-6
