"""GRPO (R1-Zero and R1's RL stages 2 and 4): config → plan → trainer → train.

The config is TRL's GRPOConfig plus r1lab's fields; the plan checks every setting and loads the task's rows, the
rewards and the tokenizer before any model loads; the trainer is :class:`~r1lab.training.grpo_trainer.R1GRPOTrainer`
(TRL's GRPOTrainer with r1lab's sampling and scoring); :func:`~r1lab.training.stage.run_training_stage` trains,
saves, evaluates (``final_eval``) and marks the stage finished.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from datasets import Dataset
from trl import GRPOConfig

from r1lab.config import check_declared, setting
from r1lab.distributed import launched_processes
from r1lab.errors import UserError
from r1lab.models import load_model, load_tokenizer, model_config_dict, resolve_model
from r1lab.rewards import build_rewards
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template
from r1lab.training.callbacks import CompletionsFileCallback
from r1lab.training.fast_paths import sampler_ruled_out
from r1lab.training.grpo_trainer import R1GRPOTrainer
from r1lab.training.heldout import heldout_callback, heldout_settings
from r1lab.training.rollout_correction import MODES as IMPORTANCE_SAMPLING_MODES
from r1lab.training.settings import LoraSettings, TrainingStageSettings, peft_config
from r1lab.training.stage import check_final_eval, check_training_outputs, run_training_stage
from r1lab.vllm_support import check_grpo_vllm, engine_kwargs

logger = logging.getLogger("r1lab")

DEFAULT_REWARDS = ["xml.soft_format", "xml.strict_format", "accuracy"]


@dataclass
class R1GRPOConfig(TrainingStageSettings, LoraSettings, GRPOConfig, TaskSpec):
    """TRL's GRPOConfig plus what r1lab needs to build the run (see README for every field)."""

    rewards: list[Any] = setting(
        default_factory=lambda: list(DEFAULT_REWARDS),
        help="The rewards, each a name (r1lab's, seed.*, trl.rewards.*, or a dotted path to your function) or "
        "{name: ..., weight: ..., options: {...}}; docs/usage.md#rewards.",
    )
    max_prompt_length: int | None = setting(
        256,
        "Prompts longer than this many tokens (chat template applied) are dropped before training; null: none.",
        minimum=1,
    )
    output_dir: str | None = setting("runs/grpo", "Where the trained model, metrics.jsonl and completions go.")
    report_to: Any = setting(
        "tensorboard", "Where TRL logs as well: tensorboard (event files under output_dir/runs), none, trackio, wandb."
    )
    generation_loop: Literal["r1lab", "trl"] = setting(
        "r1lab",
        "How completions are sampled without vLLM: r1lab's KV-cache loop (a group's prompt read once, "
        "finished rows leave the batch) or TRL's model.generate; same distribution. With top_k, min_p, "
        "repetition_penalty or generation_kwargs set, TRL's generate is used; with use_vllm, vLLM.",
    )
    sampling_dtype: Literal["auto", "float32", "bfloat16"] = setting(
        "auto",
        "The weights r1lab's loop samples from: float32 = the policy itself; bfloat16 = a bf16 copy refreshed "
        "every optimizer step, its rollouts corrected by truncated importance sampling (vllm_importance_sampling_*); "
        "auto = bfloat16 where training runs in bf16 autocast on a CPU with bf16 units, else float32.",
    )
    stop_at_answer: bool = setting(
        False,
        "End each completion at the template's closing tag (xml: </answer>), closed with EOS, instead of "
        "running on to EOS or max_completion_length.",
    )
    skip_zero_advantage_rows: bool = setting(
        True,
        "Skip the forward and backward of rows whose advantage is exactly 0 where that changes nothing (beta 0, "
        "loss_type dapo, one process): the weights end bit for bit as without the skip.",
    )
    share_prompt_forward: bool = setting(
        True,
        "Score a micro-batch with each distinct prompt run once and the LM head over completion positions only: "
        "TRL's numbers to float rounding, less compute. One process, text only, no gradient checkpointing.",
    )
    fast_paths: bool = setting(
        True,
        "r1lab's fast paths where they apply (sampler, recorded old log-probabilities, trimmed scoring, shared "
        "prompt forward, compact head, zero-advantage skip; decided once, logged, recorded as fast_paths in the "
        "stage's figures); false: TRL's own code for each, to bisect a difference from TRL.",
    )
    dynamic_sampling: bool = setting(
        False,
        "DAPO's dynamic sampling: groups whose completions all get the same reward are dropped and more "
        "prompts sampled until the step has its groups with reward variance. One process.",
    )
    max_resample_rounds: int = setting(
        3,
        "Dynamic sampling: at most this many extra generation rounds per step; then the step trains on what it "
        "found, flat groups filling the rest.",
        minimum=0,
    )
    max_oversampling: float = setting(
        3.0,
        "Dynamic sampling: the first generation draws extra prompts (from the run's share of groups with "
        "variance, enough to fill the step about 5 times in 6), at most this many times the step's prompts; "
        "1.0: none.",
        minimum=1.0,
        maximum=100.0,
    )
    heldout_eval: dict[str, Any] = setting(
        default_factory=dict,
        help="The learning curve on held-out questions: eval settings plus every (optimizer steps), e.g. "
        "{every: 10, limit: 100} -> heldout.jsonl and heldout/* in the metrics; {}: none.",
    )


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
    stop_strings: list[str] = field(default_factory=list)


def check(config: R1GRPOConfig) -> None:
    """The stage contract's check (commands.Command.check): every setting on its own and in combination, the task,
    template and rewards it names (rewards built, options and all); reads no rows, no model, no input or output
    path, so a pipeline runs it for every stage before the first one starts."""
    _checked_settings(config)


def _checked_settings(config: R1GRPOConfig) -> tuple:
    """:func:`check`'s work, with what it built for :func:`plan` to reuse: (template, stop strings, task, reward
    functions, reward weights)."""
    check_declared(config)
    heldout_settings(config)
    check_final_eval(config)
    peft_config(config)
    template = get_template(config.template)
    stop_strings = _check_generation_settings(config, template)
    task = get_task(config)
    reward_functions, reward_weights = build_rewards(
        config.rewards, {"task": task, "template": template.name}, config.reward_weights
    )
    check_grpo_vllm(config, _token_budget(config))
    return template, stop_strings, task, reward_functions, reward_weights


def _token_budget(config) -> int:
    return (config.max_prompt_length or 0) + config.max_completion_length


def plan(config: R1GRPOConfig) -> GRPOPlan:
    """Check every setting, load the rows, build the rewards and the tokenizer; raises UserError, loads no model."""
    template, stop_strings, task, reward_functions, reward_weights = _checked_settings(config)
    check_training_outputs(config)
    rows = task.load()
    model_path = resolve_model(config.model)
    model_config = model_config_dict(model_path) or {}
    context = model_config.get("max_position_embeddings")
    budget = _token_budget(config)
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
    return GRPOPlan(
        config, model_path, kept, reward_functions, reward_weights, tokenizer, len(rows) - len(kept), stop_strings
    )


def _check_generation_settings(config: R1GRPOConfig, template) -> list[str]:
    """The stop strings for ``stop_at_answer`` (none without it); bad combinations as one clear error."""
    if config.max_completion_length is None:
        raise UserError(
            "max_completion_length must be a number of tokens (GRPO samples completions up to it), not null"
        )
    if config.vllm_importance_sampling_mode not in IMPORTANCE_SAMPLING_MODES:
        raise UserError(
            f"vllm_importance_sampling_mode must be one of {', '.join(IMPORTANCE_SAMPLING_MODES)}, "
            f"got {config.vllm_importance_sampling_mode!r}"
        )
    if config.dynamic_sampling and launched_processes() > 1:
        raise UserError(
            f"dynamic_sampling runs in one process (groups are re-drawn and joined locally); launched with "
            f"{launched_processes()} processes: drop dynamic_sampling or run one process"
        )
    if not config.stop_at_answer:
        return []
    if not template.stop_string:
        raise UserError(
            f"stop_at_answer: template {template.name!r} has no closing tag to stop at (its answer follows it)"
        )
    if config.use_vllm:
        return [template.stop_string]
    ruled_out = sampler_ruled_out(config)
    if ruled_out:
        raise UserError(
            f"stop_at_answer needs use_vllm or r1lab's sampler, which {ruled_out} rules out (it needs generation_loop "
            "r1lab, fast_paths true, TRL's default top_k, min_p, repetition_penalty, no generation_kwargs and "
            "unsharded weights)"
        )
    return [template.stop_string]


def _vllm_stop_kwargs(config, stop_strings: list[str]) -> None:
    """stop_at_answer on TRL's vLLM path: vLLM's own stop strings, kept in the output."""
    if stop_strings and config.use_vllm:
        config.generation_kwargs = {
            **(config.generation_kwargs or {}),
            "stop": list(stop_strings),
            "include_stop_str_in_output": True,
        }


def _prompt_tokens(tokenizer, messages) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False))


def main(config: R1GRPOConfig) -> dict[str, Any]:
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
    config.reward_weights = prepared.reward_weights
    _vllm_stop_kwargs(config, prepared.stop_strings)
    assert config.output_dir is not None  # TrainingArguments.__post_init__ fills it
    completions_log = CompletionsFileCallback(config.output_dir)
    heldout = heldout_callback(config, prepared.tokenizer)  # before the metrics callback: it adds heldout/* to the line

    def build_trainer(callbacks: list) -> R1GRPOTrainer:
        # check() refuses a null max_completion_length; TRL's config __post_init__ decides bf16
        assert config.max_completion_length is not None and config.bf16 is not None
        longest = config.max_prompt_length + config.max_completion_length if config.max_prompt_length else None
        model = load_model(
            config.model,
            config.model_dtype,
            config.bf16,
            config.trust_remote_code,
            config.attn_implementation,
            longest,
            training=True,
        )
        trainer = R1GRPOTrainer(
            stop_strings=prepared.stop_strings,
            vllm_engine=engine_kwargs(str(model.dtype).removeprefix("torch.")) if config.use_vllm else None,
            model=model,
            processing_class=prepared.tokenizer,
            reward_funcs=prepared.reward_functions,
            args=config,
            train_dataset=dataset,
            callbacks=[*([heldout] if heldout else []), *callbacks, completions_log],
            peft_config=peft_config(config),
        )
        completions_log.trainer = trainer
        return trainer

    def reward_figures() -> dict[str, Any]:
        failures = {f.__name__: f.failures for f in prepared.reward_functions if f.failures}
        trainer = completions_log.trainer
        assert isinstance(trainer, R1GRPOTrainer)  # build_trainer's
        return {
            "train_prompts": len(dataset),
            "reward_failures": failures,
            "fast_paths": trainer.fast_paths.as_record(),
        }

    return run_training_stage(
        config,
        "grpo",
        build_trainer,
        prepared.tokenizer,
        started=started,
        merge_lora=config.use_peft,
        figures=reward_figures,
    )
