"""GRPO's policy forward at less cost: padding cut, each prompt read once, the LM head over completion tokens only.

TRL scores a micro-batch by running the model over every row's prompt + completion, padded to the generation
batch's longest completion, and (off Triton devices) projects every position through the LM head.
:func:`score_trimmed` cuts each chunk after its last real completion token (always exact: attention is causal).
Rows of a GRPO group share their prompt, so :func:`prompt_shared_logps` runs each distinct prompt (less its last
token) once, keeps its KV cache with the graph attached, copies it to the rows that continue it, and runs only
``[last prompt token] + completion`` per row, cut after the micro-batch's last real completion token. The LM head
(TRL's fused, chunked one, with its temperature) then sees completion positions only. Positions, attention and
the gradient are those of TRL's forward: the per-token log-probabilities and entropies agree with TRL's to float
rounding (tests/unit/test_grpo_forward.py), and the gradient of the prompt's tokens sums over the rows sharing it, as
the chain rule says. Under gradient checkpointing (no KV cache in training) :func:`compact_head_chunk` runs the
backbone as TRL does and projects only the positions that predict a completion token through the LM head.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from r1lab.kv_cache import cache_keyword
from r1lab.training.trl_compat import chunked_log_probs, fused_head_forward, has_chunked_kernel, has_fused_lm_head


def score_trimmed(
    score, input_ids, attention_mask, logits_to_keep: int, batch_size: int | None = None, compute_entropy: bool = False
) -> tuple[Any, Any]:
    """(log-probs, entropies or None), each ``(B, logits_to_keep)`` with 0 on padding, as TRL's
    ``_get_per_token_logps_and_entropies`` returns them, ``batch_size`` rows at a time (all at once by default).

    Each chunk is cut after its last real completion token: TRL pads every row to the generation batch's longest
    completion, and with causal attention the columns after a chunk's last real token change nothing before them.
    ``score(input_ids, attention_mask, kept)`` scores the cut chunk (the last ``kept`` columns are completion).
    Prompts are left-padded and completions right-padded, TRL's layout.
    """
    import torch

    rows = input_ids.shape[0]
    batch_size = batch_size or rows
    prompt_width = input_ids.shape[1] - logits_to_keep
    all_logps: list[torch.Tensor] = []
    all_entropies: list[torch.Tensor] = []
    for start in range(0, rows, batch_size):
        ids, mask = input_ids[start : start + batch_size], attention_mask[start : start + batch_size]
        attended = mask[:, prompt_width:].any(dim=0).nonzero()
        kept = int(attended.max()) + 1 if attended.numel() else 1
        logps, entropies = score(ids[:, : prompt_width + kept], mask[:, : prompt_width + kept], kept)
        all_logps.append(_pad_columns(logps, logits_to_keep))
        if compute_entropy:
            all_entropies.append(_pad_columns(entropies, logits_to_keep))
    logps = torch.cat(all_logps, dim=0)
    return logps, (torch.cat(all_entropies, dim=0) if compute_entropy else None)


def _pad_columns(values, width: int):
    if values.shape[1] == width:
        return values
    padded = values.new_zeros((values.shape[0], width))
    padded[:, : values.shape[1]] = values
    return padded


def prompt_shared_logps(
    model, input_ids, attention_mask, logits_to_keep: int, batch_size: int | None = None, compute_entropy: bool = False
) -> tuple[Any, Any]:
    """:func:`score_trimmed` with each chunk scored by :func:`_prompt_shared_chunk`. ``model`` must carry TRL's fused
    LM head (``add_fused_lm_head``), as GRPOTrainer's policy does, and return a KV cache (no gradient checkpointing)."""
    return score_trimmed(
        lambda ids, mask, kept: _prompt_shared_chunk(model, ids, mask, kept, compute_entropy),
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size,
        compute_entropy,
    )


def _prompt_shared_chunk(model, input_ids, attention_mask, logits_to_keep: int, compute_entropy: bool):
    """Each distinct prompt but its last token through the model once; its KV cache (graph attached) copied to its
    rows; then ``[last prompt token] + completion`` per row, scored by TRL's fused head at completion positions."""
    import torch

    cache_name = cache_keyword(model)
    rows, width = input_ids.shape
    prefix_width = width - logits_to_keep - 1
    prefix_ids, prefix_mask = input_ids[:, :prefix_width], attention_mask[:, :prefix_width]
    distinct, row_prompt = torch.unique(torch.cat([prefix_ids, prefix_mask], dim=1), dim=0, return_inverse=True)
    prefix = model(
        input_ids=distinct[:, :prefix_width],
        attention_mask=distinct[:, prefix_width:],
        use_cache=True,
        logits_to_keep=1,
    )
    cache = getattr(prefix, "cache", None) or getattr(prefix, "past_key_values", None)
    assert cache is not None  # use_cache=True: without it the tail would be scored without its prompt
    if distinct.shape[0] != rows or not torch.equal(row_prompt, torch.arange(rows, device=row_prompt.device)):
        cache.reorder_cache(row_prompt)
    tail_ids = input_ids[:, prefix_width:]
    labels = tail_ids.masked_fill(attention_mask[:, prefix_width:] == 0, -100)
    labels[:, 0] = -100  # the last prompt token is context, not scored
    outputs = fused_head_forward(
        model, input_ids=tail_ids, attention_mask=attention_mask, labels=labels, **{cache_name: cache}
    )
    return outputs.log_probs, (outputs.entropy if compute_entropy else None)


# Config fields that change the LM head's logits (softcapping, scaling): with any set, TRL's fused head scores.
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)
# Vocabulary columns per tile of the chunked log-prob kernel (TRL's own calls use 32768): the logits tile of a
# chunk is tokens x this, so a smaller width bounds the head's memory on a CPU.
HEAD_VOCAB_TILE = 8192


def compact_head_chunk(
    model,
    input_ids,
    attention_mask,
    logits_to_keep: int,
    compute_entropy: bool,
    temperature: float,
    cast_lm_head_to_fp32: bool = False,
):
    """Score one (cut) chunk as TRL's fused head does, but project only the positions that predict a real
    completion token: off Triton devices TRL's head projects every position, the prompt's included."""
    import torch

    base = _base(model)
    hidden = base.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    hidden = hidden[:, -logits_to_keep - 1 : -1]  # the position before each completion token predicts it
    scored = attention_mask[:, -logits_to_keep:].bool()
    picked, targets = hidden[scored], input_ids[:, -logits_to_keep:][scored]
    head = base.get_output_embeddings()
    context: AbstractContextManager[None] = nullcontext()
    if cast_lm_head_to_fp32:
        picked, context = picked.float(), torch.autocast(picked.device.type, enabled=False)
    outputs = ("log_probs", "entropy") if compute_entropy else ("log_probs",)
    with context:
        logps, entropy, *_ = chunked_log_probs(
            picked, head.weight, head.bias, targets, temperature, HEAD_VOCAB_TILE, outputs
        )
    # masked_scatter keeps an all-padding chunk connected to the graph, as TRL's head does
    logps = logps.new_zeros(scored.shape).masked_scatter(scored, logps)
    if compute_entropy:
        entropy = entropy.new_zeros(scored.shape).masked_scatter(scored, entropy)
    return logps, (entropy if compute_entropy else None)


def _base(model):
    """The model under a PEFT wrapper (the one TRL patched with its fused head), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _one_unsharded_process(trainer) -> bool:
    """One process, weights neither ZeRO- nor FSDP-sharded: the model can be called in pieces without a wrapper
    (DDP's gradient hooks, ZeRO's gathers) having to see each call."""
    return (
        trainer.accelerator.num_processes == 1
        and not getattr(trainer, "is_deepspeed_enabled", False)
        and not getattr(trainer, "is_fsdp_enabled", False)
    )


def compact_head_ruled_out(trainer, model) -> str | None:
    """What keeps :func:`compact_head_chunk` from scoring, or None: it needs one unwrapped process (it calls the
    backbone directly, which a DDP/ZeRO/FSDP wrapper must see), a decoder whose head has no softcapping or scaling,
    TRL's chunked kernel."""
    if not _one_unsharded_process(trainer):
        return "several processes or sharded weights"
    base = _base(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or base.get_output_embeddings() is None:
        return "not a decoder with an output embedding"
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if text_config is not config:
        return "a multimodal model"
    transforms = [name for name in _LOGIT_TRANSFORMS if getattr(text_config, name, None) is not None]
    if transforms:
        return f"the head transforms its logits ({', '.join(transforms)})"
    if not has_chunked_kernel():
        return "TRL has no chunked log-prob kernel"
    return None


def text_only(extra: dict[str, Any]) -> bool:
    """Whether TRL's scoring call carries nothing but text: no images, token types or MoE auxiliary loss (whose
    tensors would need cutting and regrouping too)."""
    return all(value is None or value is False for value in extra.values())


def shared_prompts_ruled_out(trainer, model) -> str | None:
    """What keeps :func:`prompt_shared_logps` from scoring for this trainer, or None: it needs asking for
    (``share_prompt_forward``), one process (a second forward before the backward would confuse DDP's gradient hooks;
    ZeRO/FSDP shard the weights), a model that returns its KV cache in training (no gradient checkpointing) and
    carries TRL's fused LM head."""
    if not getattr(trainer.args, "share_prompt_forward", False):
        return "share_prompt_forward false"
    if not _one_unsharded_process(trainer):
        return "several processes or sharded weights"
    base = _base(model)
    checkpointing = getattr(base, "is_activation_checkpointing", None)  # transformers >= 5.x; older: the other name
    # the Trainer turns the model's on when training starts: the setting says so before
    if getattr(trainer.args, "gradient_checkpointing", False) or (
        checkpointing if checkpointing is not None else getattr(base, "is_gradient_checkpointing", False)
    ):
        return "gradient_checkpointing (no KV cache in training)"
    if getattr(getattr(base, "config", None), "is_encoder_decoder", False):
        return "an encoder-decoder model"
    if not has_fused_lm_head(base):
        return "the model has no TRL fused LM head"
    return None
