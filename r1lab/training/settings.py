"""The fields every training stage adds to its TRL config, checked before anything loads; LoRA."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from r1lab.config import setting
from r1lab.distributed import cpu_processes_fallback, sharded_launch
from r1lab.errors import UserError
from r1lab.hardware import cpu_computes_bf16, cpu_kind
from r1lab.models import ModelDtype

logger = logging.getLogger("r1lab")


@dataclass
class TrainingStageSettings:
    """The fields every r1lab training stage adds to its TRL config (mixed in before TRL's class)."""

    model: str = setting(
        "embedded", "The model to train: embedded (SmolLM2-135M-Instruct), a local directory or a hub id."
    )
    model_dtype: ModelDtype = setting(
        "auto",
        "The weights' dtype: auto = bfloat16 on a GPU when bf16 is set, else float32 (on a CPU with bf16 "
        "units training computes in bf16 autocast over float32 weights: docs/grpo.md#precision-on-a-cpu).",
    )
    attn_implementation: str = setting(
        "auto",
        "The attention kernel: auto = eager for bf16 on a CPU that emulates bf16 when prompt + completion "
        "<= 1024 tokens, else the model's default (sdpa); or any transformers value (eager, sdpa, flash_attention_2).",
    )
    template: str = setting(
        "xml", "The output layout: xml (<reasoning>/<answer>, the seed's) or think (<think>...</think> answer)."
    )
    overwrite: bool = setting(False, "Replace a finished output_dir (its finish marker goes first).")
    resume: bool = setting(
        False,
        "Continue from the last complete checkpoint-N in output_dir (same data order, RNG, optimizer); "
        "without one, start from the beginning. resume_from_checkpoint names a checkpoint instead.",
    )
    final_eval: dict[str, Any] = setting(
        default_factory=dict,
        help="Eval settings for an eval of the trained model at the end, e.g. {limit: 100, k: 4}; {}: none.",
    )

    def __post_init__(self):
        check_training_ranges(self)
        cpu_precision(self)
        cpu_processes_fallback(self)
        super().__post_init__()  # type: ignore[misc]  # a mixin: TRL's config class after it in the MRO has one


# Settings every value of which must be at least this (on the configs that have them): checked when the config
# is built, before TRL sees them (some would otherwise fail deep inside training, after the model loaded).
_AT_LEAST = {
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "max_completion_length": 1,
    "max_prompt_length": 1,
    "num_iterations": 1,
    "learning_rate": 0,
    "weight_decay": 0,
    "max_grad_norm": 0,
    "warmup_steps": 0,
    "beta": 0,
    "epsilon": 0,
    "seed": 0,
}


def check_training_ranges(config) -> None:
    """Values no training run can use, refused with the field's name before anything loads."""
    for name, lowest in _AT_LEAST.items():
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < lowest:
            raise UserError(f"{name} must be at least {lowest}, got {value}")
    generations = getattr(config, "num_generations", None)
    if isinstance(generations, int) and not isinstance(generations, bool) and generations < 2:
        raise UserError(
            f"num_generations must be at least 2 (GRPO compares at least 2 generations of each prompt), got {generations}"
        )
    if getattr(config, "max_steps", -1) == 0:
        raise UserError("max_steps 0 trains nothing (max_steps -1: train num_train_epochs epochs)")
    if getattr(config, "max_steps", -1) < 0 and getattr(config, "num_train_epochs", 1) <= 0:
        raise UserError(f"num_train_epochs must be above 0 when max_steps is -1, got {config.num_train_epochs}")
    strategy = getattr(config, "save_strategy", None)
    if str(getattr(strategy, "value", strategy)) == "steps" and getattr(config, "save_steps", 1) <= 0:
        raise UserError(f"save_steps must be above 0 with save_strategy steps, got {config.save_steps}")
    temperature = getattr(config, "temperature", None)
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise UserError(f"temperature must be above 0 (GRPO samples its completions), got {temperature}")
    top_p = getattr(config, "top_p", None)
    if isinstance(top_p, (int, float)) and not 0 < top_p <= 1:
        raise UserError(f"top_p must be in (0, 1], got {top_p}")


def cpu_precision(config) -> None:
    """A training stage's precision on a machine whose only device is a CPU, decided before TRL sees the config.

    Where the CPU computes bf16 natively (:func:`~r1lab.hardware.cpu_computes_bf16`: AMX or AVX512-BF16), ``bf16``
    unset or true trains in bf16 autocast over float32 weights (``use_cpu``, which HF's Trainer needs for bf16
    on a CPU): the matmuls in bf16, the weights and AdamW's state in float32, so small updates are not lost. Where
    it emulates bf16 (AVX2), float32; an explicit ``bf16: true`` there is dropped with a warning, unless
    ``use_cpu: true`` asks for CPU autocast as such. ``bf16: false`` is float32 anywhere.
    """
    import torch

    if torch.cuda.is_available():
        return
    if config.bf16 is False or getattr(config, "fp16", False):
        config.bf16 = False
        return
    if config.bf16 and getattr(config, "use_cpu", False):
        return
    if cpu_computes_bf16():
        config.bf16, config.use_cpu = True, True
        return
    if config.bf16:
        logger.warning("r1lab: this CPU has no bf16 units (AVX512-BF16/AMX): bf16 is off, training in float32")
    config.bf16 = False


def precision_figures(model, config) -> dict[str, Any]:
    """What a training stage computed in, for its figures and the run's manifest: the CPU's kind, the weights'
    dtype, whether the forward ran under bf16 autocast."""
    import torch

    parameter = next(model.parameters(), None)
    weights = str(parameter.dtype).removeprefix("torch.") if parameter is not None else None
    device = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else cpu_kind().describe()
    autocast = "bf16" if getattr(config, "bf16", False) else ("fp16" if getattr(config, "fp16", False) else None)
    return {"device": device, "weights": weights, "autocast": autocast}


@dataclass
class LoraSettings:
    """LoRA fields (``use_peft``), shared by sft and grpo; the adapter is merged into the weights on save."""

    use_peft: bool = setting(
        False, "Train a LoRA adapter instead of every weight; it is merged into the weights on save."
    )
    lora_r: int = setting(16, "LoRA rank.", minimum=1)
    lora_alpha: int = setting(
        32, "LoRA scaling numerator (the adapter's output is scaled by lora_alpha / lora_r).", minimum=1
    )
    lora_dropout: float = setting(0.05, "Dropout on the adapter's input, from 0 to below 1.", minimum=0.0, maximum=0.99)
    lora_target_modules: list[str] | None = setting(
        None, "Module names the adapter wraps; null: every linear layer but the output head."
    )


def peft_config(config):
    """A peft LoraConfig from the lora_* fields, or None without use_peft."""
    if not config.use_peft:
        return None
    if config.lora_r < 1 or config.lora_alpha <= 0 or not 0 <= config.lora_dropout < 1:
        raise UserError(
            f"LoRA needs lora_r >= 1, lora_alpha > 0 and 0 <= lora_dropout < 1 "
            f"(got {config.lora_r}, {config.lora_alpha}, {config.lora_dropout})"
        )
    if sharded_launch(config):
        raise UserError(
            "use_peft merges the adapter into the weights on save, which needs the full weights in one process: "
            "with LoRA use DDP (configs/accelerate/multi_gpu.yaml) or ZeRO-2 (zero2.yaml), not ZeRO-3 or FSDP"
        )
    try:
        from peft import LoraConfig
    except ImportError:
        raise UserError("use_peft needs the peft package: pip install peft") from None
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules or "all-linear",
        task_type="CAUSAL_LM",
    )
