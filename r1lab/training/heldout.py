"""Held-out accuracy during training: the learning curve of a training stage on questions it never trains on.

A stage's ``heldout_eval`` (EvalConfig settings plus ``every``) evaluates the model being trained on held-out
questions (the test split unless set) at the start and every ``every`` optimizer steps, with r1lab's batched
generation and the task's checker, exactly as ``r1lab eval`` scores them:

    heldout_eval: {every: 10, limit: 100, k: 1, temperature: 0, max_new_tokens: 64}

Each evaluation is one line of ``output_dir/heldout.jsonl`` (``step`` and the eval's headline figures:
``greedy_accuracy``, ``pass_at_1``, format rates, mean tokens, seconds) and, from step 1 on, part of that
step's line in ``metrics.jsonl`` as ``heldout/<figure>``. The report draws it beside the reward. The
callback must come before the MetricsFileCallback in the trainer's list (it adds to the logged line).
The time it takes is training time: keep ``limit`` small (100 greedy questions of a short-answer task
are tens of seconds on a CPU).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from transformers import TrainerCallback

from r1lab.config import build_config
from r1lab.errors import UserError
from r1lab.eval_metrics import summarize
from r1lab.evaluate import EvalConfig, check_eval_settings, evaluate_questions, load_questions
from r1lab.run_files import HELDOUT, append_records, keep_records_up_to

logger = logging.getLogger("r1lab")

FIGURES = (
    "greedy_accuracy",
    "greedy_format_rate",
    "pass_at_1",
    "format_rate",
    "pass_at_k",
    "mean_tokens",
    "truncation_rate",
)
_DEFAULTS = {"limit": 100, "k": 1, "temperature": 0.0, "progress": False}


def heldout_settings(config) -> tuple[int, Any] | None:
    """(every, EvalConfig) from the stage's ``heldout_eval``; None when it is empty. UserError when malformed."""

    settings = getattr(config, "heldout_eval", None)
    if not settings:
        return None
    if not isinstance(settings, dict):
        raise UserError(f"heldout_eval must be a mapping such as {{every: 10, limit: 100}}, got {settings!r}")
    values = dict(settings)
    every = values.pop("every", None)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise UserError(f"heldout_eval needs every: a number of optimizer steps >= 1, got {every!r}")
    for name in ("model", "output_dir", "overwrite", "greedy"):
        if name in values:
            raise UserError(f"heldout_eval: {name} is set by the stage (the model being trained, {HELDOUT.name})")
    task_fields = {
        name: getattr(config, name)
        for name in ("task", "dataset", "task_size", "task_seed", "task_options", "template")
    }
    eval_config = build_config(EvalConfig, {**task_fields, **_DEFAULTS, **values}, source="heldout_eval")
    check_eval_settings(eval_config)
    return every, eval_config


class HeldoutEvalCallback(TrainerCallback):
    """Evaluates the training model on held-out questions at the start and every ``every`` steps (main process)."""

    def __init__(self, every: int, eval_config, tokenizer, output_dir: str):

        self.every = every
        self.config = eval_config
        self.tokenizer = tokenizer
        self.path = os.path.join(output_dir, HELDOUT.name)
        self.questions = load_questions(eval_config)  # loaded now: a bad split or limit fails before training starts
        self.due: int | None = None  # a step whose eval runs when that step is logged
        self.done: set[int] = set()

    def evaluate(self, model, step: int) -> dict[str, Any]:
        config = self.config
        was_training = model.training
        started = time.perf_counter()
        try:
            records, _ = evaluate_questions(model, self.tokenizer, self.questions, config, progress=False)
        finally:
            model.train(was_training)
        summary = summarize(records, self.questions.task.has_gold)
        record = {"step": step, "questions": summary["questions"], "k": summary["k"]}
        record.update({key: summary[key] for key in FIGURES if summary.get(key) is not None})
        record["seconds"] = round(time.perf_counter() - started, 2)
        append_records(self.path, HELDOUT, [record])
        logger.info(
            "r1lab: held-out eval at step %d: greedy accuracy %.3f on %d questions (%.0f s)",
            step,
            record.get("greedy_accuracy", float("nan")),
            record["questions"],
            record["seconds"],
        )
        return record

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        if state.global_step == 0:
            if os.path.exists(self.path):
                os.remove(self.path)  # a fresh run: the curve starts again
            self.evaluate(model, 0)
        else:  # resumed: keep the curve up to the checkpoint
            self._keep_up_to(state.global_step)
        self.done.add(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if (
            state.is_world_process_zero
            and step not in self.done
            and (step % self.every == 0 or step >= state.max_steps)
        ):
            self.due = step
            control.should_log = True  # the eval runs in on_log, so that its time is not counted as the step's

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if self.due is None or self.due != state.global_step or model is None or logs is None:
            return
        self.done.add(self.due)
        self.due = None
        record = self.evaluate(model, state.global_step)
        logs.update({f"heldout/{key}": value for key, value in record.items() if key in FIGURES})

    def _keep_up_to(self, step: int) -> None:
        keep_records_up_to(self.path, HELDOUT, step)


def heldout_callback(config, tokenizer) -> HeldoutEvalCallback | None:
    """The callback for a stage's ``heldout_eval`` (None without one)."""
    settings = heldout_settings(config)
    if settings is None:
        return None
    every, eval_config = settings
    return HeldoutEvalCallback(every, eval_config, tokenizer, config.output_dir)
