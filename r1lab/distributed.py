"""Several processes (``accelerate launch``, torchrun): how many, whether weights are sharded, rank 0, barriers.

A plain ``r1lab`` command is one process and touches no distributed machinery: every helper here answers for one
process without importing torch or accelerate (both heavy, imported on first use by a launched run).
"""

from __future__ import annotations

import os


def launched_processes() -> int:
    """How many processes ``accelerate launch`` / torchrun started (1 for a plain ``r1lab`` command)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cpu_processes_fallback(config) -> None:
    """Several processes on a machine without a GPU (``configs/accelerate/cpu_2proc.yaml``): train on the CPU
    over gloo. Without ``use_cpu``, accelerate would not join them into one group: every process would train
    alone and each would believe it is rank 0 and write the outputs."""
    if launched_processes() <= 1 or getattr(config, "use_cpu", True):
        return
    import torch

    if not torch.cuda.is_available():
        config.use_cpu = True


def sharded_launch(config=None) -> bool:
    """Whether the weights are sharded across processes (DeepSpeed ZeRO-3 or FSDP), from accelerate's launch
    environment or the TRL config's own ``fsdp`` setting."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" or getattr(config, "fsdp", None):
        return True
    return (
        os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
        and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
    )


def distributed_state():
    """accelerate's ``PartialState`` when launched with several processes (initialising its process group,
    gloo on a CPU-only machine), else None."""
    if launched_processes() <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    state = distributed_state()
    return state is None or state.is_main_process


def wait_for_everyone() -> None:
    """A barrier across the launched processes; nothing for a single process."""
    state = distributed_state()
    if state is not None:
        state.wait_for_everyone()
