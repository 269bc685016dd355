"""One training stage from start to finish: checks before anything loads, then train → save → final eval → marker.

``grpo``, ``sft`` and ``distill`` (on-policy) each build their trainer and hand it to :func:`run_training_stage`,
which trains it (resuming where the config says), saves the model, evaluates it (``final_eval``) and writes the
finish marker that tells the pipeline the stage is done.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from typing import Any

from r1lab.config import build_config, config_to_dict
from r1lab.errors import UserError
from r1lab.evaluate import EvalConfig, check_eval_settings, run_eval
from r1lab.outputs import check_output_dir, is_inside, write_stage_marker
from r1lab.training.callbacks import MetricsFileCallback, summarize_history
from r1lab.training.checkpoints import (
    log_trained_weights,
    resolve_resume,
    save_trained_model,
)
from r1lab.training.settings import peft_config, precision_figures

logger = logging.getLogger("r1lab")


def check_training_outputs(config) -> None:
    """Before anything loads: the output directory may be written (or resumed), the final eval's settings are
    valid, LoRA's settings too."""
    check_output_dir(config.output_dir, config.overwrite, resuming=bool(resolve_resume(config)))
    check_final_eval(config)
    peft_config(config)


def run_training_stage(
    config,
    stage: str,
    build_trainer: Callable[[list], Any],
    tokenizer,
    *,
    started: float,
    merge_lora: bool = False,
    figures: Callable[[], dict[str, Any]] | None = None,
    before_final_eval: Callable[[], None] | None = None,
    write_marker: bool = True,
) -> dict[str, Any]:
    """Train ``build_trainer(callbacks)`` (it loads the model and builds the trainer with these callbacks), on every
    rank; save the model into ``config.output_dir``; then, on rank 0: ``before_final_eval()`` (files to keep beside
    the model), the final eval and the finish marker. Returns the stage's figures: the logged metrics' last values,
    peak RSS, ``figures()`` (read after training), the final eval's key figures."""
    metrics = MetricsFileCallback(config.output_dir)
    trainer = build_trainer([metrics])
    precision = precision_figures(trainer.model, trainer.args)
    logger.info(
        "r1lab: %s: training %s weights%s",
        precision["device"],
        precision["weights"],
        f" in {precision['autocast']} autocast" if precision["autocast"] else "",
    )
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    result = finish_training(
        trainer, tokenizer, config.output_dir, metrics, stage, merge_lora, **(figures() if figures else {})
    )
    if trainer.is_world_process_zero():
        if before_final_eval is not None:
            before_final_eval()
        result["final_eval"] = run_final_eval(config)
        if write_marker:
            write_stage_marker(config.output_dir, stage, config_to_dict(config), started, result)
    return result


def finish_training(
    trainer, tokenizer, output_dir: str, metrics, stage: str, merge_lora: bool = False, **extra
) -> dict:
    """After ``trainer.train()``, on every rank: the run's figures (the metrics summary, peak RSS, ``extra``, the
    world size and weights fingerprint), with the trained model saved into ``output_dir``."""
    figures = summarize_history(metrics.history)
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    figures["precision"] = precision_figures(trainer.model, trainer.args)
    figures.update(extra)
    log_trained_weights(trainer, stage, figures)
    save_trained_model(trainer, tokenizer, output_dir, merge_lora=merge_lora)
    return figures


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def check_final_eval(config) -> None:
    """``final_eval``: EvalConfig settings for an eval of the trained model at the end of a stage
    (``{limit: 100, k: 4}``); checked with the rest of the config, before any model loads."""
    if not config.final_eval:
        return
    if not isinstance(config.final_eval, dict):
        raise UserError(
            f"final_eval must be a mapping of eval settings such as {{limit: 100, k: 4}}, got {config.final_eval!r}"
        )
    check_eval_settings(build_config(EvalConfig, dict(config.final_eval), source="final_eval"))
    target = config.final_eval.get("output_dir")
    if target is not None and not is_inside(str(target), config.output_dir):
        raise UserError(f"final_eval output_dir {target} is outside the stage's output_dir {config.output_dir}")


FINAL_EVAL_FIGURES = (
    "greedy_accuracy",
    "greedy_format_rate",
    "pass_at_1",
    "cons_at_k",
    "format_rate",
    "questions",
    "k",
)


def run_final_eval(config) -> dict[str, Any] | None:
    """Evaluate the saved model in ``output_dir`` on the stage's task (test split unless set) → key figures."""
    if not config.final_eval:
        return None
    summary = run_eval(config.output_dir, config, config.template, **config.final_eval)
    return {key: summary[key] for key in FINAL_EVAL_FIGURES if key in summary}
