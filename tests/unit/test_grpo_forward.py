"""The prompt-shared GRPO forward gives TRL's log-probabilities, entropies and gradients (to float rounding)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=101,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(config).train()
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    return model


def _batch():
    """Two prompts of different lengths (left-padded), three rows each, completions of different lengths
    (right-padded), two all-padding columns at the end as TRL leaves them when the generation batch was longer."""
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1, 101, (9,), generator=generator), torch.randint(1, 101, (6,), generator=generator)]
    lengths = [7, 3, 5, 1, 6, 4]
    prompt_width, completion_width = 9, 9
    input_ids = torch.zeros((6, prompt_width + completion_width), dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        prompt = prompts[row % 2]
        input_ids[row, prompt_width - len(prompt) : prompt_width] = prompt
        mask[row, prompt_width - len(prompt) : prompt_width] = 1
        input_ids[row, prompt_width : prompt_width + length] = torch.randint(1, 101, (length,), generator=generator)
        mask[row, prompt_width : prompt_width + length] = 1
    return input_ids, mask, completion_width


def _trl_forward(model, input_ids, mask, logits_to_keep):
    """TRL 1.x's own scoring call (GRPOTrainer._get_per_token_logps_and_entropies, text only)."""
    labels = input_ids.masked_fill(mask == 0, -100)
    labels[:, :-logits_to_keep] = -100
    outputs = model(input_ids=input_ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    return outputs.log_probs[:, -logits_to_keep:], outputs.entropy[:, -logits_to_keep:]


def _gradients(model, logps, mask, logits_to_keep):
    model.zero_grad()
    weights = torch.linspace(-1.0, 2.0, logps.numel()).reshape(logps.shape)
    (logps * weights * mask[:, -logits_to_keep:]).sum().backward()
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}


@pytest.mark.parametrize("batch_size", [None, 4])
def test_same_logps_entropies_and_gradients_as_trl(batch_size):
    from r1lab.training.grpo_forward import prompt_shared_logps

    model = _model()
    input_ids, mask, keep = _batch()
    reference_logps, reference_entropy = _trl_forward(model, input_ids, mask, keep)
    reference_grads = _gradients(model, reference_logps, mask, keep)

    logps, entropy = prompt_shared_logps(model, input_ids, mask, keep, batch_size=batch_size, compute_entropy=True)
    grads = _gradients(model, logps, mask, keep)

    completion_mask = mask[:, -keep:].bool()
    assert logps.shape == reference_logps.shape == (6, keep)
    assert torch.allclose(logps[completion_mask], reference_logps[completion_mask], atol=1e-5)
    assert torch.allclose(entropy[completion_mask], reference_entropy[completion_mask], atol=1e-5)
    assert (logps[~completion_mask] == 0).all() and (entropy[~completion_mask] == 0).all()
    for name, gradient in reference_grads.items():
        assert torch.allclose(grads[name], gradient, atol=1e-5, rtol=1e-4), name
    assert any(gradient.abs().sum() > 0 for gradient in grads.values())


def test_a_different_prompt_gives_different_logps():
    """The check can fail: rows that continue another prompt score differently."""
    from r1lab.training.grpo_forward import prompt_shared_logps

    model = _model()
    input_ids, mask, keep = _batch()
    logps, _ = prompt_shared_logps(model, input_ids, mask, keep)
    changed = input_ids.clone()
    changed[0, 5] = (changed[0, 5] % 100) + 1
    other, _ = prompt_shared_logps(model, changed, mask, keep)
    assert not torch.allclose(logps[0], other[0]) and torch.allclose(logps[1:], other[1:], atol=1e-6)


def test_trimmed_scoring_matches_the_untrimmed_call():
    """score_trimmed around TRL's own call (the gradient-checkpointing path) cuts padding without changing a value."""
    from r1lab.training.grpo_forward import score_trimmed

    model = _model()
    input_ids, mask, keep = _batch()
    reference_logps, reference_entropy = _trl_forward(model, input_ids, mask, keep)
    reference_grads = _gradients(model, reference_logps, mask, keep)
    widths = []

    def score(ids, chunk_mask, kept):
        widths.append(kept)
        return _trl_forward(model, ids, chunk_mask, kept)

    logps, entropy = score_trimmed(score, input_ids, mask, keep, batch_size=2, compute_entropy=True)
    grads = _gradients(model, logps, mask, keep)
    assert widths == [7, 5, 6] and logps.shape == (6, keep)  # rows (7, 3), (5, 1), (6, 4): each chunk's longest
    completion_mask = mask[:, -keep:].bool()
    assert torch.allclose(logps[completion_mask], reference_logps[completion_mask], atol=1e-5)
    assert torch.allclose(entropy[completion_mask], reference_entropy[completion_mask], atol=1e-5)
    for name, gradient in reference_grads.items():
        assert torch.allclose(grads[name], gradient, atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("checkpointing", [False, True])
def test_compact_head_matches_trl(checkpointing):
    """The head over completion positions only (the gradient-checkpointing path) gives TRL's numbers."""
    from r1lab.training.grpo_forward import compact_head_chunk, score_trimmed

    model = _model()
    input_ids, mask, keep = _batch()
    reference_logps, reference_entropy = _trl_forward(model, input_ids, mask, keep)
    reference_grads = _gradients(model, reference_logps, mask, keep)
    if checkpointing:
        model.gradient_checkpointing_enable({"use_reentrant": False})
    logps, entropy = score_trimmed(
        lambda ids, chunk_mask, kept: compact_head_chunk(model, ids, chunk_mask, kept, True, 0.7),
        input_ids,
        mask,
        keep,
        batch_size=4,
        compute_entropy=True,
    )
    grads = _gradients(model, logps, mask, keep)
    completion_mask = mask[:, -keep:].bool()
    assert torch.allclose(logps[completion_mask], reference_logps[completion_mask], atol=1e-5)
    assert torch.allclose(entropy[completion_mask], reference_entropy[completion_mask], atol=1e-5)
    assert (logps[~completion_mask] == 0).all()
    for name, gradient in reference_grads.items():
        assert torch.allclose(grads[name], gradient, atol=1e-5, rtol=1e-4), name


def test_compact_head_only_where_exact():
    from types import SimpleNamespace

    from r1lab.training.grpo_forward import compact_head_ruled_out

    model = _model()
    trainer = SimpleNamespace(args=SimpleNamespace(), accelerator=SimpleNamespace(num_processes=1))
    assert compact_head_ruled_out(trainer, model) is None
    model.config.final_logit_softcapping = 30.0  # a head that transforms its logits: TRL's fused head
    assert "final_logit_softcapping" in compact_head_ruled_out(trainer, model)
    model.config.final_logit_softcapping = None
    trainer.accelerator.num_processes = 2  # the backbone must be called through the DDP wrapper
    assert compact_head_ruled_out(trainer, model) == "several processes or sharded weights"


def test_prompt_sharing_applies_only_where_exact():
    from types import SimpleNamespace

    from r1lab.training.grpo_forward import shared_prompts_ruled_out, text_only

    def can_share_prompts(trainer, model):
        return shared_prompts_ruled_out(trainer, model) is None

    assert text_only({"pixel_values": None, "compute_aux_loss": False})
    assert not text_only({"pixel_values": torch.zeros(1)}) and not text_only({"compute_aux_loss": True})
    model = _model()
    trainer = SimpleNamespace(
        args=SimpleNamespace(share_prompt_forward=True), accelerator=SimpleNamespace(num_processes=1)
    )
    assert can_share_prompts(trainer, model)
    trainer.accelerator.num_processes = 2
    assert not can_share_prompts(trainer, model)
    trainer.accelerator.num_processes = 1
    trainer.args.share_prompt_forward = False
    assert not can_share_prompts(trainer, model)
    trainer.args.share_prompt_forward = True
    model.gradient_checkpointing_enable()
    assert not can_share_prompts(trainer, model)
    from transformers import LlamaConfig, LlamaForCausalLM

    plain = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=11,
            hidden_size=8,
            intermediate_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    assert not can_share_prompts(trainer, plain)  # no fused LM head: TRL's forward


def test_attention_kernel_auto_picks_eager_only_for_short_bf16_on_cpu(monkeypatch):
    import r1lab.models
    from r1lab.models import attention_kernel

    # the CPU kind is pinned both ways: the suite runs on AVX2-only CPUs and on CPUs with bf16 units
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(r1lab.models, "cpu_has_bf16", lambda: True)
    assert attention_kernel("auto", torch.float32, bf16=True, max_tokens=456) is None  # bf16 units: sdpa was faster
    assert attention_kernel("auto", torch.bfloat16, bf16=False, max_tokens=456) is None
    monkeypatch.setattr(r1lab.models, "cpu_has_bf16", lambda: False)  # bf16 emulated (AVX2 only)
    assert attention_kernel("auto", torch.float32, bf16=True, max_tokens=456) == "eager"
    assert attention_kernel("auto", torch.bfloat16, bf16=False, max_tokens=456) == "eager"
    assert attention_kernel("auto", torch.float32, bf16=False, max_tokens=456) is None  # fp32: sdpa decodes faster
    assert attention_kernel("auto", torch.float32, bf16=True, max_tokens=4096) is None  # eager holds L x L scores
    assert attention_kernel("auto", torch.float32, bf16=True, max_tokens=None) is None  # SFT: length unknown
    assert attention_kernel("sdpa", torch.bfloat16, bf16=True, max_tokens=456) == "sdpa"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert attention_kernel("auto", torch.bfloat16, bf16=True, max_tokens=456) is None
