"""Which of r1lab's fast paths a GRPO run takes, decided once when its trainer is built, and why.

Each path replaces a piece of TRL's GRPOTrainer with code that is cheaper and gives the same numbers (exactly, or to
float rounding); where a setting or the model rules one out, TRL's own code runs instead. :func:`decide` makes every
choice from the config, the model and the process layout before the first step; the trainer follows it, logs it in
one line, and the stage records it in its figures (``fast_paths`` in ``r1lab_stage.json`` and a pipeline's
``manifest.json``). ``fast_paths: false`` turns every one off, to bisect a difference from TRL.

What a batch itself carries (images, a one-token prompt) can still send a call to TRL's code: the decision says what
a text-only run takes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from r1lab.distributed import sharded_launch
from r1lab.hardware import cpu_computes_bf16
from r1lab.training import grpo_forward

# Each path, what it does instead of TRL's code; the order is the record's.
PATHS = {
    "sampler": "r1lab's decoding loop samples the completions (TRL: model.generate)",
    "sampled_old_logps": "the old policy's log-probabilities are the ones recorded while sampling (TRL: a second "
    "forward)",
    "trimmed_scoring": "each scoring chunk cut after its last completion token (TRL: padded to the batch's longest)",
    "shared_prompt_forward": "each distinct prompt of a micro-batch run once, its KV cache shared by its rows",
    "compact_head": "the LM head over completion positions only (TRL: every position, off Triton devices)",
    "zero_advantage_skip": "rows whose advantage is exactly 0 skip their forward and backward",
}


@dataclass(frozen=True)
class FastPaths:
    """Each path: ``None`` where it runs, else what rules it out (a setting, the model or the process layout)."""

    sampler: str | None
    sampled_old_logps: str | None
    trimmed_scoring: str | None
    shared_prompt_forward: str | None
    compact_head: str | None
    zero_advantage_skip: str | None

    def on(self, path: str) -> bool:
        return getattr(self, path) is None

    def as_record(self) -> dict[str, str]:
        """``{path: "on" | "off: why"}``, for the stage's figures."""
        return {name: "on" if why is None else f"off: {why}" for name, why in dataclasses.asdict(self).items()}

    def summary(self) -> str:
        """One line: the paths on, then each path off with why."""
        record = self.as_record()
        on = [name for name, state in record.items() if state == "on"]
        off = [f"{name} ({getattr(self, name)})" for name, state in record.items() if state != "on"]
        return f"on: {', '.join(on) or 'none'}; TRL's code: {'; '.join(off) or 'none'}"


ALL_OFF = "fast_paths false"


def sampler_ruled_out(config) -> str | None:
    """What keeps r1lab's decoding loop from sampling (it samples with temperature + top_p only, from unsharded
    weights, without vLLM), or None. Settings only: the stage asks before any model loads."""
    if not getattr(config, "fast_paths", True):
        return ALL_OFF
    reasons = (
        (getattr(config, "generation_loop", "r1lab") != "r1lab", "generation_loop trl"),
        (config.use_vllm, "use_vllm: vLLM samples"),
        (config.use_transformers_continuous_batching, "use_transformers_continuous_batching"),
        (bool(config.top_k), "top_k set"),
        (config.min_p is not None, "min_p set"),
        (config.repetition_penalty != 1.0, "repetition_penalty set"),
        (bool(config.generation_kwargs), "generation_kwargs set"),
        (sharded_launch(config), "weights sharded (ZeRO-3/FSDP): TRL gathers them for its generate"),
    )
    return next((why for ruled_out, why in reasons if ruled_out), None)


def samples_from_bf16_copy(args, policy) -> bool:
    """Whether r1lab's loop samples from a bf16 copy of the policy (``sampling_dtype``; auto: training in bf16
    autocast on a CPU with bf16 units): float32 weights without a LoRA adapter only."""
    import torch

    choice = getattr(args, "sampling_dtype", "float32")
    if choice == "auto":
        choice = "bfloat16" if args.bf16 and not torch.cuda.is_available() and cpu_computes_bf16() else "float32"
    if choice != "bfloat16" or getattr(policy, "peft_config", None):
        return False
    return all(parameter.dtype == torch.float32 for parameter in policy.parameters())


def logps_match_training_forward(model) -> bool:
    """Whether log-probabilities recorded while sampling (eval mode) equal TRL's training-mode forward up to float32
    rounding: float32 weights and no dropout."""
    import torch

    if any(parameter.dtype != torch.float32 for parameter in model.parameters()):
        return False
    if any(isinstance(module, torch.nn.Dropout) and module.p > 0 for module in model.modules()):
        return False
    config = getattr(model, "config", None)
    return not any(getattr(config, name, 0) or 0 for name in ("attention_dropout", "hidden_dropout", "dropout"))


def sampling_is_exact(args, policy) -> bool:
    """Whether the sampler's log-probabilities are the training forward's to float32 rounding: it samples the
    float32 policy itself, without dropout, and training runs without autocast."""
    return (
        not samples_from_bf16_copy(args, policy)
        and logps_match_training_forward(policy)
        and not (args.bf16 or args.fp16)
    )


def _sampled_old_logps_ruled_out(trainer, sampler: str | None) -> str | None:
    args = trainer.args
    if sampler is not None:
        return ALL_OFF if sampler == ALL_OFF else "TRL's sampler"
    if args.gradient_accumulation_steps % (args.steps_per_generation * trainer.num_iterations) == 0:
        return "TRL needs none (each generation batch is trained on within one optimizer step, once)"
    if not sampling_is_exact(args, trainer.model):
        return "sampled in another precision than training (TRL's forward computes them; rollouts importance-weighted)"
    return None


def zero_advantage_skip_ruled_out(trainer) -> str | None:
    reasons = (
        (not getattr(trainer.args, "skip_zero_advantage_rows", False), "skip_zero_advantage_rows false"),
        (trainer.beta != 0.0, f"beta {trainer.beta}: the KL term trains every row"),
        (trainer.loss_type != "dapo", f"loss_type {trainer.loss_type}: exact for dapo only"),
        (trainer.top_entropy_quantile != 1.0, "top_entropy_quantile < 1: the entropy mask reads the whole batch"),
        (
            bool(getattr(trainer.args, "entropy_coef", 0.0)) or getattr(trainer.args, "use_adaptive_entropy", False),
            "an entropy bonus trains every row",
        ),
        (trainer.aux_loss_enabled, "an auxiliary (MoE) loss"),
        (trainer.accelerator.num_processes != 1, "several processes"),
    )
    return next((why for ruled_out, why in reasons if ruled_out), None)


def decide(trainer) -> FastPaths:
    """The fast paths of ``trainer`` (an R1GRPOTrainer whose model is loaded), each with what rules it out."""
    if not getattr(trainer.args, "fast_paths", True):
        return FastPaths(*([ALL_OFF] * len(PATHS)))
    sampler = sampler_ruled_out(trainer.args)
    shared = grpo_forward.shared_prompts_ruled_out(trainer, trainer.model)
    compact = (
        "shared_prompt_forward scores instead"
        if shared is None
        else grpo_forward.compact_head_ruled_out(trainer, trainer.model)
    )
    return FastPaths(
        sampler=sampler,
        sampled_old_logps=_sampled_old_logps_ruled_out(trainer, sampler),
        trimmed_scoring=None,
        shared_prompt_forward=shared,
        compact_head=compact,
        zero_advantage_skip=zero_advantage_skip_ruled_out(trainer),
    )
