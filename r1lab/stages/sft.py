"""SFT (R1's cold start, stage 3 and distillation): TRL's SFTTrainer on chat samples, loss on the answer only.

Data: ``train_file`` (a jsonl from ``r1lab cold-start-data``, or any chat jsonl with ``messages`` or
``prompt``/``completion``), or, without one, the task's worked solutions built in memory exactly as
``cold-start-data --source solutions`` builds them. Every sample becomes TRL's conversational
prompt-completion format, for which SFTTrainer computes the loss on the completion tokens only
(``completion_only_loss`` defaults to that for prompt-completion data in TRL 1.x): the system and user turns
are context, never targets. A ``messages`` row trains on its last assistant message.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from r1lab.chat_samples import read_train_file
from r1lab.config import setting
from r1lab.errors import UserError
from r1lab.filters import filter_settings, token_counter
from r1lab.models import load_model, load_tokenizer, model_config_dict, resolve_model
from r1lab.outputs import write_json_atomic, write_jsonl_atomic
from r1lab.stages.cold_start import samples_from_solutions
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template
from r1lab.training.settings import LoraSettings, TrainingStageSettings, peft_config
from r1lab.training.stage import check_final_eval, check_training_outputs, run_training_stage
from r1lab.training.trl_compat import restore_trained_token_count

logger = logging.getLogger("r1lab")


@dataclass
class R1SFTConfig(TrainingStageSettings, LoraSettings, SFTConfig, TaskSpec):
    """TRL's SFTConfig plus what r1lab needs to build the run (``r1lab sft --help``)."""

    train_file: str | None = setting(
        None, "A chat jsonl (or a cold-start-data directory); null: the task's worked solutions."
    )
    filters: dict[str, Any] = setting(default_factory=dict, help="Readability filters for the built-in solutions.")
    output_dir: str | None = setting("runs/sft", "Where the outputs go.")
    report_to: Any = setting("tensorboard", 'Offline event files under output_dir/runs; "none", "trackio", "wandb" ….')


@dataclass
class SFTPlan:
    """Everything validated before a model is loaded."""

    config: R1SFTConfig
    model_path: str
    samples: list[dict[str, Any]]  # {"prompt": [messages], "completion": [assistant message]}
    tokenizer: Any
    data_stats: dict[str, Any] | None = None  # what the cold-start filters removed (built-in solutions only)
    dropped_long: int = 0


def sequence_tokens(tokenizer, sample: dict[str, Any]) -> int:
    ids = tokenizer.apply_chat_template(sample["prompt"] + sample["completion"], tokenize=True, return_dict=False)
    return len(ids)


def check(config: R1SFTConfig) -> None:
    """The stage contract's check (commands.Command.check): the settings, the task and template they name; reads no
    samples, no model, no input or output path."""
    check_final_eval(config)
    peft_config(config)
    get_template(config.template)
    filter_settings(config.filters)
    if not config.train_file:
        get_task(config)
    if config.packing and config.max_length is None:
        raise UserError("packing needs max_length (the packed sequence length)")
    if config.max_length is not None and config.max_length < 8:
        raise UserError(f"max_length must be at least 8 tokens, got {config.max_length}")


def plan(config: R1SFTConfig) -> SFTPlan:
    """Check every setting, read or build the samples, load the tokenizer; raises UserError, loads no model."""
    check(config)
    check_training_outputs(config)
    template = get_template(config.template)
    settings = filter_settings(config.filters)
    samples = read_train_file(config.train_file) if config.train_file else None
    if samples is not None and config.filters:
        logger.warning(
            "r1lab: filters apply to samples built from the task's solutions; %s is used as it is", config.train_file
        )
    model_path = resolve_model(config.model)
    context = (model_config_dict(model_path) or {}).get("max_position_embeddings")
    if context and config.max_length and config.max_length > context:
        raise UserError(f"max_length {config.max_length} exceeds the model's context of {context} tokens")
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    if not tokenizer.chat_template:
        raise UserError(f"the tokenizer of {config.model} has no chat template: it cannot render chat samples")
    data_stats = None
    if samples is None:
        built, data_stats = samples_from_solutions(get_task(config), template, settings, token_counter(tokenizer))
        samples = [{"prompt": sample["prompt"], "completion": sample["completion"]} for sample in built]
    kept = samples
    if config.max_length and not config.packing:
        # Truncation would cut the answer and the end-of-turn token: the model would never learn to stop.
        kept = [sample for sample in samples if sequence_tokens(tokenizer, sample) <= config.max_length]
        if not kept:
            raise UserError(f"every sample is longer than max_length={config.max_length} tokens")
    return SFTPlan(config, model_path, kept, tokenizer, data_stats, len(samples) - len(kept))


class ResumableSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer whose ``num_tokens`` metric continues after a resume: TRL counts the tokens trained on in
    the trainer object, which a checkpoint does not keep; it is taken back from the checkpoint's log history."""

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if isinstance(resume_from_checkpoint, str):
            restore_trained_token_count(self, logged_token_count(resume_from_checkpoint))
        return super().train(resume_from_checkpoint, *args, **kwargs)


def logged_token_count(checkpoint: str) -> int:
    """The last ``num_tokens`` the run logged up to ``checkpoint`` (0 when it logged none)."""
    try:
        with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as handle:
            history = json.load(handle).get("log_history", [])
    except (OSError, ValueError):
        return 0
    counts = [record["num_tokens"] for record in history if isinstance(record.get("num_tokens"), (int, float))]
    return int(counts[-1]) if counts else 0


def build_trainer(prepared: SFTPlan, model, callbacks=()):
    """The SFTTrainer for a plan and a loaded model (its train_dataset holds the tokenized, masked samples)."""
    return ResumableSFTTrainer(
        model=model,
        args=prepared.config,
        train_dataset=Dataset.from_list(prepared.samples),
        processing_class=prepared.tokenizer,
        peft_config=peft_config(prepared.config),
        callbacks=list(callbacks),
    )


def main(config: R1SFTConfig) -> dict[str, Any]:
    started = time.time()
    prepared = plan(config)
    if prepared.dropped_long:
        logger.warning(
            "r1lab: dropped %d samples longer than max_length=%d tokens", prepared.dropped_long, config.max_length
        )

    def build(callbacks: list):
        assert config.bf16 is not None  # TRL's config __post_init__ decides it
        model = load_model(
            config.model,
            config.model_dtype,
            config.bf16,
            config.trust_remote_code,
            config.attn_implementation,
            training=True,
        )
        return build_trainer(prepared, model, callbacks)

    def keep_training_data() -> None:
        if prepared.data_stats is not None:  # built in memory: keep what it trained on beside the model
            assert config.output_dir is not None  # TrainingArguments.__post_init__ fills it
            write_jsonl_atomic(os.path.join(config.output_dir, "train.jsonl"), prepared.samples)
            write_json_atomic(os.path.join(config.output_dir, "data_stats.json"), prepared.data_stats)

    samples = {"train_samples": len(prepared.samples), "dropped_long_samples": prepared.dropped_long}
    return run_training_stage(
        config,
        "sft",
        build,
        prepared.tokenizer,
        started=started,
        merge_lora=config.use_peft,
        figures=lambda: samples,
        before_final_eval=keep_training_data,
    )
