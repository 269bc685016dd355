"""r1lab's reserved KV cache decodes exactly as HF's growing one: same logits, through a batch reorder and a regrow."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _decode(reserve: bool, room: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    from r1lab.kv_cache import reserve_cache

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=53,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    ).eval()
    prompt = torch.randint(0, 53, (2, 5), generator=torch.Generator().manual_seed(1))
    logits_seen = []
    with torch.inference_mode():
        output = model(input_ids=prompt, use_cache=True)
        cache = output.past_key_values
        cache.reorder_cache(torch.tensor([0, 1, 1]))  # 3 rows from 2 prompts
        if reserve:
            reserve_cache(cache, room)
            assert type(cache.layers[0]).__name__ == "ReservedLayer"
        token = output.logits[:, -1].argmax(-1)[torch.tensor([0, 1, 1])][:, None]
        for step in range(6):
            if step == 3:  # drop the middle row, as the samplers do when rows finish
                cache.reorder_cache(torch.tensor([0, 2]))
                token = token[torch.tensor([0, 2])]
            output = model(input_ids=token, past_key_values=cache, use_cache=True)
            logits_seen.append(output.logits[:, -1].clone())
            token = output.logits[:, -1].argmax(-1, keepdim=True)
        assert cache.get_seq_length() == 5 + 6
    return logits_seen


@pytest.mark.parametrize("room", [6, 2])  # room for every step; room for 2, then the buffers grow
def test_reserved_cache_gives_the_same_logits(room):
    reference = _decode(reserve=False, room=room)
    reserved = _decode(reserve=True, room=room)
    for expected, got in zip(reference, reserved):
        assert torch.allclose(expected, got, atol=1e-6)
