"""Off-policy rollouts corrected by truncated importance sampling, as TRL corrects vLLM's.

When r1lab's sampler decodes in another precision than the training forward scores in (a bf16 copy of a policy
trained in bf16 autocast over float32 weights, on a CPU with bf16 units), the completions come from a slightly
different distribution than the one the loss differentiates. The policy-gradient term of each token is then
weighted by ``pi_train / pi_sample`` (per token, or per sequence as the product over its tokens), capped, with
TRL's settings for vLLM rollouts: ``vllm_importance_sampling_correction`` (on by default), ``..._mode`` (token or
sequence; truncate = clamp the ratio into [clip_min, clip_max], mask = zero the tokens or sequences outside it)
and ``..._clip_min`` / ``..._clip_max``.

TRL applies the weight only to vLLM's rollouts (its loss multiplies by it under ``use_vllm``). For its policy
losses (grpo, bnpo, dr_grpo, dapo, luspo, cispo, sapo) the per-token loss is linear in the advantage with the
advantage's sign kept, so a non-negative weight multiplies the loss exactly as it multiplies the advantage: r1lab
hands TRL the weighted advantages, ``(B, T)`` or ``(B, 1)``, a shape TRL's loss accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
# The loss types whose per-token loss is the advantage times a factor independent of it (for a given sign).
LINEAR_IN_ADVANTAGE = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "cispo", "sapo")


@dataclass
class CorrectionFigures:
    """The per-step mismatch, logged under TRL's names for vLLM's (plus the share capped)."""

    logp_difference_mean: float  # mean |log p_train - log p_sample| over completion tokens
    logp_difference_max: float
    ratio_min: float
    ratio_mean: float
    ratio_max: float
    capped_share: float  # share of the tokens (token_*) or sequences (sequence_*) truncated or masked

    def as_metrics(self) -> dict[str, float]:
        return {
            "sampling/sampling_logp_difference/mean": self.logp_difference_mean,
            "sampling/sampling_logp_difference/max": self.logp_difference_max,
            "sampling/importance_sampling_ratio/min": self.ratio_min,
            "sampling/importance_sampling_ratio/mean": self.ratio_mean,
            "sampling/importance_sampling_ratio/max": self.ratio_max,
            "sampling/importance_sampling_capped": self.capped_share,
        }


def importance_weights(train_logps, sampling_logps, mask, mode: str, clip_min: float | None, clip_max: float | None):
    """(weights, figures): ``exp(train - sampling)`` per completion token ``(B, T)`` for ``token_*`` modes, per
    sequence ``(B, 1)`` (the sum of its tokens' differences) for ``sequence_*``, truncated into [clip_min, clip_max]
    or zeroed outside it. Padding (``mask`` 0) and tokens without a sampling log-probability (NaN) count as a
    difference of 0."""
    import torch

    if mode not in MODES:
        raise ValueError(f"unknown importance sampling mode {mode!r}; choose one of {', '.join(MODES)}")
    mask = mask.to(train_logps.dtype)
    difference = torch.nan_to_num((train_logps - sampling_logps) * mask, nan=0.0)
    sequence_level = mode.startswith("sequence")
    log_ratio = difference.sum(dim=-1, keepdim=True) if sequence_level else difference
    ratio = torch.exp(log_ratio)
    low = clip_min if clip_min is not None else 0.0
    high = clip_max if clip_max is not None else float("inf")
    outside = (ratio < low) | (ratio > high)
    weights = ratio.clamp(min=low, max=high) if mode.endswith("truncate") else ratio.masked_fill(outside, 0.0)
    counted = torch.ones_like(ratio, dtype=torch.bool) if sequence_level else mask.bool()
    tokens = mask.bool() & ~torch.isnan(train_logps - sampling_logps)
    absolute = (train_logps - sampling_logps).abs()[tokens]
    kept = weights[counted]
    figures = CorrectionFigures(
        logp_difference_mean=float(absolute.mean()) if absolute.numel() else 0.0,
        logp_difference_max=float(absolute.max()) if absolute.numel() else 0.0,
        ratio_min=float(kept.min()) if kept.numel() else 1.0,
        ratio_mean=float(kept.mean()) if kept.numel() else 1.0,
        ratio_max=float(kept.max()) if kept.numel() else 1.0,
        capped_share=float(outside[counted].float().mean()) if kept.numel() else 0.0,
    )
    return weights, figures


def sampled_tokens_only(logps: list[list[float]], closed: list[bool]) -> list[list[float | None]]:
    """The sampler's log-probabilities for the importance ratio: a row's last one is None (TRL: NaN, ratio 1) where
    that token was given, not sampled (the EOS ``stop_at_answer`` closes a row with), as for vLLM's closed rows.
    A given token is no draw from the sampler, so ``pi_train / pi_sample`` at it has no expectation of 1: counted,
    it would weigh every closed row by the two precisions' disagreement on a token neither of them drew."""
    return [
        [*values[:-1], None] if was_closed else list(values) for values, was_closed in zip(logps, closed, strict=True)
    ]


def weighted_advantages(advantages, weights):
    """The advantages with each token's (or sequence's) importance weight applied: ``(B,)`` or ``(B, T)`` advantages
    times ``(B, T)`` or ``(B, 1)`` weights."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    return advantages * weights.to(advantages.dtype)


def correction_settings(args) -> dict[str, Any]:
    """TRL's vLLM importance-sampling settings as the correction reads them."""
    return {
        "mode": getattr(args, "vllm_importance_sampling_mode", "sequence_mask"),
        "clip_min": getattr(args, "vllm_importance_sampling_clip_min", None),
        "clip_max": getattr(args, "vllm_importance_sampling_clip_max", 3.0),
    }
