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
    # How completions are sampled without vLLM: "r1lab" = r1lab's KV-cache loop (a group's prompt is read once,
    # finished rows leave the batch), "trl" = TRL's model.generate (every row runs until the batch's longest ends).
    # Same distribution (temperature + top_p); with top_k, min_p, repetition_penalty or generation_kwargs set,
    # TRL's generate is used. With use_vllm, TRL's vLLM path is used either way.
    generation_loop: str = "r1lab"
    # End each completion at the template's closing tag (xml: </answer>) instead of running on to EOS or
    # max_completion_length; the completion is closed with EOS, as a model that stops there would have written it.
    stop_at_answer: bool = False
    # Rows whose advantage is exactly 0 (every row of a group whose rewards are all equal) add exactly nothing to
    # the loss or its gradient when beta = 0 and loss_type is dapo (its normaliser counts every row's tokens
    # either way): skip their forward and backward. The optimizer still steps, with zero gradients where no row is
    # left, so the weights end bit-for-bit as without the skip. Single process only; other settings compute all rows.
    skip_zero_advantage_rows: bool = True
    # Score a micro-batch with each distinct prompt run once (its KV cache, graph attached, shared by the rows that
    # continue it), the completions cut after their last real token and the LM head over completion positions only:
    # TRL's log-probabilities, entropies and gradients to float rounding, for less compute. Single process, text
    # only, no gradient checkpointing; otherwise TRL's forward.
    share_prompt_forward: bool = True
    # The learning curve on held-out questions: EvalConfig settings plus `every` (optimizer steps), e.g.
    # {every: 10, limit: 100}: greedy accuracy at the start and every 10 steps → heldout.jsonl, heldout/* in metrics.
    heldout_eval: dict[str, Any] = field(default_factory=dict)


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


def plan(config: R1GRPOConfig) -> GRPOPlan:
    from r1lab.models import load_tokenizer, model_config_dict, resolve_model
    from r1lab.outputs import check_output_dir
    from r1lab.stages.common import check_final_eval, resolve_resume
    from r1lab.stages.heldout import heldout_settings
    from r1lab.rewards import build_rewards
    from r1lab.tasks import get_task
    from r1lab.templates import get_template

    check_output_dir(config.output_dir, config.overwrite, resuming=bool(resolve_resume(config)))
    check_final_eval(config)
    heldout_settings(config)
    peft_config(config)
    template = get_template(config.template)
    stop_strings = _check_generation_settings(config, template)
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
    return GRPOPlan(
        config, model_path, kept, reward_functions, reward_weights, tokenizer, len(rows) - len(kept), stop_strings
    )


GENERATION_LOOPS = ("r1lab", "trl")


def _check_generation_settings(config: R1GRPOConfig, template) -> list[str]:
    """The stop strings for ``stop_at_answer`` (none without it); bad combinations as one clear error."""
    if config.generation_loop not in GENERATION_LOOPS:
        raise UserError(f"generation_loop must be one of {', '.join(GENERATION_LOOPS)}, got {config.generation_loop!r}")
    if not config.stop_at_answer:
        return []
    if not template.stop_string:
        raise UserError(f"stop_at_answer: template {template.name!r} has no closing tag to stop at (its answer follows it)")
    if config.use_vllm:
        return [template.stop_string]
    if not _r1lab_loop_applies(config):
        raise UserError(
            "stop_at_answer needs use_vllm, or generation_loop r1lab with TRL's default top_k, min_p, "
            "repetition_penalty, no generation_kwargs and unsharded weights"
        )
    return [template.stop_string]


def _r1lab_loop_applies(config) -> bool:
    """r1lab's loop samples with temperature + top_p only: any other sampling setting goes to TRL's generate,
    and so do sharded weights (ZeRO-3, FSDP), which TRL gathers for its own generate."""
    from r1lab.stages.common import sharded_launch

    return (
        config.generation_loop == "r1lab"
        and not config.use_vllm
        and not config.use_transformers_continuous_batching
        and not config.top_k
        and config.min_p is None
        and config.repetition_penalty == 1.0
        and not config.generation_kwargs
        and not sharded_launch(config)
    )


def _vllm_stop_kwargs(config, stop_strings: list[str]) -> None:
    """stop_at_answer on TRL's vLLM path: vLLM's own stop strings, kept in the output."""
    if stop_strings and config.use_vllm:
        config.generation_kwargs = {**(config.generation_kwargs or {}), "stop": list(stop_strings), "include_stop_str_in_output": True}


def trainer_class(base):
    """``base`` (a GRPOTrainer) with r1lab's generation loop; built on call, so importing this module imports no trainer."""
    import torch

    class R1GRPOTrainer(base):
        """TRL's GRPOTrainer; without vLLM, completions come from :func:`sample_completions`.

        Same sampling distribution as TRL's ``model.generate`` (temperature + top_p), but each group's prompt is
        encoded once and its KV cache shared by the group's rows, and a row that ended (EOS, or the template's
        closing tag with ``stop_at_answer``) leaves the batch instead of decoding padding until the longest row
        ends. When TRL needs the sampling policy's log-probabilities of the completions (a generation batch spread
        over several optimizer steps), they are the ones recorded while sampling, in float32 without dropout, instead
        of a second forward pass over every completion. Rewards, advantages and the loss are TRL's.
        """

        def __init__(self, *args, r1lab_loop: bool = False, stop_strings: list[str] | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.r1lab_loop = r1lab_loop
            self.r1lab_stop_strings = list(stop_strings or [])
            self.r1lab_sampled = None  # (completion ids, their log-probabilities) until TRL asks for old log-probs

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            self.r1lab_sampled = None
            if not self.r1lab_loop or images is not None or multimodal_fields or has_tool_images:
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
            completion_ids, logps = self._r1lab_generate(prompt_ids)
            generate_every = self.args.steps_per_generation * self.num_iterations
            if self.model.training and self.args.gradient_accumulation_steps % generate_every != 0:
                self.r1lab_sampled = (completion_ids, logps)
            return completion_ids, None

        def _compute_loss(self, model, inputs):
            keep = self._r1lab_rows_to_train(inputs)
            if keep is not None:
                self._metrics["train"]["zero_advantage_rows_skipped"].append(1.0 - keep.float().mean().item())
            if keep is None or keep.all():
                return super()._compute_loss(model, inputs)
            if not keep.any():
                # No row left: a loss of 0 that still gives every trainable weight a (zero) gradient, so the
                # optimizer steps exactly as it would after the full forward and backward.
                return sum(parameter.reshape(-1)[:1].sum() * 0.0 for parameter in model.parameters() if parameter.requires_grad)
            rows = keep.shape[0]
            sliced = {
                key: value[keep] if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows else value
                for key, value in inputs.items()
            }
            return super()._compute_loss(model, sliced)

        def _r1lab_rows_to_train(self, inputs):
            """Which rows have a non-zero advantage (a bool tensor), or None when the skip is off or not exact for
            these settings."""
            advantages = inputs.get("advantages")
            exact = (
                getattr(self.args, "skip_zero_advantage_rows", False)
                and self.model.training
                and self.beta == 0.0
                and self.loss_type == "dapo"
                and self.top_entropy_quantile == 1.0
                and not self.aux_loss_enabled
                and self.accelerator.num_processes == 1
                and advantages is not None
                and advantages.dim() == 1
                and not any(key.startswith(("pixel", "image")) for key in inputs)
            )
            if not exact:
                return None
            return advantages != 0

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                               compute_entropy=False, **kwargs):
            sampled, self.r1lab_sampled = self.r1lab_sampled, None
            # TRL's old-log-probs call: the policy model, no gradient, no entropy (the loss's call has both).
            if sampled is not None and model is self.model and not compute_entropy and not torch.is_grad_enabled():
                logps = _sampled_logps_tensor(sampled, input_ids, logits_to_keep)
                if logps is not None:
                    return logps, None, None
            from r1lab.stages import grpo_forward

            if not grpo_forward.text_only(kwargs) or input_ids.shape[1] - logits_to_keep < 2:
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size, compute_entropy=compute_entropy, **kwargs
                )
            if grpo_forward.can_share_prompts(self, model):
                with self.accelerator.autocast():
                    logps, entropies = grpo_forward.prompt_shared_logps(
                        model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy
                    )
                return logps, entropies, None

            compact = grpo_forward.can_score_compactly(self, model)

            def score(ids, mask, kept):
                if compact:
                    with self.accelerator.autocast():
                        return grpo_forward.compact_head_chunk(model, ids, mask, kept, compute_entropy, self.temperature,
                                                               self.args.cast_lm_head_to_fp32)
                logps, entropies, _ = super(R1GRPOTrainer, self)._get_per_token_logps_and_entropies(
                    model, ids, mask, kept, compute_entropy=compute_entropy, **kwargs
                )
                return logps, entropies

            logps, entropies = grpo_forward.score_trimmed(score, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy)
            return logps, entropies, None

        def _r1lab_generate(self, prompt_ids) -> tuple[list[list[int]], list[list[float]] | None]:
            from trl.models import unwrap_model_for_generation

            from r1lab.generation import StopStringWatcher

            distinct = list(dict.fromkeys(tuple(ids) for ids in prompt_ids))
            position = {ids: index for index, ids in enumerate(distinct)}
            eos = self.eos_token_ids[0]
            pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else eos
            # Seeded by (seed, step, accumulation step, process): a rerun, or a run resumed from a checkpoint,
            # samples the same completions at the same step.
            micro_step = self._step % max(1, getattr(self, "current_gradient_accumulation_steps", 1) or 1)
            seed = self.args.seed + 1_000_003 * self.state.global_step + 1009 * micro_step + 7919 * self.accelerator.process_index
            with unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as model:
                generator = torch.Generator(device=model.device).manual_seed(seed)
                was_training = model.training
                model.eval()
                # Sampled in the weights' own precision, outside the training forward's autocast (bf16 autocast made
                # decoding slower on the CPU, r1lab bench grpo --precision bf16). Under autocast (or with weights that
                # are not float32) the recorded log-probabilities are not the training forward's: TRL computes the
                # old ones itself.
                exact = _logps_match_training_forward(model) and not (self.args.bf16 or self.args.fp16)
                try:
                    completion_ids, logps = sample_completions(
                        model, [list(ids) for ids in distinct], [position[tuple(ids)] for ids in prompt_ids], pad,
                        set(self.eos_token_ids), eos, StopStringWatcher(self._tokenizer, self.r1lab_stop_strings),
                        self.max_completion_length, self.temperature, self.top_p if self.top_p is not None else 1.0,
                        generator,
                    )
                finally:
                    model.train(was_training)
            return completion_ids, (logps if exact else None)

    return R1GRPOTrainer


def _logps_match_training_forward(model) -> bool:
    """Whether log-probabilities recorded while sampling (eval mode) equal TRL's training-mode forward up to float32
    rounding: float32 weights and no dropout."""
    import torch

    if any(parameter.dtype != torch.float32 for parameter in model.parameters()):
        return False
    if any(isinstance(module, torch.nn.Dropout) and module.p > 0 for module in model.modules()):
        return False
    config = getattr(model, "config", None)
    return not any(getattr(config, name, 0) or 0 for name in ("attention_dropout", "hidden_dropout", "dropout"))


def _sampled_logps_tensor(sampled, input_ids, logits_to_keep: int):
    """The recorded log-probabilities as TRL's (B, logits_to_keep) tensor (0 on padding), or None when TRL's batch
    is not the sampled completions in order (then TRL's own forward computes them)."""
    import torch

    completion_ids, logps = sampled
    if logps is None or len(completion_ids) != input_ids.shape[0]:
        return None
    completions = input_ids[:, -logits_to_keep:].tolist() if logits_to_keep else [[] for _ in completion_ids]
    out = torch.zeros((len(completion_ids), logits_to_keep), dtype=torch.float32)
    for row, (ids, values) in enumerate(zip(completion_ids, logps)):
        if len(ids) > logits_to_keep or completions[row][: len(ids)] != ids or len(values) != len(ids):
            return None
        out[row, : len(ids)] = torch.tensor(values, dtype=torch.float32)
    return out.to(input_ids.device)


def sample_completions(model, prompts_ids, row_prompts, pad_id, eos_ids, eos, watcher, max_new_tokens, temperature, top_p,
                       generator) -> tuple[list[list[int]], list[list[float]]]:
    """GRPO's sampling → (completion token ids, each token's log-probability) per row.

    r1lab's decoding loop (as :func:`r1lab.generation.decode_batch`): each distinct prompt is read once and its KV
    cache copied to its rows (``row_prompts[i]`` is row ``i``'s prompt); finished rows leave the batch. Each token's
    log-probability is ``log_softmax(logits / temperature)`` at that token, what TRL's loss computes (top-p shapes
    the sampling only). A row whose text holds a stop string gets EOS as its next token and ends: the completion of
    a model that stops there. A row keeps its EOS; a row cut at ``max_new_tokens`` has none.
    """
    import torch

    from r1lab.generation import COMPACT_WHEN_FINISHED, _forward_accepts, _left_padded, reserve_cache, sample_next

    device = model.device
    input_ids, attention = _left_padded(prompts_ids, pad_id, device)
    positions = (attention.cumsum(dim=-1) - 1).clamp(min=0)
    cache_name = "cache" if _forward_accepts(model, "cache") else "past_key_values"
    extra = {"logits_to_keep": 1} if _forward_accepts(model, "logits_to_keep") else {}
    tokens: list[list[int]] = [[] for _ in row_prompts]
    logps: list[list[float]] = [[] for _ in row_prompts]
    ended, closing = [False] * len(row_prompts), [False] * len(row_prompts)
    with torch.inference_mode():
        output = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True, **extra)
        cache = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
        logits = output.logits[:, -1, :]
        if list(row_prompts) != list(range(len(prompts_ids))):
            expand = torch.tensor(list(row_prompts), device=device)
            cache.reorder_cache(expand)
            logits, attention, positions = logits[expand], attention[expand], positions[expand]
        reserve_cache(cache, max_new_tokens)
        rows = list(range(len(row_prompts)))  # batch position -> row
        last_position = positions[:, -1]
        for step in range(max_new_tokens):
            chosen = sample_next(logits, temperature, top_p, generator)
            forced = [position for position, row in enumerate(rows) if closing[row]]
            if forced:
                chosen[forced] = eos
            scaled = logits.float() / temperature if temperature > 0 else logits.float()
            chosen_logps = torch.log_softmax(scaled, dim=-1).gather(-1, chosen[:, None]).squeeze(-1).tolist()
            running = []
            for position, (row, token, logp) in enumerate(zip(rows, chosen.tolist(), chosen_logps)):
                if ended[row]:
                    continue
                tokens[row].append(token)
                logps[row].append(logp)
                if token in eos_ids:
                    ended[row] = True
                else:
                    running.append(position)
            for position, hit in zip(running, watcher.stopped([tokens[rows[p]] for p in running])):
                closing[rows[position]] = closing[rows[position]] or hit
            alive = [position for position in running if not ended[rows[position]]]
            if not alive or step == max_new_tokens - 1:
                break
            if len(rows) - len(alive) >= COMPACT_WHEN_FINISHED * len(rows):
                keep = torch.tensor(alive, device=device)
                cache.reorder_cache(keep)
                attention, last_position, chosen = attention[keep], last_position[keep], chosen[keep]
                rows = [rows[position] for position in alive]
            attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
            last_position = last_position + 1
            output = model(
                input_ids=chosen[:, None], attention_mask=attention, position_ids=last_position[:, None], use_cache=True,
                **{cache_name: cache},
            )
            logits = output.logits[:, -1, :]
    return tokens, logps


def _prompt_tokens(tokenizer, messages) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False))


def main(config: R1GRPOConfig) -> dict[str, Any]:
    from datasets import Dataset

    from r1lab.stages.resumable import ResumableGRPOTrainer as GRPOTrainer  # TRL's, same prompt order on resume
    from r1lab.config import config_to_dict
    from r1lab.models import load_model
    from r1lab.stages.common import (
        CompletionsFileCallback,
        MetricsFileCallback,
        finish_training,
        run_final_eval,
        write_stage_marker,
    )
    from r1lab.stages.heldout import heldout_callback

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
    model = load_model(config.model, config.model_dtype, config.bf16, config.trust_remote_code, config.attn_implementation,
                       config.max_prompt_length + config.max_completion_length if config.max_prompt_length else None)
    metrics = MetricsFileCallback(config.output_dir)
    completions_log = CompletionsFileCallback(config.output_dir)
    heldout = heldout_callback(config, prepared.tokenizer)  # before metrics: it adds heldout/* to the logged line
    config.reward_weights = prepared.reward_weights
    _vllm_stop_kwargs(config, prepared.stop_strings)
    trainer = trainer_class(GRPOTrainer)(
        r1lab_loop=_r1lab_loop_applies(config),
        stop_strings=prepared.stop_strings,
        model=model,
        processing_class=prepared.tokenizer,
        reward_funcs=prepared.reward_functions,
        args=config,
        train_dataset=dataset,
        callbacks=[callback for callback in (heldout, metrics, completions_log) if callback is not None],
        peft_config=peft_config(config),
    )
    completions_log.trainer = trainer
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    figures = finish_training(
        trainer, prepared.tokenizer, config.output_dir, metrics, "grpo", merge_lora=config.use_peft,
        train_prompts=len(dataset),
        reward_failures={f.__name__: f.failures for f in prepared.reward_functions if f.failures},
    )
    if trainer.is_world_process_zero():
        figures["final_eval"] = run_final_eval(config)
        write_stage_marker(config.output_dir, "grpo", config_to_dict(config), started, figures)
    return figures
