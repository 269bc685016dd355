"""R1GRPOTrainer overrides private GRPOTrainer methods: each is listed with the TRL signature it was written
against, and a TRL upgrade that changes one fails here, naming the method, before it fails in training."""

from __future__ import annotations

import inspect
from importlib import metadata

import pytest
from trl import GRPOTrainer

from r1lab.training.grpo_trainer import TRL_OVERRIDES, TRL_PATCHES, TRL_VERSION, R1GRPOTrainer


@pytest.mark.parametrize("name", sorted(TRL_OVERRIDES))
def test_trl_signature_of_each_overridden_method_is_unchanged(name):
    expected, reason = TRL_OVERRIDES[name]
    assert reason, f"{name}: say why it is overridden"
    assert hasattr(GRPOTrainer, name), f"TRL's GRPOTrainer no longer has {name}, which R1GRPOTrainer overrides"
    actual = str(inspect.signature(getattr(GRPOTrainer, name)))
    assert actual == expected, f"TRL changed GRPOTrainer.{name}, which R1GRPOTrainer overrides:\n  was {expected}\n  now {actual}"


def test_every_overridden_private_method_is_listed():
    overridden = {
        name for name, value in vars(R1GRPOTrainer).items()
        if callable(value) and name.startswith("_") and not name.startswith("__") and hasattr(GRPOTrainer, name)
    }
    assert overridden == set(TRL_OVERRIDES), f"list each TRL method R1GRPOTrainer overrides: {sorted(overridden ^ set(TRL_OVERRIDES))}"


def test_installed_trl_is_the_pinned_minor_version():
    installed = ".".join(metadata.version("trl").split(".")[:2])
    assert installed == TRL_VERSION, f"TRL {installed} installed; R1GRPOTrainer's overrides were written for {TRL_VERSION}"


@pytest.mark.parametrize("target", sorted(TRL_PATCHES))
def test_trl_source_behind_each_patch_is_unchanged(target):
    """TRL_PATCHES: what R1GRPOTrainer replaces in TRL's vLLM backend; TRL's source must still read as it did when
    the patch was written (the line each entry names), or the patch may no longer do what it says."""
    import importlib

    where, marker, reason = TRL_PATCHES[target]
    assert reason, f"{target}: say why it is patched"
    module = importlib.import_module("trl.generation.vllm_generation")
    owner, method = where.split(".")
    source = inspect.getsource(getattr(getattr(module, owner), method))
    assert marker in source, f"TRL's {where} no longer has {marker!r}, which {target} was written against"


def test_the_engine_patch_adds_settings_inside_the_block_only(monkeypatch):
    import trl.generation.vllm_generation as module

    from r1lab.training.grpo_trainer import vllm_engine_settings

    built = []
    monkeypatch.setattr(module, "LLM", lambda **kwargs: built.append(kwargs), raising=False)
    original = module.LLM
    with vllm_engine_settings({"enforce_eager": True}):
        module.LLM(model="m", seed=0)
    module.LLM(model="m")
    assert built == [{"model": "m", "seed": 0, "enforce_eager": True}, {"model": "m"}]
    assert module.LLM is original
