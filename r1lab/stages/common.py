"""What every training stage shares: metrics.jsonl, learning-signal warnings, the finish marker."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from transformers import TrainerCallback

from r1lab.outputs import STAGE_MARKER, write_json_atomic

logger = logging.getLogger("r1lab")

METRICS_FILE = "metrics.jsonl"


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
        if state.is_world_process_zero:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)

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
        self.history.append(record)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
        self._warn_if_not_learning()

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


def write_stage_marker(output_dir: str, stage: str, config: dict[str, Any], started: float, figures: dict) -> None:
    write_json_atomic(
        os.path.join(output_dir, STAGE_MARKER),
        {
            "stage": stage,
            "status": "finished",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.time() - started, 1),
            "figures": figures,
            "config": config,
        },
    )


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
