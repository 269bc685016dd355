"""Checkpoints and the saved model: where a run resumes from, the trained weights saved (gathered when sharded),
and a fingerprint of them that every rank logs."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil

from r1lab.errors import UserError
from r1lab.outputs import (
    CHECKPOINT_COMPLETE_FILE,
    checkpoint_step,
    is_complete_checkpoint,
    is_finished,
    last_checkpoint,
    save_model_atomic,
)

logger = logging.getLogger("r1lab")


def resolve_resume(config) -> str | None:
    """The checkpoint a training stage continues from, checked before anything loads (and set on the config):
    ``resume_from_checkpoint`` when given (it must be a complete checkpoint), the last complete one in
    ``output_dir`` with ``resume`` (None when there is none yet: the run starts from the beginning)."""
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
            raise UserError(
                f"{config.output_dir} holds a finished stage: nothing to resume (--overwrite true trains it again)"
            )
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
