"""Precision chosen for the CPU at hand: bf16 compute where the CPU has bf16 units, float32 where it emulates bf16,
float32 weights for any model a CPU run trains; R1LAB_CPU_PRECISION forces either (the suite runs with fp32)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from r1lab.errors import UserError
from r1lab.hardware import CPU_PRECISION_ENV, cpu_computes_bf16, parse_cpuinfo
from r1lab.models import attention_kernel, torch_dtype
from r1lab.training.settings import cpu_precision

AVX2 = parse_cpuinfo("flags : avx2 fma\n", cores=2)
AMX = parse_cpuinfo("flags : avx2 avx512f avx512_bf16 amx_bf16\n", cores=2)


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def kind_of(cpu):
        monkeypatch.setenv(CPU_PRECISION_ENV, "auto")
        monkeypatch.setattr("r1lab.hardware.cpu_kind", lambda path=None: cpu)
        monkeypatch.setattr("r1lab.models.cpu_kind", lambda path=None: cpu)

    return kind_of


def _config(bf16=None, use_cpu=False, fp16=False):
    return SimpleNamespace(bf16=bf16, use_cpu=use_cpu, fp16=fp16)


def test_auto_follows_the_cpu_kind_and_the_override_wins(monkeypatch):
    monkeypatch.setenv(CPU_PRECISION_ENV, "auto")
    assert cpu_computes_bf16(AMX) and not cpu_computes_bf16(AVX2)
    monkeypatch.setenv(CPU_PRECISION_ENV, "fp32")
    assert not cpu_computes_bf16(AMX)
    monkeypatch.setenv(CPU_PRECISION_ENV, "BF16")
    assert cpu_computes_bf16(AVX2)
    monkeypatch.setenv(CPU_PRECISION_ENV, "half")
    with pytest.raises(UserError, match="R1LAB_CPU_PRECISION must be one of auto, fp32, bf16"):
        cpu_computes_bf16(AVX2)


def test_training_on_a_cpu_with_bf16_units_is_bf16_autocast_over_float32_weights(cpu_only):
    cpu_only(AMX)
    for unset_or_true in (None, True):
        config = _config(bf16=unset_or_true)
        cpu_precision(config)
        assert (config.bf16, config.use_cpu) == (True, True)
    config = _config(bf16=False)
    cpu_precision(config)
    assert (config.bf16, config.use_cpu) == (False, False)
    assert torch_dtype("auto", bf16=True, training=True) == torch.float32  # the trained weights
    assert torch_dtype("auto", bf16=True) == torch.bfloat16  # a model that only generates (eval, sampling)
    assert torch_dtype("float32", bf16=True) == torch.float32
    assert attention_kernel("auto", torch.bfloat16, True, max_tokens=256) is None  # sdpa where bf16 is native


def test_training_on_an_avx2_cpu_is_float32(cpu_only, caplog):
    cpu_only(AVX2)
    caplog.set_level(logging.WARNING, logger="r1lab")
    unset = _config()
    cpu_precision(unset)
    assert (unset.bf16, unset.use_cpu) == (False, False) and not caplog.text
    asked = _config(bf16=True)
    cpu_precision(asked)
    assert asked.bf16 is False and "no bf16 units" in caplog.text
    autocast = _config(bf16=True, use_cpu=True)  # CPU autocast asked for as such: kept
    cpu_precision(autocast)
    assert (autocast.bf16, autocast.use_cpu) == (True, True)
    assert torch_dtype("auto", bf16=True) == torch.float32
    assert attention_kernel("auto", torch.float32, True, max_tokens=256) == "eager"  # emulated bf16 autocast
    assert attention_kernel("auto", torch.float32, False, max_tokens=256) is None
