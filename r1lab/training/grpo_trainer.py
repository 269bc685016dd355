"""``R1GRPOTrainer``: TRL's GRPOTrainer with r1lab's sampling loop, cheaper scoring and a resumable prompt order.

Rewards, advantages, the loss and the optimizer are TRL's. What changes is how completions are sampled and how the
policy's log-probabilities are computed, each exact or with TRL's own code as the fallback, and the prompt order of
each epoch (a function of the seed and the epoch, so a resumed run reads what the uninterrupted run would have).

TRL has no public hook for these: :class:`~r1lab.training.trl_compat.GRPOHooks` forwards each private GRPOTrainer
method r1lab overrides to a hook under r1lab's name, and every private TRL name r1lab touches lives there, each with
the TRL source it was written against (checked by ``tests/unit/test_trl_compat.py``).
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import TYPE_CHECKING

import torch
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import RepeatSampler, nanstd

from r1lab.generation import StopStringWatcher, decode_batch
from r1lab.training import fast_paths, grpo_forward
from r1lab.training.rollout_correction import (
    LINEAR_IN_ADVANTAGE,
    correction_settings,
    importance_weights,
    sampled_tokens_only,
    weighted_advantages,
)
from r1lab.training.trl_compat import GRPOHooks, reload_colocated_weights, vllm_engine_settings

if TYPE_CHECKING:
    from datasets import Dataset
    from trl import GRPOConfig

logger = logging.getLogger("r1lab")


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler with an order that is a function of (seed, epoch): Trainer calls ``set_epoch`` before
    each epoch, resumed or not. Epoch 0's order is TRL's."""

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


class R1GRPOTrainer(GRPOHooks):
    """TRL's GRPOTrainer; without vLLM, completions come from r1lab's decoding loop (:func:`decode_batch`).

    Same sampling distribution as TRL's ``model.generate`` (temperature + top_p), but each group's prompt is encoded
    once and its KV cache shared by the group's rows, and a row that ended (EOS, or the template's closing tag with
    ``stop_at_answer``) leaves the batch instead of decoding padding until the longest row ends. When TRL needs the
    sampling policy's log-probabilities of the completions (a generation batch spread over several optimizer steps),
    they are the ones recorded while sampling, in float32 without dropout, instead of a second forward pass.

    Which of r1lab's paths run is decided once, when the trainer is built (:attr:`fast_paths`, a
    :class:`~r1lab.training.fast_paths.FastPaths`), and logged in one line; ``fast_paths: false`` runs TRL's code.
    ``stop_strings``: end each completion there, closed with EOS (``stop_at_answer``; with vLLM, vLLM stops there and
    the EOS is added here); ``vllm_engine``: settings added to TRL's colocated ``vllm.LLM`` (``use_vllm``).
    """

    # What TRL's Trainer declares wider: r1lab.stages.grpo builds it with its config, a model and a Dataset, and
    # that config's __post_init__ (TRL's) refuses a null num_generations, r1lab's check a null max_completion_length.
    args: GRPOConfig
    model: torch.nn.Module
    train_dataset: Dataset
    num_generations: int
    max_completion_length: int

    def __init__(self, *args, stop_strings: list[str] | None = None, vllm_engine: dict | None = None, **kwargs):
        with vllm_engine_settings(vllm_engine):
            super().__init__(*args, **kwargs)
        if self.use_vllm and self.vllm_mode == "colocate" and not torch.cuda.is_available():
            sync = functools.partial(reload_colocated_weights, self.vllm_generation)
            self.vllm_generation.sync_weights = sync  # type: ignore[method-assign]  # this engine's method, replaced
        self.fast_paths = fast_paths.decide(self)
        logger.info("r1lab: fast paths: %s", self.fast_paths.summary())
        self.r1lab_stop_strings = list(stop_strings or [])
        # (completion ids, their log-probabilities) until TRL asks for old log-probs
        self.r1lab_sampled: tuple[list[list[int]], list[list[float]]] | None = None
        self.r1lab_sampling_round = 0  # dynamic sampling: which extra round of the step is being sampled
        self.r1lab_rewards_per_func = None  # the last scored batch's rewards (rows x reward functions)
        self.r1lab_sampler: torch.nn.Module | None = None  # sampling_dtype bfloat16: the bf16 copy r1lab samples from
        self.r1lab_sampler_step: int | None = None  # the optimizer step whose weights the copy holds
        self.r1lab_warned_uncorrected = False

    # --- prompt order ----------------------------------------------------------------------------------------
    def prompt_sampler(self, sampler):
        if type(sampler) is not RepeatSampler:  # not the sampler the override was written for: leave it alone
            return sampler
        return EpochSeededRepeatSampler(
            data_source=sampler.data_source,
            mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size,
            repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
        )

    # --- sampling ----------------------------------------------------------------------------------------------
    def sample_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        self.r1lab_sampled = None
        if self.use_vllm:
            completion_ids, logprobs = self.trl_sample_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
            return self._close_stopped_with_eos(completion_ids, logprobs)
        if not self.fast_paths.on("sampler") or images is not None or multimodal_fields or has_tool_images:
            return self.trl_sample_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        completion_ids, logps, closed, exact = self._r1lab_generate(prompt_ids)
        if not exact:  # off the training forward's distribution: TRL's batch carries them for the correction
            return completion_ids, (sampled_tokens_only(logps, closed) if self._corrects_rollouts() else None)
        if self.model.training and self.fast_paths.on("sampled_old_logps"):
            self.r1lab_sampled = (completion_ids, logps)
        return completion_ids, None

    def _close_stopped_with_eos(self, completion_ids, logprobs):
        """vLLM's completions that ended at a stop string (``stop_at_answer``) get EOS, as r1lab's loop gives them: the
        policy learns to end there. The EOS was not sampled: its sampling log-probability is None, which TRL's
        importance-sampling correction leaves uncorrected (ratio 1)."""
        if not self.r1lab_stop_strings:
            return completion_ids, logprobs
        watcher = StopStringWatcher(self.text_tokenizer, self.r1lab_stop_strings)
        eos = self.eos_token_ids[0]
        closed, closed_logprobs = [], []
        for row, ids in enumerate(completion_ids):
            ids = list(ids)
            row_logprobs = list(logprobs[row]) if logprobs is not None else None
            ended = ids and ids[-1] in self.eos_token_ids
            if not ended and len(ids) < self.max_completion_length and watcher.stopped([ids])[0]:
                ids.append(eos)
                if row_logprobs is not None:
                    row_logprobs.append(None)
            closed.append(ids)
            closed_logprobs.append(row_logprobs)
        return closed, (closed_logprobs if logprobs is not None else None)

    def _r1lab_generate(self, prompt_ids) -> tuple[list[list[int]], list[list[float]], list[bool], bool]:
        """Completions of ``prompt_ids`` (one row each) with r1lab's loop → (token ids, their log-probabilities under
        the sampler, which rows ended with a given EOS (stop_at_answer), whether the log-probabilities are what TRL's
        training forward computes up to float32 rounding)."""
        distinct = list(dict.fromkeys(tuple(ids) for ids in prompt_ids))
        position = {ids: index for index, ids in enumerate(distinct)}
        eos = self.eos_token_ids[0]
        pad = self.text_tokenizer.pad_token_id if self.text_tokenizer.pad_token_id is not None else eos
        # Seeded by (seed, step, accumulation step, process): a rerun, or a run resumed from a checkpoint,
        # samples the same completions at the same step.
        micro_step = self.micro_step % max(1, getattr(self, "current_gradient_accumulation_steps", 1) or 1)
        seed = (
            self.args.seed
            + 1_000_003 * self.state.global_step
            + 1009 * micro_step
            + 7919 * self.accelerator.process_index
        )
        seed += 104_729 * self.r1lab_sampling_round  # dynamic sampling's extra rounds of the same step
        with unwrap_model_for_generation(
            self.model_wrapped,
            self.accelerator,
            gather_deepspeed3_params=self.args.ds3_gather_for_generation,
            # transformers types it dict | str (a JSON str, parsed in __post_init__), TRL dict; TRL passes it as here
            gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,  # type: ignore[arg-type]  # as TRL
        ) as model:
            generator = torch.Generator(device=model.device).manual_seed(seed)
            policy = model
            was_training = policy.training
            model = self._sampling_model(policy)
            policy.eval()
            # Sampled in the sampler's own precision, outside the training forward's autocast (bf16 autocast made
            # decoding slower on the CPU, r1lab bench grpo --precision bf16). Under autocast (or with weights that
            # are not float32) the recorded log-probabilities are not the training forward's: TRL computes the
            # old ones itself, and the loss corrects for the difference (_correct_rollouts).
            exact = fast_paths.sampling_is_exact(self.args, policy)
            try:
                decoded = decode_batch(
                    model,
                    [list(ids) for ids in distinct],
                    pad,
                    set(self.eos_token_ids),
                    StopStringWatcher(self.text_tokenizer, self.r1lab_stop_strings),
                    self.max_completion_length,
                    self.temperature,
                    self.top_p if self.top_p is not None else 1.0,
                    generator,
                    [position[tuple(ids)] for ids in prompt_ids],
                    close_with=eos,
                    record_logps=True,
                )
            finally:
                policy.train(was_training)
        assert decoded.logps is not None  # record_logps=True
        return decoded.tokens, decoded.logps, decoded.closed, exact

    def _sampling_model(self, policy):
        """What r1lab's loop samples from: the policy, or with ``sampling_dtype`` bfloat16 (auto: training in bf16
        autocast on a CPU with bf16 units) a bf16 copy of its float32 weights, refreshed once per optimizer step. A
        policy with a LoRA adapter, or whose weights are not float32, samples itself."""
        if not fast_paths.samples_from_bf16_copy(self.args, policy):
            return policy
        with torch.no_grad():
            if self.r1lab_sampler is None:
                self.r1lab_sampler = copy.deepcopy(policy).eval()
                for parameter in self.r1lab_sampler.parameters():
                    parameter.requires_grad_(False)
                    parameter.data = parameter.data.to(torch.bfloat16)  # parameters only: buffers keep their dtype
                self.r1lab_sampler_step = self.state.global_step
            elif self.r1lab_sampler_step != self.state.global_step:
                for target, source in zip(self.r1lab_sampler.parameters(), policy.parameters(), strict=True):
                    target.copy_(source)
                self.r1lab_sampler_step = self.state.global_step
        return self.r1lab_sampler

    def _corrects_rollouts(self) -> bool:
        """Whether r1lab's off-policy rollouts get TRL's importance-sampling correction (its vLLM setting, on by
        default), for a loss type it applies to exactly (warned once otherwise)."""
        if not getattr(self.args, "vllm_importance_sampling_correction", False) or not self.model.training:
            return False
        if self.loss_type in LINEAR_IN_ADVANTAGE:
            return True
        if not self.r1lab_warned_uncorrected:
            self.r1lab_warned_uncorrected = True
            logger.warning(
                "r1lab: loss_type %s: rollouts sampled in another precision than training are not "
                "corrected by importance sampling (sampling_dtype float32 samples the policy itself)",
                self.loss_type,
            )
        return False

    def _correct_rollouts(self, output: dict) -> dict:
        """TRL's scored batch with its rollouts' importance weights (rollout_correction) folded into the advantages,
        when r1lab's loop sampled them off the training forward's distribution; the mismatch logged per step. The
        training forward's log-probabilities are computed once here (no gradient), as TRL does for vLLM's rollouts."""
        sampling = output.get("sampling_per_token_logps")
        if sampling is None or self.use_vllm or not self._corrects_rollouts():
            return output
        mask = output["completion_mask"] * output["tool_mask"] if "tool_mask" in output else output["completion_mask"]
        old = output.get("old_per_token_logps")
        if old is None:
            input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
            attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
            with torch.no_grad():
                old, _, _ = self.score_tokens(
                    self.model,
                    input_ids,
                    attention_mask,
                    output["completion_ids"].shape[1],
                    batch_size=self.args.per_device_train_batch_size,
                )
            output["old_per_token_logps"] = old
        weights, figures = importance_weights(old, sampling, mask, **correction_settings(self.args))
        output["advantages"] = weighted_advantages(output["advantages"], weights)
        for name, value in figures.as_metrics().items():
            self.log_metric(name, value)
        return output

    # --- dynamic sampling (DAPO) ---------------------------------------------------------------------------
    def rewards_scored(self, rewards_per_func) -> None:
        self.r1lab_rewards_per_func = rewards_per_func

    def generate_and_score(self, inputs):
        if not (getattr(self.args, "dynamic_sampling", False) and self.model.training):
            return self._correct_rollouts(self.trl_generate_and_score(inputs))
        max_rounds = getattr(self.args, "max_resample_rounds", 0)  # r1lab's config has it, as it has dynamic_sampling
        size = self.num_generations
        wanted = len(inputs) // size
        drawn = oversampled_prompt_count(
            wanted, varied_share(self.state.log_history), getattr(self.args, "max_oversampling", 1.0)
        )
        extra = self._resampled_prompts(drawn - wanted, 0) if drawn > wanted else []
        rounds, batch, sampled = 0, inputs + extra, []  # sampled: (output, group index, has variance)
        while True:
            self.r1lab_sampling_round = rounds
            output = self.trl_generate_and_score(batch)
            flat = flat_groups(self.r1lab_rewards_per_func, self.reward_weights, size).tolist()
            sampled += [(output, group, not is_flat) for group, is_flat in enumerate(flat)]
            if sum(varied for _, _, varied in sampled) >= wanted or rounds == max_rounds:
                break
            rounds += 1
            batch = self._resampled_prompts(wanted, rounds)
        self.r1lab_sampling_round = 0
        chosen = [entry for entry in sampled if entry[2]][:wanted]
        effective = len(chosen)
        if effective < wanted:  # the rounds ran out: fill with flat groups (advantage 0: they teach nothing)
            chosen += [entry for entry in sampled if not entry[2]][: wanted - effective]
            logger.warning(
                "r1lab: dynamic sampling found %d of %d groups with reward variance in %d rounds (max_resample_rounds=%d); "
                "step %d trains on them, the rest of the batch are flat groups that teach nothing",
                effective,
                wanted,
                rounds + 1,
                max_rounds + 1,
                self.state.global_step,
            )
        self.log_metric("dynamic_sampling/groups_sampled", float(len(sampled)))
        self.log_metric("dynamic_sampling/groups_dropped", float(sum(not varied for _, _, varied in sampled)))
        self.log_metric("dynamic_sampling/rounds", float(rounds + 1))
        self.log_metric("dynamic_sampling/groups_oversampled", float(drawn - wanted))
        self.log_metric("dynamic_sampling/effective_groups", float(effective))
        joined = join_groups([(output, group) for output, group, _ in chosen], size, self.text_tokenizer.pad_token_id)
        return self._correct_rollouts(joined)

    def _resampled_prompts(self, count: int, round_number: int) -> list[dict]:
        """``count`` prompts of the training set, each repeated num_generations times, drawn from (seed, step,
        round; round 0: the first generation's over-sampled extras): a resumed run draws what the uninterrupted run
        drew."""
        generator = torch.Generator().manual_seed(
            self.args.seed + 1_000_003 * self.state.global_step + 104_729 * round_number
        )
        dataset = self.train_dataset
        picks = torch.randperm(len(dataset), generator=generator)[:count].tolist()
        while len(picks) < count:  # a training set smaller than a batch
            picks += torch.randperm(len(dataset), generator=generator)[: count - len(picks)].tolist()
        return [dataset[index] for index in picks for _ in range(self.num_generations)]

    # --- scoring -----------------------------------------------------------------------------------------------
    def score_tokens(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        sampled, self.r1lab_sampled = self.r1lab_sampled, None
        # TRL's old-log-probs call: the policy model, no gradient, no entropy (the loss's call has both).
        if sampled is not None and model is self.model and not compute_entropy and not torch.is_grad_enabled():
            logps = sampled_logps_tensor(sampled, input_ids, logits_to_keep)
            if logps is not None:
                return logps, None, None
        if (
            not (self.fast_paths.on("trimmed_scoring") and grpo_forward.text_only(kwargs))
            or input_ids.shape[1] - logits_to_keep < 2
        ):
            return self.trl_score_tokens(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, **kwargs
            )
        if self.fast_paths.on("shared_prompt_forward"):
            with self.accelerator.autocast():
                logps, entropies = grpo_forward.prompt_shared_logps(
                    model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy
                )
            return logps, entropies, None
        compact = self.fast_paths.on("compact_head")

        def score(ids, mask, kept):
            if compact:
                with self.accelerator.autocast():
                    return grpo_forward.compact_head_chunk(
                        model, ids, mask, kept, compute_entropy, self.temperature, self.args.cast_lm_head_to_fp32
                    )
            logps, entropies, _ = self.trl_score_tokens(
                model, ids, mask, kept, compute_entropy=compute_entropy, **kwargs
            )
            return logps, entropies

        logps, entropies = grpo_forward.score_trimmed(
            score, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy
        )
        return logps, entropies, None

    # --- loss --------------------------------------------------------------------------------------------------
    def policy_loss(self, model, inputs):
        keep = self._rows_to_train(inputs)
        if keep is not None:
            self.log_metric("zero_advantage_rows_skipped", 1.0 - keep.float().mean().item())
        if keep is None or keep.all():
            return self.trl_policy_loss(model, inputs)
        if not keep.any():
            # No row left: a loss of 0 that still gives every trainable weight a (zero) gradient, so the
            # optimizer steps exactly as it would after the full forward and backward.
            return sum(
                parameter.reshape(-1)[:1].sum() * 0.0 for parameter in model.parameters() if parameter.requires_grad
            )
        rows = keep.shape[0]
        sliced = {
            key: value[keep] if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows else value
            for key, value in inputs.items()
        }
        return self.trl_policy_loss(model, sliced)

    def _rows_to_train(self, inputs):
        """Which rows have a non-zero advantage (a bool tensor), or None when the skip is off or not exact for
        these settings."""
        advantages = inputs.get("advantages")
        exact = (
            self.fast_paths.on("zero_advantage_skip")
            and self.model.training
            and advantages is not None
            and advantages.dim() in (1, 2)
            and not any(key.startswith(("pixel", "image")) for key in inputs)
        )
        if not exact:
            return None
        return advantages != 0 if advantages.dim() == 1 else (advantages != 0).any(dim=1)


def sampled_logps_tensor(sampled, input_ids, logits_to_keep: int):
    """The recorded log-probabilities as TRL's (B, logits_to_keep) tensor (0 on padding), or None when TRL's batch
    is not the sampled completions in order (then TRL's own forward computes them)."""
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


def varied_share(log_history: list[dict]) -> float | None:
    """The share of dynamically sampled groups that had reward variance, over the logged steps so far (the
    trainer state's log history, which a checkpoint keeps: a resumed run over-samples as the uninterrupted one
    did); None before the first logged step."""
    sampled = varied = 0.0
    for record in log_history:
        groups, dropped = record.get("dynamic_sampling/groups_sampled"), record.get("dynamic_sampling/groups_dropped")
        if isinstance(groups, (int, float)) and isinstance(dropped, (int, float)):
            sampled, varied = sampled + groups, varied + groups - dropped
    return varied / sampled if sampled > 0 else None


# How many standard deviations of the binomial count of groups with variance the over-sampled draw keeps above the
# groups a step wants: one, so that a single generation fills the step about 5 times in 6.
OVERSAMPLING_MARGIN_SDS = 1.0


def oversampled_prompt_count(wanted: int, share: float | None, max_oversampling: float) -> int:
    """How many prompts a step's first generation draws so that, at a share ``share`` of groups with reward
    variance, at least ``wanted`` of them vary about 5 times in 6: the least n with n*share - sd(n) >= wanted,
    at most ``max_oversampling`` * wanted; ``wanted`` itself with no share known yet."""
    most = max(wanted, int(max_oversampling * wanted))
    if share is None or share >= 1.0:
        return wanted
    count = wanted
    while count < most:
        spread = OVERSAMPLING_MARGIN_SDS * (count * share * (1.0 - share)) ** 0.5
        if count * share - spread >= wanted:
            break
        count += 1
    return count


def flat_groups(rewards_per_func, weights, group_size: int):
    """Which groups' weighted total rewards all equal each other (a bool tensor, one per group): TRL's
    ``frac_reward_zero_std`` test (the group's reward std is 0), on which GRPO's advantages are 0. Rows every reward
    function left unscored (NaN) are left out, as TRL leaves them out of the group baseline; a group with fewer than
    two scored rows is flat."""
    weighted = rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)
    totals = weighted.nansum(dim=1)
    totals[torch.isnan(rewards_per_func).all(dim=1)] = float("nan")
    grouped = totals.view(-1, group_size)
    scored = (~torch.isnan(grouped)).sum(dim=1)
    spread = nanstd(grouped, dim=1)
    return (scored < 2) | torch.isclose(torch.nan_to_num(spread, nan=0.0), torch.zeros_like(spread))


# How each per-row tensor of TRL's scored generation batch is padded when groups of several batches are joined:
# prompts on the left, completions on the right, as TRL pads them.
_LEFT_PADDING = {"prompt_ids": "pad", "prompt_mask": 0}
_RIGHT_PADDING = {
    "completion_ids": "pad",
    "completion_mask": 0,
    "old_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "importance_sampling_ratio": 1.0,
    "tool_mask": 1,
}


def join_groups(picked: list, group_size: int, pad_token_id: int) -> dict:
    """One scored generation batch from groups of several (``picked``: (TRL's output dict, group index) pairs): each
    per-row tensor cut to the group's rows and padded to a common width; the token count TRL's loss divides by
    (``num_items_in_batch``) recounted over the joined rows (one process)."""
    first = picked[0][0]
    unknown = [
        key
        for key in first
        if key not in _LEFT_PADDING and key not in _RIGHT_PADDING and key not in ("advantages", "num_items_in_batch")
    ]
    if unknown:
        raise ValueError(f"dynamic sampling cannot join generation batches holding {', '.join(sorted(unknown))}")
    joined = {}
    for key, value in first.items():
        if key == "num_items_in_batch" or value is None:
            continue
        parts = [output[key][group * group_size : (group + 1) * group_size] for output, group in picked]
        if key == "advantages":
            joined[key] = torch.cat(parts)
            continue
        left = key in _LEFT_PADDING
        fill = (_LEFT_PADDING if left else _RIGHT_PADDING)[key]
        fill = pad_token_id if fill == "pad" else fill
        width = max(part.shape[1] for part in parts)
        padded = []
        for part in parts:
            extra = part.new_full((part.shape[0], width - part.shape[1]), fill)
            padded.append(torch.cat([extra, part] if left else [part, extra], dim=1))
        joined[key] = torch.cat(padded)
    loss_mask = joined["completion_mask"] * joined["tool_mask"] if "tool_mask" in joined else joined["completion_mask"]
    joined["num_items_in_batch"] = loss_mask.sum()
    return joined
