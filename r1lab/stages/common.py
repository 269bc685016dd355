"""What every training stage shares: metrics.jsonl, learning-signal warnings, the finish marker."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from r1lab.outputs import STAGE_MARKER, write_json_atomic

logger = logging.getLogger("r1lab")

METRICS_FILE = "metrics.jsonl"


@dataclass
class TrainingStageSettings:
    """The fields every r1lab training stage adds to its TRL config (mixed in before TRL's class)."""

    model: str = "embedded"
    model_dtype: str = "auto"  # auto: bfloat16 on a GPU when bf16 is set, else float32
    # The model's attention kernel: auto = eager for GRPO in bf16 on a CPU with prompt + completion <= 1024 tokens
    # (PyTorch's CPU flash attention is slower in bf16 there: r1lab bench grpo --precision bf16), else the model's
    # default (sdpa); or any transformers attn_implementation (eager, sdpa, flash_attention_2, ...).
    attn_implementation: str = "auto"
    template: str = "xml"
    overwrite: bool = False
    # Continue from the last complete checkpoint-N in output_dir (same data order, RNG, optimizer); without
    # one, start from the beginning. resume_from_checkpoint names a checkpoint instead.
    resume: bool = False
    # EvalConfig settings for an eval of the trained model at the end, e.g. {limit: 100, k: 4}; {}: none.
    final_eval: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_training_ranges(self)
        bf16_fallback(self)
        cpu_processes_fallback(self)
        super().__post_init__()


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
    from r1lab.errors import UserError

    for name, lowest in _AT_LEAST.items():
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < lowest:
            raise UserError(f"{name} must be at least {lowest}, got {value}")
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


@dataclass
class LoraSettings:
    """LoRA fields (``use_peft``), shared by sft and grpo; the adapter is merged into the weights on save."""

    use_peft: bool = False  # LoRA; the adapter is merged into the weights on save
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None  # None: every linear layer but the output head


def peft_config(config):
    """A peft LoraConfig from the lora_* fields, or None without use_peft."""
    if not config.use_peft:
        return None
    from r1lab.errors import UserError

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


# --- several processes (accelerate launch): rank-0-only files, barriers -----------------------------------------


def launched_processes() -> int:
    """How many processes ``accelerate launch`` / torchrun started (1 for a plain ``r1lab`` command)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cpu_processes_fallback(config) -> None:
    """Several processes on a machine without a GPU (``configs/accelerate/cpu_2proc.yaml``): train on the CPU
    over gloo. Without ``use_cpu``, accelerate would not join them into one group: every process would train
    alone and each would believe it is rank 0 and write the outputs."""
    import torch

    if launched_processes() > 1 and not torch.cuda.is_available() and not getattr(config, "use_cpu", True):
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
    gloo on a CPU-only machine), else None: a plain command touches no distributed machinery."""
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


def _weights_sharded(trainer) -> bool:
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    if getattr(trainer, "is_deepspeed_enabled", False):
        from transformers.integrations import is_deepspeed_zero3_enabled

        return is_deepspeed_zero3_enabled()
    return False


def weights_fingerprint(model) -> str:
    """A short hash of every parameter's float64 sum and norm: equal on every rank when DDP kept the replicas
    identical, and equal to the saved model's (computed on the device, so cheap even for 7B)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            tensor = parameter.detach()
            total = torch.sum(tensor, dtype=torch.float64).item()
            norm = torch.linalg.vector_norm(tensor, dtype=torch.float64).item()
            digest.update(f"{name}:{tuple(tensor.shape)}:{total:.17g}:{norm:.17g};".encode())
    return digest.hexdigest()[:16]


def log_trained_weights(trainer, stage: str, figures: dict) -> None:
    """Every rank logs its rank and a fingerprint of its trained weights (replicated weights only: DDP, ZeRO-1/2);
    the figures get the world size and rank 0's fingerprint."""
    rank, world = trainer.args.process_index, trainer.args.world_size
    fingerprint = None
    if not _weights_sharded(trainer):
        fingerprint = weights_fingerprint(trainer.accelerator.unwrap_model(trainer.model))
    logger.info("r1lab: rank %d/%d finished %s training, weights fingerprint %s", rank, world, stage, fingerprint)
    figures["world_size"] = world
    if fingerprint is not None:
        figures["weights_fingerprint"] = fingerprint


def save_trained_model(trainer, tokenizer, output_dir: str, merge_lora: bool = False) -> None:
    """Save the trained model into ``output_dir``; called on every rank, files written by rank 0 only.

    Replicated weights (one process, DDP, ZeRO-1/2): rank 0 saves its copy through a staging directory (LoRA
    merged). Sharded weights (ZeRO-3, FSDP): the full weights exist only gathered from every rank, which TRL's
    ``Trainer.save_model`` does (ZeRO-3 needs ``zero3_save_16bit_model: true``, FSDP ``FULL_STATE_DICT``); it
    writes into a staging directory that rank 0 then moves into place. Every rank leaves after rank 0 is done.
    """
    from r1lab.outputs import save_model_atomic

    if _weights_sharded(trainer):
        staging = os.path.join(output_dir, ".model-gathered")
        if trainer.is_world_process_zero():
            shutil.rmtree(staging, ignore_errors=True)
        trainer.accelerator.wait_for_everyone()
        trainer.save_model(staging)
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(staging)
            for name in os.listdir(staging):
                if name != "training_args.bin":
                    os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
            shutil.rmtree(staging, ignore_errors=True)
    elif trainer.is_world_process_zero():
        trained = trainer.accelerator.unwrap_model(trainer.model)
        if merge_lora:
            trained = trained.merge_and_unload()  # plain weights: the output loads with from_pretrained
        save_model_atomic(trained, tokenizer, output_dir)
    trainer.accelerator.wait_for_everyone()


def finish_training(trainer, tokenizer, output_dir: str, metrics, stage: str, merge_lora: bool = False, **extra) -> dict:
    """After ``trainer.train()``, on every rank: the run's figures (the metrics summary, peak RSS, ``extra``, the
    world size and weights fingerprint), with the trained model saved into ``output_dir``."""
    figures = summarize_history(metrics.history)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    figures.update(extra)
    log_trained_weights(trainer, stage, figures)
    save_trained_model(trainer, tokenizer, output_dir, merge_lora=merge_lora)
    return figures


class MetricsFileCallback(TrainerCallback):
    """Appends one JSON line per logged step to ``metrics.jsonl`` (with step seconds), and warns once,
    clearly, when a GRPO run is not learning: most groups with zero reward variance, or most completions
    cut at the length cap."""

    def __init__(self, output_dir: str, warn_threshold: float = 0.5):
        self.path = os.path.join(output_dir, METRICS_FILE)
        self.warn_threshold = warn_threshold
        self.step_started = None
        self.step_seconds: list[float] = []
        self.history: list[dict[str, Any]] = []
        self.warned: set[str] = set()

    def on_train_begin(self, args, state, control, **kwargs):
        self.resumed_at = state.global_step  # > 0: resumed from checkpoint-<global_step>
        if not state.is_world_process_zero:
            return
        from r1lab.outputs import remove_stage_marker

        output_dir = os.path.dirname(self.path)
        os.makedirs(output_dir, exist_ok=True)
        # Training writes into output_dir from now on: it no longer holds a finished stage (--overwrite).
        remove_stage_marker(output_dir)
        # A fresh run starts an empty file; a resumed one keeps the records up to its checkpoint (a killed run
        # may have logged steps after it, which the resumed run logs again) and counts them in its figures.
        self.history = keep_records_up_to(self.path, state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.step_started is not None:
            self.step_seconds.append(time.perf_counter() - self.step_started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
        if self.step_seconds:
            record["step_seconds"] = sum(self.step_seconds) / len(self.step_seconds)
            self.step_seconds = []
        record.update(logs)
        if "train_loss" in record and getattr(self, "resumed_at", 0):
            record["train_loss"] = self._whole_run_train_loss(record["train_loss"], state.global_step)
        self.history.append(record)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
        self._warn_if_not_learning()

    def _whole_run_train_loss(self, resumed_loss: float, global_step: int) -> float:
        """Trainer's ``train_loss`` covers the steps of this ``train()`` call only; after a resume, the mean over
        the whole run: the logged losses up to the checkpoint (each the mean over its logging interval) and the
        resumed part. Left as it is when the checkpoint fell between two logged steps."""
        total, previous = 0.0, 0
        for record in self.history:
            if "loss" in record and isinstance(record.get("step"), int) and record["step"] <= self.resumed_at:
                total += float(record["loss"]) * (record["step"] - previous)
                previous = record["step"]
        if previous != self.resumed_at or global_step <= 0:
            return resumed_loss
        return (total + float(resumed_loss) * (global_step - self.resumed_at)) / global_step

    def _mean(self, key: str) -> float | None:
        values = [record[key] for record in self.history if isinstance(record.get(key), (int, float))]
        return sum(values) / len(values) if values else None

    def _warn_if_not_learning(self) -> None:
        zero_std = self._mean("frac_reward_zero_std")
        if zero_std is not None and zero_std > self.warn_threshold and "zero_std" not in self.warned:
            self.warned.add("zero_std")
            logger.warning(
                "r1lab: %.0f%% of prompt groups so far have zero reward variance: every completion of a prompt "
                "scores the same, so GRPO's advantages are 0 and those groups teach nothing. Start from a model "
                "that sometimes produces the format (cold-start SFT), use an easier task, or raise num_generations.",
                100 * zero_std,
            )
        clipped = self._mean("completions/clipped_ratio")
        if clipped is not None and clipped > self.warn_threshold and "clipped" not in self.warned:
            self.warned.add("clipped")
            logger.warning(
                "r1lab: %.0f%% of completions so far hit max_completion_length without finishing: their answers "
                "are cut off and cannot score. Raise max_completion_length or train the format first.",
                100 * clipped,
            )


def keep_records_up_to(path: str, step: int) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` whose ``step`` is at most ``step``, the file rewritten (atomically) to hold only
    those: none for a fresh run (step 0), a resumed run's records up to its checkpoint."""
    from r1lab.outputs import write_text_atomic

    if not os.path.isfile(path):
        return []
    kept: list[dict[str, Any]] = []
    lines: list[str] = []
    if step > 0:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:  # a line cut off by the kill
                    continue
                if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                    kept.append(record)
                    lines.append(line if line.endswith("\n") else line + "\n")
    write_text_atomic(path, "".join(lines))
    return kept


def summarize_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The last logged value of each metric plus the mean step time: the stage's key figures."""
    summary: dict[str, Any] = {}
    for record in history:
        for key, value in record.items():
            if isinstance(value, (int, float)):
                summary[key] = value
    step_times = [record["step_seconds"] for record in history if "step_seconds" in record]
    if step_times:
        summary["mean_step_seconds"] = sum(step_times) / len(step_times)
    return summary


def stage_marker(stage: str, config: dict[str, Any], started: float, figures: dict) -> dict[str, Any]:
    return {
        "stage": stage,
        "status": "finished",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.time() - started, 1),
        "figures": figures,
        "config": config,
    }


def write_stage_marker(output_dir: str, stage: str, config: dict[str, Any], started: float, figures: dict) -> None:
    write_json_atomic(os.path.join(output_dir, STAGE_MARKER), stage_marker(stage, config, started, figures))


def bf16_fallback(config) -> None:
    """bf16 recipes (GPU-sized) run on a CPU-only machine in float32 instead of failing.

    TRL's default (``bf16: null``) means bf16 unless fp16; without a GPU that becomes float32 silently,
    an explicit ``bf16: true`` with a warning.
    """
    import torch

    if torch.cuda.is_available() or getattr(config, "use_cpu", False):
        return
    if config.bf16:
        logger.warning("r1lab: no GPU found: bf16 is off, training in float32 on the CPU")
    config.bf16 = False


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


COMPLETIONS_FILE = "completions.jsonl"


def _message_text(value: Any) -> str:
    """A prompt or completion as TRL logs it (text, or chat messages) → the last message's text."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return str(value)


class CompletionsFileCallback(TrainerCallback):
    """Appends the completions behind each logged GRPO step to ``completions.jsonl``: step, question,
    completion, each reward component and the weighted total. Reports read it for the reflection-word
    rate and for sample completions early / middle / late in training.

    GRPOTrainer keeps the latest generation batch in its ``_logs`` (what ``log_completions`` prints); set
    ``trainer`` after building the trainer. Without those logs (another TRL version) it writes nothing.
    """

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, COMPLETIONS_FILE)
        self.trainer = None
        self.written_for_step = -1

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            keep_records_up_to(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logged = getattr(self.trainer, "_logs", None)
        if not state.is_world_process_zero or not logged or state.global_step == self.written_for_step:
            return
        completions = list(logged.get("completion", ()))
        if not completions:
            return
        self.written_for_step = state.global_step
        prompts = list(logged.get("prompt", ()))[-len(completions) :]
        rewards = {name: list(values)[-len(completions) :] for name, values in logged.get("rewards", {}).items()}
        weights = getattr(self.trainer, "reward_weights", None)
        weights = [float(weight) for weight in weights] if weights is not None else [1.0] * len(rewards)
        with open(self.path, "a", encoding="utf-8") as handle:
            for index, completion in enumerate(completions):
                components = {name: values[index] for name, values in rewards.items() if index < len(values)}
                finite = [(w, v) for w, v in zip(weights, components.values()) if v is not None and v == v]
                record = {
                    "step": state.global_step,
                    "question": _message_text(prompts[index]) if index < len(prompts) else None,
                    "completion": _message_text(completion),
                    "reward": sum(w * v for w, v in finite) if finite else None,
                    "rewards": components,
                }
                handle.write(json.dumps(record, ensure_ascii=False, default=float) + "\n")


def resolve_resume(config) -> str | None:
    """The checkpoint a training stage continues from, checked before anything loads (and set on the config):
    ``resume_from_checkpoint`` when given (it must be a complete checkpoint), the last complete one in
    ``output_dir`` with ``resume`` (None when there is none yet: the run starts from the beginning)."""
    from r1lab.errors import UserError
    from r1lab.outputs import CHECKPOINT_COMPLETE_FILE, checkpoint_step, is_complete_checkpoint, is_finished, last_checkpoint

    checkpoint = config.resume_from_checkpoint
    if isinstance(checkpoint, str) and checkpoint.lower() == "true":  # transformers' spelling of "the last one"
        checkpoint, config.resume = None, True
    if checkpoint:
        if not os.path.isdir(checkpoint):
            raise UserError(
                f"resume_from_checkpoint {checkpoint}: no such checkpoint directory (--resume true continues from "
                "the last checkpoint in output_dir)"
            )
        if not is_complete_checkpoint(checkpoint):
            raise UserError(
                f"resume_from_checkpoint {checkpoint} is incomplete ({CHECKPOINT_COMPLETE_FILE} missing or cut off: the "
                "run stopped while saving it); name an earlier checkpoint, or --resume true picks the last complete one"
            )
    elif config.resume:
        if is_finished(config.output_dir):
            raise UserError(f"{config.output_dir} holds a finished stage: nothing to resume (--overwrite true trains it again)")
        checkpoint = last_checkpoint(config.output_dir)
        if checkpoint is None:
            logger.info("r1lab: no checkpoint in %s yet: training from the start", config.output_dir)
    config.resume_from_checkpoint = checkpoint or None
    if not checkpoint:
        return None
    logger.info("r1lab: resuming from %s", checkpoint)
    # GRPO reuses one generation batch for steps_per_generation x num_iterations micro-steps; a checkpoint inside
    # such a block resumes with a fresh generation, which an uninterrupted run would not have made.
    every = getattr(config, "steps_per_generation", None)
    step = checkpoint_step(checkpoint)
    if every and step is not None:
        every *= getattr(config, "num_iterations", 1) or 1
        if (step * config.gradient_accumulation_steps) % every:
            logger.warning(
                "r1lab: %s falls inside a generation batch (steps_per_generation x num_iterations = %d micro-steps): "
                "training continues with new completions, so it will not match an uninterrupted run exactly",
                checkpoint,
                every,
            )
    return checkpoint


def check_final_eval(config) -> None:
    """``final_eval``: EvalConfig settings for an eval of the trained model at the end of a stage
    (``{limit: 100, k: 4}``); checked with the rest of the config, before any model loads."""
    if not config.final_eval:
        return
    if not isinstance(config.final_eval, dict):
        from r1lab.errors import UserError

        raise UserError(f"final_eval must be a mapping of eval settings such as {{limit: 100, k: 4}}, got {config.final_eval!r}")
    from r1lab.config import build_config
    from r1lab.evaluate import EvalConfig, check_eval_settings

    check_eval_settings(build_config(EvalConfig, dict(config.final_eval), source="final_eval"))
    target = config.final_eval.get("output_dir")
    if target is not None:
        from r1lab.errors import UserError
        from r1lab.outputs import is_inside

        if not is_inside(str(target), config.output_dir):
            raise UserError(f"final_eval output_dir {target} is outside the stage's output_dir {config.output_dir}")


FINAL_EVAL_FIGURES = ("greedy_accuracy", "greedy_format_rate", "pass_at_1", "cons_at_k", "format_rate", "questions", "k")


def run_final_eval(config) -> dict[str, Any] | None:
    """Evaluate the saved model in ``output_dir`` on the stage's task (test split unless set) → key figures."""
    if not config.final_eval:
        return None
    from r1lab.evaluate import run_eval

    summary = run_eval(config.output_dir, config, config.template, **config.final_eval)
    return {key: summary[key] for key in FINAL_EVAL_FIGURES if key in summary}
