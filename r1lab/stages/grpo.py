"""GRPO (R1-Zero and R1's RL stages): TRL's GRPOTrainer with r1lab's models, tasks and rewards."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig

from r1lab.errors import UserError
from r1lab.stages.common import LoraSettings, TrainingStageSettings, peft_config
from r1lab.tasks import TaskSpec

logger = logging.getLogger("r1lab")

DEFAULT_REWARDS = ["xml.soft_format", "xml.strict_format", "accuracy"]


@dataclass
class R1GRPOConfig(TrainingStageSettings, LoraSettings, GRPOConfig, TaskSpec):
    """TRL's GRPOConfig plus what r1lab needs to build the run (see README for every field)."""

    rewards: list[Any] = field(default_factory=lambda: list(DEFAULT_REWARDS))
    # Prompts longer than this (in tokens, chat template applied) are dropped before training.
    max_prompt_length: int | None = 256
    output_dir: str | None = "runs/grpo"
    report_to: Any = "tensorboard"  # offline event files under output_dir/runs; "none", "trackio", "wandb" …


@dataclass
class GRPOPlan:
    """Everything validated before a model is loaded."""

    config: R1GRPOConfig
    model_path: str
    rows: list[dict[str, Any]]
    reward_functions: list
    reward_weights: list[float] | None
    tokenizer: Any
    dropped_long_prompts: int = 0


def plan(config: R1GRPOConfig) -> GRPOPlan:
    from r1lab.models import load_tokenizer, model_config_dict, resolve_model
    from r1lab.outputs import check_output_dir
    from r1lab.stages.common import check_final_eval
    from r1lab.rewards import build_rewards
    from r1lab.tasks import get_task
    from r1lab.templates import get_template

    check_output_dir(config.output_dir, config.overwrite, resuming=bool(config.resume_from_checkpoint))
    check_final_eval(config)
    peft_config(config)
    template = get_template(config.template)
    task = get_task(config)
    rows = task.load()
    reward_functions, reward_weights = build_rewards(
        config.rewards, {"task": task, "template": template.name}, config.reward_weights
    )
    model_path = resolve_model(config.model)
    model_config = model_config_dict(model_path) or {}
    context = model_config.get("max_position_embeddings")
    budget = (config.max_prompt_length or 0) + config.max_completion_length
    if context and budget > context:
        raise UserError(
            f"max_prompt_length + max_completion_length = {budget} exceeds the model's context of {context} tokens"
        )
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    for row in rows:
        row["prompt"] = task.prompt(row["question"], template)
    kept = rows
    if config.max_prompt_length:
        kept = [row for row in rows if _prompt_tokens(tokenizer, row["prompt"]) <= config.max_prompt_length]
        if not kept:
            raise UserError(f"every prompt is longer than max_prompt_length={config.max_prompt_length} tokens")
    return GRPOPlan(config, model_path, kept, reward_functions, reward_weights, tokenizer, len(rows) - len(kept))


def _prompt_tokens(tokenizer, messages) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False))


def main(config: R1GRPOConfig) -> dict[str, Any]:
    from datasets import Dataset
    from trl import GRPOTrainer

    from r1lab.config import config_to_dict
    from r1lab.models import load_model
    from r1lab.stages.common import (
        CompletionsFileCallback,
        MetricsFileCallback,
        log_trained_weights,
        peak_rss_mb,
        run_final_eval,
        save_trained_model,
        summarize_history,
        write_stage_marker,
    )

    started = time.time()
    prepared = plan(config)
    if prepared.dropped_long_prompts:
        logger.warning(
            "r1lab: dropped %d prompts longer than max_prompt_length=%d tokens",
            prepared.dropped_long_prompts,
            config.max_prompt_length,
        )
    columns = ["prompt", "answer", "task_index"] + (["split"] if "split" in prepared.rows[0] else [])
    dataset = Dataset.from_list([{key: row[key] for key in columns} for row in prepared.rows])
    model = load_model(config.model, config.model_dtype, config.bf16, config.trust_remote_code)
    metrics = MetricsFileCallback(config.output_dir)
    completions_log = CompletionsFileCallback(config.output_dir)
    config.reward_weights = prepared.reward_weights
    trainer = GRPOTrainer(
        model=model,
        processing_class=prepared.tokenizer,
        reward_funcs=prepared.reward_functions,
        args=config,
        train_dataset=dataset,
        callbacks=[metrics, completions_log],
        peft_config=peft_config(config),
    )
    completions_log.trainer = trainer
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    figures = summarize_history(metrics.history)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    figures["train_prompts"] = len(dataset)
    figures["reward_failures"] = {f.__name__: f.failures for f in prepared.reward_functions if f.failures}
    log_trained_weights(trainer, "grpo", figures)
    save_trained_model(trainer, prepared.tokenizer, config.output_dir, merge_lora=config.use_peft)
    if trainer.is_world_process_zero():
        figures["final_eval"] = run_final_eval(config)
        write_stage_marker(config.output_dir, "grpo", config_to_dict(config), started, figures)
    return figures
