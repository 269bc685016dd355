"""Rejection sampling (DeepSeek-R1 stage 3) and distillation data: a model's own verified, readable traces.

From ``model`` (R1: the stage-2 reasoning-RL checkpoint; distillation: the teacher) sample ``num_samples``
completions per prompt of a task with :mod:`r1lab.generation`. A completion is kept only when it finished
(no ``max_new_tokens`` cut), the task's checker verifies its answer (``task.check``: the one the accuracy
reward and ``r1lab eval`` use) and it passes the readability filters, at most ``max_per_question`` per
question; the judging is cold-start's :func:`r1lab.stages.cold_start.verify_and_filter`. The completions are
kept as the model wrote them (its summary after the reasoning included), not re-written.

Then ``general_ratio`` non-reasoning samples per kept reasoning sample are drawn (seeded, without repeats)
from ``general_file``, a jsonl of chat samples (``messages``, or ``prompt`` and ``completion``): writing,
factual QA, self-cognition, translation. R1 used about 200k general to 600k reasoning samples: 0.33.

``output`` (a directory) receives ``train.jsonl`` (TRL conversational prompt/completion rows, each with its
``source``: reasoning or general), which ``r1lab sft --train_file <output>`` reads, ``stats.json`` and the
stage marker, each written atomically. When no sample verifies, the stage writes ``stats.json`` only (what
removed the samples, the accept rate of each question) and stops with a UserError: an SFT on general data
alone would not be stage 3.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from r1lab.chat_samples import to_prompt_completion
from r1lab.config import config_to_dict, setting
from r1lab.errors import UserError
from r1lab.filters import count_removal, filter_settings, token_counter
from r1lab.generation import check_settings, generate, load_generation_model
from r1lab.models import ModelDtype, load_tokenizer, resolve_model, torch_dtype
from r1lab.outputs import (
    STAGE_MARKER,
    json_bytes,
    jsonl_bytes,
    stage_marker,
    write_files_atomic,
    write_json_atomic,
)
from r1lab.stages.cold_start import (
    Candidate,
    check_dataset_output,
    new_stats,
    output_paths,
    raise_if_empty,
    verify_and_filter,
)
from r1lab.tasks import TaskSpec, get_task
from r1lab.tasks.files import read_jsonl
from r1lab.templates import get_template
from r1lab.vllm_support import Backend, check_backend

logger = logging.getLogger("r1lab")

STAGE = "rejection-sampling"


@dataclass
class RejectionSamplingConfig(TaskSpec):
    """Which model samples which task, how the samples are judged, what is mixed in (``--help``)."""

    model: str = setting("embedded", "R1: the stage-2 RL checkpoint; distillation: the teacher.")
    model_dtype: ModelDtype = setting(
        "auto", "The weights' dtype: auto = bfloat16 on a GPU, and on a CPU with bf16 units; else float32."
    )
    trust_remote_code: bool = setting(False, "Run code a model ships with it (off: such a model is refused).")
    generation_backend: Backend = setting("auto", "Auto (vLLM on a GPU when installed, else r1lab's loop) | hf | vllm.")
    template: str = setting(
        "xml", "The output layout: xml (<reasoning>/<answer>, the seed's) or think (<think>...</think> answer)."
    )
    num_samples: int = setting(4, "Completions sampled per question.", minimum=1)
    temperature: float = setting(0.6, "Sampling temperature.", minimum=0.0)
    top_p: float = setting(
        0.95, "Nucleus sampling: the smallest set of tokens whose probability reaches top_p.", minimum=0.0, maximum=1.0
    )
    max_new_tokens: int = setting(512, "At most this many tokens per completion.", minimum=1)
    batch_size: int = setting(16, "Prompts decoded together.", minimum=1)
    seed: int = setting(42, "The seed of sampling (and of anything else drawn at random).", minimum=0)
    filters: dict[str, Any] = setting(default_factory=dict, help="FilterSettings keys, e.g. {max_chars: 4000}.")
    max_per_question: int | None = setting(1, "Kept completions per question; null: every verified one.")
    general_file: str | None = setting(None, "Jsonl of non-reasoning chat samples (messages, or prompt + completion).")
    general_ratio: float = setting(
        0.0, "General samples per kept reasoning sample (R1: 200k:600k ≈ 0.33).", minimum=0.0
    )
    output: str = setting("runs/rejection-sampling", "A directory (train.jsonl + stats.json) or a .jsonl file.")
    overwrite: bool = setting(False, "Replace a finished output (its finish marker goes first).")
    progress: bool = setting(True, "Progress bars with ETA on stderr.")


def read_general(config: RejectionSamplingConfig) -> list[dict[str, Any]]:
    """The general samples as prompt/completion chats, every row checked as ``r1lab sft`` checks it."""
    if config.general_ratio < 0:
        raise UserError(f"general_ratio must be >= 0, got {config.general_ratio}")
    if not config.general_file:
        if config.general_ratio > 0:
            raise UserError(
                f"general_ratio {config.general_ratio} needs general_file: a jsonl of chat samples (messages, or prompt and completion)"
            )
        return []
    if not os.path.isfile(config.general_file):
        raise UserError(f"general_file not found: {config.general_file}")

    rows = read_jsonl(config.general_file)
    if not rows:
        raise UserError(f"general_file {config.general_file} has no samples")
    return [
        {**to_prompt_completion(row, f"{config.general_file} row {index + 1}"), "source": "general"}
        for index, row in enumerate(rows)
    ]


def check(config: RejectionSamplingConfig) -> None:
    """The stage contract's check (commands.Command.check): the settings, the task and template they name; reads
    no rows, no model, no general data, no input or output path."""
    get_template(config.template)
    filter_settings(config.filters)
    check_settings(config.num_samples, config.temperature, config.top_p, config.max_new_tokens, config.batch_size)
    if config.max_per_question is not None and config.max_per_question < 1:
        raise UserError(f"max_per_question must be at least 1 (or null), got {config.max_per_question}")
    check_backend(config.generation_backend, "generation_backend")
    if config.task == "mix":
        raise UserError(
            "rejection sampling keeps answers a checker verifies: give a reasoning task, and general data as general_file"
        )
    get_task(config)
    torch_dtype(config.model_dtype)


def validate(config: RejectionSamplingConfig):
    """Everything checkable before a model loads → (template, filter settings, general samples)."""
    check(config)
    general = read_general(config)
    resolve_model(config.model)
    check_dataset_output(config.output, config.overwrite)
    return get_template(config.template), filter_settings(config.filters), general


def judge(rows, outputs, task, template, settings, config, count_tokens=None) -> tuple[list[dict], dict[str, Any]]:
    """The kept reasoning samples and the stats: per check, per question, overall."""
    stats = new_stats(STAGE, task.name)
    samples: list[dict[str, Any]] = []
    per_question: list[dict[str, Any]] = []
    for row, completions in zip(rows, outputs):
        candidates = []
        for generated in completions:
            stats["total"] += 1
            if generated.truncated:
                count_removal(stats, "truncated", f"hit max_new_tokens={config.max_new_tokens} before finishing")
            elif template.extract_answer(generated.text) is None:
                count_removal(stats, "no_answer", f"no final answer in the {template.name} layout")
            else:
                candidates.append(Candidate(row, generated.text.strip()))
        wrong_before = stats["removed"]["checker"]
        kept = verify_and_filter(candidates, task, template, settings, stats, config.max_per_question, count_tokens)
        verified = len(candidates) - (stats["removed"]["checker"] - wrong_before)
        per_question.append(
            {
                "task_index": row.get("task_index"),
                "question": row["question"][:200],
                "answer": str(row["answer"]),
                "sampled": len(completions),
                "verified": verified,
                "kept": len(kept),
                "accept_rate": round(verified / max(len(completions), 1), 4),
            }
        )
        samples.extend({**sample, "source": "reasoning"} for sample in kept)
    verified = sum(question["verified"] for question in per_question)
    stats.update(
        kept=len(samples),
        sampled=stats["total"],
        verified=verified,
        kept_reasoning=len(samples),
        accept_rate=round(verified / max(stats["total"], 1), 4),
        questions=len(per_question),
        questions_none_verified=sum(not question["verified"] for question in per_question),
        questions_all_verified=sum(question["verified"] == question["sampled"] for question in per_question),
        per_question=per_question,
    )
    return samples, stats


def pick_general(general: list[dict[str, Any]], kept_reasoning: int, config, stats: dict[str, Any]) -> list[dict]:
    """``round(general_ratio * kept_reasoning)`` general samples, seeded; all of them when the file has fewer."""
    wanted = round(config.general_ratio * kept_reasoning)
    picked = random.Random(config.seed).sample(general, min(wanted, len(general)))
    if wanted > len(general):
        logger.warning(
            "r1lab: general_ratio %s asks for %d general samples; %s has %d: all of them are used",
            config.general_ratio,
            wanted,
            config.general_file,
            len(general),
        )
    stats.update(general_wanted=wanted, general_available=len(general), general_added=len(picked))
    return picked


def write_outputs(config, samples, stats, started) -> None:
    """stats.json, then train.jsonl, then the stage marker; no train.jsonl and an error when nothing verified."""
    data_path, stats_path = output_paths(config.output)
    directory = not config.output.endswith(".jsonl")
    marker_path = os.path.join(config.output, STAGE_MARKER)
    stats.update(rows=len(samples), seconds=round(time.time() - started, 1), config=config_to_dict(config))
    stats["data_file"] = data_path if stats["kept"] else None
    if stats["kept"]:
        # Every file written in full before any replaces the earlier dataset (a full disk fails first); the
        # earlier marker goes before anything is replaced, the new one comes last.
        files = [(stats_path, json_bytes(stats)), (data_path, jsonl_bytes(samples))]
        if directory:
            files.append((marker_path, json_bytes(stage_marker(STAGE, stats["config"], started, figures(stats)))))
        write_files_atomic(files)
        return
    # Nothing verified: the earlier dataset stops being this stage's result; stats.json says why.
    for path in ([marker_path] if directory else []) + [data_path]:
        if os.path.exists(path):
            os.remove(path)
    write_json_atomic(stats_path, stats)
    try:
        raise_if_empty(stats)
    except UserError as error:
        raise UserError(f"no reasoning sample kept: {error}; per-question accept rates in {stats_path}") from None


def figures(stats: dict[str, Any]) -> dict[str, Any]:
    keys = ("sampled", "verified", "accept_rate", "kept_reasoning", "general_added", "rows", "questions_none_verified")
    return {**{key: stats[key] for key in keys}, "removed": stats["removed"]}


def main(config: RejectionSamplingConfig) -> dict[str, Any]:
    started = time.time()
    template, settings, general = validate(config)
    task = get_task(config)
    rows = task.load()
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    model = load_generation_model(
        config.model, config.model_dtype, config.trust_remote_code, config.seed, config.generation_backend
    )
    outputs = generate(
        model,
        tokenizer,
        [task.prompt(row["question"], template) for row in rows],
        n=config.num_samples,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        seed=config.seed,
        stop_strings=template.stop_string or None,
        progress=config.progress,
        description="rejection sampling",
    )
    del model
    samples, stats = judge(rows, outputs, task, template, settings, config, token_counter(tokenizer))
    samples += pick_general(general, len(samples), config, stats)
    write_outputs(config, samples, stats, started)
    logger.info(
        "r1lab: sampled %d, verified %d (accept rate %.1f%%), kept %d reasoning + %d general → %s",
        stats["sampled"],
        stats["verified"],
        100 * stats["accept_rate"],
        stats["kept_reasoning"],
        stats["general_added"],
        stats["data_file"],
    )
    return figures(stats)
