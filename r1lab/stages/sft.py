"""SFT (R1's cold start, stage 3 and distillation): TRL's SFTTrainer on chat samples, loss on the answer only.

Data: ``train_file`` (a jsonl from ``r1lab cold-start-data``, or any chat jsonl with ``messages`` or
``prompt``/``completion``), or, without one, the task's worked solutions built in memory exactly as
``cold-start-data --source solutions`` builds them. Every sample becomes TRL's conversational
prompt-completion format, for which SFTTrainer computes the loss on the completion tokens only
(``completion_only_loss`` defaults to that for prompt-completion data in TRL 1.x): the system and user turns
are context, never targets. A ``messages`` row trains on its last assistant message.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from r1lab.errors import UserError
from r1lab.stages.common import LoraSettings, TrainingStageSettings, peft_config
from r1lab.tasks import TaskSpec

logger = logging.getLogger("r1lab")

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class R1SFTConfig(TrainingStageSettings, LoraSettings, SFTConfig, TaskSpec):
    """TRL's SFTConfig plus what r1lab needs to build the run (``r1lab sft --help``)."""

    train_file: str | None = None  # jsonl (or a cold-start-data directory); None: the task's worked solutions
    filters: dict[str, Any] = field(default_factory=dict)  # readability filters for the built-in solutions
    output_dir: str | None = "runs/sft"
    report_to: Any = "tensorboard"  # offline event files under output_dir/runs; "none", "trackio", "wandb" …


@dataclass
class SFTPlan:
    """Everything validated before a model is loaded."""

    config: R1SFTConfig
    model_path: str
    samples: list[dict[str, Any]]  # {"prompt": [messages], "completion": [assistant message]}
    tokenizer: Any
    data_stats: dict[str, Any] | None = None  # what the cold-start filters removed (built-in solutions only)
    dropped_long: int = 0


def _messages(value: Any, where: str, what: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user" if what == "prompt" else "assistant", "content": value}]
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: {what} must be a string or a non-empty list of chat messages")
    for message in value:
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise UserError(f"{where}: {what} holds {message!r}; a message is {{role: system|user|assistant, content: text}}")
    return [{"role": message["role"], "content": message["content"]} for message in value]


def to_prompt_completion(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A chat row (``messages``, or ``prompt``/``completion`` as text or messages) as conversational prompt-completion."""
    if "messages" in row:
        messages = _messages(row["messages"], where, "messages")
        prompt, completion = messages[:-1], messages[-1:]
    elif "prompt" in row and "completion" in row:
        prompt = _messages(row["prompt"], where, "prompt")
        completion = _messages(row["completion"], where, "completion")
    else:
        raise UserError(f"{where}: expected 'messages' or 'prompt' and 'completion' (has: {', '.join(sorted(row)) or 'nothing'})")
    if completion[-1]["role"] != "assistant" or not completion[-1]["content"].strip():
        raise UserError(f"{where}: the last message must be a non-empty assistant message")
    if not prompt:
        raise UserError(f"{where}: no message before the assistant's: nothing to condition on")
    return {"prompt": prompt, "completion": completion}


def read_train_file(path: str) -> list[dict[str, Any]]:
    from r1lab.stages.cold_start import DATA_FILE
    from r1lab.tasks.files import read_jsonl

    if os.path.isdir(path):
        path = os.path.join(path, DATA_FILE)
    if not os.path.isfile(path):
        raise UserError(f"train_file not found: {path}")
    rows = read_jsonl(path)
    if not rows:
        raise UserError(f"train_file {path} has no samples")
    return [to_prompt_completion(row, f"{path} sample {index + 1}") for index, row in enumerate(rows)]


def sequence_tokens(tokenizer, sample: dict[str, Any]) -> int:
    ids = tokenizer.apply_chat_template(sample["prompt"] + sample["completion"], tokenize=True, return_dict=False)
    return len(ids)


def plan(config: R1SFTConfig) -> SFTPlan:
    from r1lab.filters import filter_settings
    from r1lab.models import load_tokenizer, model_config_dict, resolve_model
    from r1lab.outputs import check_output_dir
    from r1lab.stages.common import check_final_eval, resolve_resume
    from r1lab.templates import get_template

    check_output_dir(config.output_dir, config.overwrite, resuming=bool(resolve_resume(config)))
    check_final_eval(config)
    template = get_template(config.template)
    settings = filter_settings(config.filters)
    peft_config(config)
    if config.packing and config.max_length is None:
        raise UserError("packing needs max_length (the packed sequence length)")
    if config.max_length is not None and config.max_length < 8:
        raise UserError(f"max_length must be at least 8 tokens, got {config.max_length}")
    samples = read_train_file(config.train_file) if config.train_file else None
    if samples is not None and config.filters:
        logger.warning("r1lab: filters apply to samples built from the task's solutions; %s is used as it is", config.train_file)
    model_path = resolve_model(config.model)
    context = (model_config_dict(model_path) or {}).get("max_position_embeddings")
    if context and config.max_length and config.max_length > context:
        raise UserError(f"max_length {config.max_length} exceeds the model's context of {context} tokens")
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if not tokenizer.chat_template:
        raise UserError(f"the tokenizer of {config.model} has no chat template: it cannot render chat samples")
    data_stats = None
    if samples is None:
        from r1lab.stages.cold_start import samples_from_solutions
        from r1lab.tasks import get_task

        def count_tokens(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        built, data_stats = samples_from_solutions(get_task(config), template, settings, count_tokens)
        samples = [{"prompt": sample["prompt"], "completion": sample["completion"]} for sample in built]
    kept = samples
    if config.max_length and not config.packing:
        # Truncation would cut the answer and the end-of-turn token: the model would never learn to stop.
        kept = [sample for sample in samples if sequence_tokens(tokenizer, sample) <= config.max_length]
        if not kept:
            raise UserError(f"every sample is longer than max_length={config.max_length} tokens")
    return SFTPlan(config, model_path, kept, tokenizer, data_stats, len(samples) - len(kept))


def build_trainer(prepared: SFTPlan, model, callbacks=()):
    """The SFTTrainer for a plan and a loaded model (its train_dataset holds the tokenized, masked samples)."""
    from datasets import Dataset

    from r1lab.stages.resumable import ResumableSFTTrainer

    return ResumableSFTTrainer(
        model=model,
        args=prepared.config,
        train_dataset=Dataset.from_list(prepared.samples),
        processing_class=prepared.tokenizer,
        peft_config=peft_config(prepared.config),
        callbacks=list(callbacks),
    )


def main(config: R1SFTConfig) -> dict[str, Any]:
    from r1lab.config import config_to_dict
    from r1lab.models import load_model
    from r1lab.outputs import write_json_atomic, write_jsonl_atomic
    from r1lab.stages.common import (
        METRICS_FILE,
        MetricsFileCallback,
        finish_training,
        run_final_eval,
        write_stage_marker,
    )

    started = time.time()
    prepared = plan(config)
    if prepared.dropped_long:
        logger.warning("r1lab: dropped %d samples longer than max_length=%d tokens", prepared.dropped_long, config.max_length)
    metrics_path = os.path.join(config.output_dir, METRICS_FILE)
    if not config.resume_from_checkpoint and os.path.exists(metrics_path) and config.process_index == 0:
        os.unlink(metrics_path)  # a replaced run's metrics would mix with this one's
    model = load_model(config.model, config.model_dtype, config.bf16, config.trust_remote_code, config.attn_implementation)
    metrics = MetricsFileCallback(config.output_dir)
    trainer = build_trainer(prepared, model, [metrics])
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    figures = finish_training(
        trainer, prepared.tokenizer, config.output_dir, metrics, "sft", merge_lora=config.use_peft,
        train_samples=len(prepared.samples), dropped_long_samples=prepared.dropped_long,
    )
    if trainer.is_world_process_zero():
        if prepared.data_stats is not None:  # built in memory: keep what it trained on beside the model
            write_jsonl_atomic(os.path.join(config.output_dir, "train.jsonl"), prepared.samples)
            write_json_atomic(os.path.join(config.output_dir, "data_stats.json"), prepared.data_stats)
        figures["final_eval"] = run_final_eval(config)
        write_stage_marker(config.output_dir, "sft", config_to_dict(config), started, figures)
    return figures
