"""The files a training stage logs into its output directory: ``metrics.jsonl`` (one record per logged step) and,
for GRPO, ``completions.jsonl`` (the completions behind each logged step); warnings when a run is not learning.

transformers is imported at the top: this module is loaded by the training stages only, which load it anyway.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from r1lab.outputs import remove_stage_marker
from r1lab.run_files import COMPLETIONS, METRICS, append_records, keep_records_up_to
from r1lab.training.trl_compat import generation_logs

if TYPE_CHECKING:
    from trl import GRPOTrainer

logger = logging.getLogger("r1lab")


class MetricsFileCallback(TrainerCallback):
    """Appends one JSON line per logged step to ``metrics.jsonl`` (with step seconds), and warns once,
    clearly, when a GRPO run is not learning: most groups with zero reward variance, or most completions
    cut at the length cap."""

    def __init__(self, output_dir: str, warn_threshold: float = 0.5):
        self.path = os.path.join(output_dir, METRICS.name)
        self.warn_threshold = warn_threshold
        self.step_started: float | None = None
        self.step_seconds: list[float] = []
        self.history: list[dict[str, Any]] = []
        self.warned: set[str] = set()
        self.resumed_at = 0  # on_train_begin: > 0 when resumed

    def on_train_begin(self, args, state, control, **kwargs):
        self.resumed_at = state.global_step  # > 0: resumed from checkpoint-<global_step>
        if not state.is_world_process_zero:
            return
        output_dir = os.path.dirname(self.path)
        os.makedirs(output_dir, exist_ok=True)
        # Training writes into output_dir from now on: it no longer holds a finished stage (--overwrite).
        remove_stage_marker(output_dir)
        # A fresh run starts an empty file; a resumed one keeps the records up to its checkpoint (a killed run
        # may have logged steps after it, which the resumed run logs again) and counts them in its figures.
        self.history = keep_records_up_to(self.path, METRICS, state.global_step)

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
        if "train_loss" in record and self.resumed_at:
            record["train_loss"] = self._whole_run_train_loss(record["train_loss"], state.global_step)
        self.history.append(record)
        append_records(self.path, METRICS, [record])
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
        rounds = self._mean("dynamic_sampling/rounds")
        if (
            zero_std is not None
            and zero_std > self.warn_threshold
            and "zero_std" not in self.warned
            and rounds is not None
        ):
            self.warned.add("zero_std")
            logger.warning(
                "r1lab: %.0f%% of the prompt groups sampled so far had zero reward variance; dynamic sampling dropped "
                "them and sampled more prompts instead (%.1f generation rounds per step, %.1f groups with variance "
                "trained per step, on average). An easier task or a higher num_generations needs fewer rounds.",
                100 * zero_std,
                rounds,
                self._mean("dynamic_sampling/effective_groups") or 0.0,
            )
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
        self.path = os.path.join(output_dir, COMPLETIONS.name)
        self.trainer: GRPOTrainer | None = None
        self.written_for_step = -1

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            keep_records_up_to(self.path, COMPLETIONS, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logged = generation_logs(self.trainer)
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
        records = []
        for index, completion in enumerate(completions):
            components = {name: values[index] for name, values in rewards.items() if index < len(values)}
            finite = [(w, v) for w, v in zip(weights, components.values()) if v is not None and v == v]
            records.append(
                {
                    "step": state.global_step,
                    "question": _message_text(prompts[index]) if index < len(prompts) else None,
                    "completion": _message_text(completion),
                    "reward": sum(w * v for w, v in finite) if finite else None,
                    "rewards": components,
                }
            )
        append_records(self.path, COMPLETIONS, records)
