"""Cold-start data (DeepSeek-R1 stage 1): verified, readable reasoning traces in the template's layout.

Three sources of candidate completions:

- ``solutions``: the task's own worked solutions (GSM8K rationales, reasoning-gym ``answer_cot`` or generated
  step-by-step solutions), written into the template.
- ``zero``: completions from an earlier run (a jsonl with ``question``, ``answer``, ``completion``), their
  reasoning and answer re-written into the template (R1 cleaned R1-Zero outputs for readability).
- ``fewshot``: a model prompted with a few solved examples samples completions (``r1lab.generation``).

A candidate is kept only when the task's checker verifies its answer and it passes the readability filters
(:mod:`r1lab.filters`). The output is a chat-format jsonl (``prompt``/``completion``/``answer``) that
``r1lab sft --train_file`` reads, plus ``stats.json``: what each check removed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from r1lab.config import check_declared, config_to_dict, setting
from r1lab.errors import UserError
from r1lab.filters import FILTER_NAMES, check_completion, count_removal, filter_settings, token_counter
from r1lab.generation import check_settings, generate, load_generation_model
from r1lab.models import ModelDtype, load_tokenizer, resolve_model
from r1lab.outputs import (
    STAGE_MARKER,
    check_output_dir,
    check_writable_dir,
    json_bytes,
    jsonl_bytes,
    stage_marker,
    write_files_atomic,
)
from r1lab.tasks import TaskSpec, get_task
from r1lab.tasks.files import read_jsonl, require_columns
from r1lab.tasks.gym import GymTask
from r1lab.templates import get_template
from r1lab.vllm_support import Backend, check_backend

logger = logging.getLogger("r1lab")

DATA_FILE = "train.jsonl"
STATS_FILE = "stats.json"
# Checks that run before the readability filters, in order, and the cap after them.
PRE_FILTER_CHECKS = ("no_solution", "unknown_question", "truncated", "no_answer", "checker")
POST_FILTER_CHECKS = ("max_per_question",)


@dataclass
class ColdStartDataConfig(TaskSpec):
    """Which task, which source, where to write, how to filter (``r1lab cold-start-data --help``)."""

    template: str = setting(
        "xml", "The output layout: xml (<reasoning>/<answer>, the seed's) or think (<think>...</think> answer)."
    )
    source: Literal["solutions", "zero", "fewshot"] = setting(
        "solutions",
        "Where the traces come from: solutions (the task's worked solutions), zero (an R1-Zero run's completions_file, reformatted) or fewshot (the model prompted with solved examples).",
    )
    output: str = setting(
        "runs/cold-start-data", "A .jsonl file (stats beside it) or a directory (train.jsonl + stats.json)."
    )
    overwrite: bool = setting(False, "Replace a finished output (its finish marker goes first).")
    filters: dict[str, Any] = setting(default_factory=dict, help="FilterSettings keys, e.g. {max_chars: 4000}.")
    max_per_question: int | None = setting(1, "Kept completions per question (zero/fewshot may have several).")
    # source: zero
    completions_file: str | None = setting(None, "Jsonl: question, answer, completion.")
    completions_template: str | None = setting(None, "Layout the completions were written in (default: template).")
    # source: fewshot
    model: str = setting(
        "embedded",
        "The model: embedded (SmolLM2-135M-Instruct), a local directory or a hub id; fewshot samples from it, and "
        "filters.max_tokens counts its tokenizer's tokens.",
    )
    model_dtype: ModelDtype = setting(
        "auto", "The weights' dtype: auto = bfloat16 on a GPU, and on a CPU with bf16 units; else float32."
    )
    trust_remote_code: bool = setting(False, "Run code a model ships with it (off: such a model is refused).")
    generation_backend: Backend = setting("auto", "Auto (vLLM on a GPU when installed, else r1lab's loop) | hf | vllm.")
    fewshot_examples: int = setting(2, "Solved examples shown before each question.", minimum=0)
    num_samples: int = setting(4, "Completions sampled per question.", minimum=1)
    temperature: float = setting(0.7, "Sampling temperature.", minimum=0.0)
    top_p: float = setting(
        0.95, "Nucleus sampling: the smallest set of tokens whose probability reaches top_p.", minimum=0.0, maximum=1.0
    )
    max_new_tokens: int = setting(512, "At most this many tokens per completion.", minimum=1)
    batch_size: int = setting(16, "Prompts decoded together.", minimum=1)
    seed: int = setting(42, "The seed of sampling (and of anything else drawn at random).", minimum=0)


@dataclass
class Candidate:
    row: dict[str, Any]  # the task row: question, answer (gold), task_index, ...
    completion: str  # in the target template's layout


def output_paths(output: str) -> tuple[str, str]:
    """(data file, stats file): ``x.jsonl`` → (x.jsonl, x.stats.json); a directory → (dir/train.jsonl, dir/stats.json)."""
    if output.endswith(".jsonl"):
        return output, output[: -len(".jsonl")] + ".stats.json"
    return os.path.join(output, DATA_FILE), os.path.join(output, STATS_FILE)


def check_dataset_output(output: str, overwrite: bool) -> None:
    """A dataset may be written to ``output`` (a ``.jsonl`` file or a directory): writable, not a finished run's
    unless ``overwrite``."""
    data_path, _ = output_paths(output)
    if not output.endswith(".jsonl"):
        check_output_dir(output, overwrite)
    check_writable_dir(os.path.dirname(os.path.abspath(data_path)), "output")
    if os.path.isdir(data_path):
        raise UserError(f"output {data_path} is a directory")
    if os.path.exists(data_path) and not overwrite:
        raise UserError(f"{data_path} exists; pass --overwrite true to replace it")


def chat_sample(task, template, row: dict[str, Any], completion: str) -> dict[str, Any]:
    """One training sample in TRL's conversational prompt-completion format."""
    return {
        "prompt": task.prompt(row["question"], template),
        "completion": [{"role": "assistant", "content": completion}],
        "answer": str(row["answer"]),
        "task_index": row.get("task_index"),
    }


def new_stats(source: str, task_name: str) -> dict[str, Any]:
    names = PRE_FILTER_CHECKS + FILTER_NAMES + POST_FILTER_CHECKS
    return {
        "source": source,
        "task": task_name,
        "total": 0,
        "kept": 0,
        "removed": dict.fromkeys(names, 0),
        "examples": {},
    }


def _remove(stats: dict[str, Any], name: str, reason: str | None) -> None:
    count_removal(stats, name, reason)


def reformat(text: str, source_template, template) -> str | None:
    """``text``'s reasoning and final answer re-written in ``template``'s layout; None without an answer."""
    reasoning, _ = source_template.split(text)
    answer = source_template.extract_answer(text)
    if not reasoning or answer is None or not answer.strip():
        return None
    return template.format(reasoning, answer)


def solution_candidates(rows: list[dict[str, Any]], template, stats: dict[str, Any]) -> list[Candidate]:
    """The rows' worked solutions with their gold answers, in the template's layout."""
    candidates = []
    for row in rows:
        stats["total"] += 1
        if not row.get("solution"):
            _remove(stats, "no_solution", "the row has no worked solution")
            continue
        candidates.append(Candidate(row, template.format(row["solution"], str(row["answer"]))))
    return candidates


def verify_and_filter(
    candidates: list[Candidate],
    task,
    template,
    settings,
    stats: dict[str, Any],
    max_per_question: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> list[dict[str, Any]]:
    """Chat samples of the candidates whose answer the task's checker verifies and that pass every filter."""
    samples = []
    per_question: dict[str, int] = {}
    for candidate in candidates:
        verdict = task.check(candidate.completion, candidate.row, template)
        if not verdict.correct:
            _remove(
                stats,
                "checker",
                f"answer {verdict.extracted!r} is not verified against the gold {candidate.row['answer']!r}",
            )
            continue
        name, reason = check_completion(candidate.completion, settings, template, count_tokens)
        if name is not None:
            _remove(stats, name, reason)
            continue
        question = candidate.row["question"]
        if max_per_question is not None and per_question.get(question, 0) >= max_per_question:
            _remove(stats, "max_per_question", f"already {max_per_question} kept for this question")
            continue
        per_question[question] = per_question.get(question, 0) + 1
        samples.append(chat_sample(task, template, candidate.row, candidate.completion))
    stats["kept"] = len(samples)
    return samples


def raise_if_empty(stats: dict[str, Any]) -> None:
    """A UserError naming what removed the most candidates, when none survived."""
    if stats["kept"]:
        return
    if not stats["total"]:
        raise UserError(f"no candidates from source {stats['source']!r}: nothing to build a dataset from")
    ranked = sorted(((count, name) for name, count in stats["removed"].items() if count), reverse=True)
    count, name = ranked[0]
    others = ", ".join(f"{other} {n}" for n, other in ranked[1:])
    raise UserError(
        f"every one of {stats['total']} candidates was removed; {name} removed {count}"
        f" (e.g. {stats['examples'].get(name, '?')})"
        + (f", then {others}" if others else "")
        + ("; loosen it with --filters '{...}'" if name not in PRE_FILTER_CHECKS else "")
    )


def samples_from_solutions(task, template, settings, count_tokens=None, rows=None) -> tuple[list[dict], dict]:
    """Cold-start samples from the task's worked solutions (also what ``r1lab sft`` builds without a train_file)."""
    stats = new_stats("solutions", task.name)
    rows = task.load() if rows is None else rows
    candidates = solution_candidates(rows, template, stats)
    samples = verify_and_filter(candidates, task, template, settings, stats, None, count_tokens)
    raise_if_empty(stats)
    return samples, stats


def _completion_text(value: Any) -> str:
    """A completion given as text or as chat messages (the last message's content)."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return str(value)


def zero_candidates(config: ColdStartDataConfig, task, template, stats: dict[str, Any]) -> list[Candidate]:
    """Completions of an earlier run with their reasoning and answer re-written into the template."""
    source_template = get_template(config.completions_template or config.template)
    assert config.completions_file is not None  # check(): source zero needs one
    records = read_jsonl(config.completions_file)
    require_columns(records, ("question", "completion"), config.completions_file)
    # Procedural tasks check an answer against their own generated entry: find it by question.
    rows_by_question = None
    if isinstance(task, GymTask) or any("answer" not in record for record in records):
        rows_by_question = {row["question"]: row for row in task.load()}
    candidates = []
    for index, record in enumerate(records):
        stats["total"] += 1
        question = str(record["question"])
        if rows_by_question is not None:
            row = rows_by_question.get(question)
        else:
            row = {"question": question, "answer": str(record["answer"]), "task_index": record.get("task_index", index)}
        if row is None:
            _remove(
                stats, "unknown_question", f"{question[:60]!r} is not a question of {task.name} [{task.spec.split}]"
            )
            continue
        completion = reformat(_completion_text(record["completion"]), source_template, template)
        if completion is None:
            _remove(stats, "no_answer", f"no reasoning and answer in the {source_template.name} layout")
            continue
        candidates.append(Candidate(row, completion))
    return candidates


def fewshot_prompt(task, template, exemplars: list[dict[str, Any]], question: str) -> list[dict[str, str]]:
    """The task's prompt with solved examples as earlier turns of the chat."""
    system, user = task.prompt(question, template)
    shots = []
    for example in exemplars:
        shots.append({"role": "user", "content": example["question"]})
        shots.append({"role": "assistant", "content": template.format(example["solution"], str(example["answer"]))})
    return [system, *shots, user]


def fewshot_candidates(config: ColdStartDataConfig, task, template, stats: dict[str, Any]) -> list[Candidate]:
    """Completions sampled from ``config.model`` prompted with ``fewshot_examples`` solved examples."""
    rows = task.load()
    exemplars = [row for row in rows if row.get("solution")][: config.fewshot_examples]
    if len(exemplars) < config.fewshot_examples:
        raise UserError(
            f"fewshot_examples={config.fewshot_examples} but {task.name} has only {len(exemplars)} rows with worked solutions"
        )
    shown = {id(row) for row in exemplars}
    targets = [row for row in rows if id(row) not in shown]
    if not targets:
        raise UserError(f"every row of {task.name} is used as a few-shot example: nothing left to generate for")
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    model = load_generation_model(
        config.model, config.model_dtype, config.trust_remote_code, config.seed, config.generation_backend
    )
    prompts = [fewshot_prompt(task, template, exemplars, row["question"]) for row in targets]
    outputs = generate(
        model,
        tokenizer,
        prompts,
        n=config.num_samples,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        seed=config.seed,
        stop_strings=template.stop_string or None,
        description="few-shot cold-start samples",
    )
    candidates = []
    for row, completions in zip(targets, outputs):
        for generated in completions:
            stats["total"] += 1
            if generated.truncated:
                _remove(stats, "truncated", f"hit max_new_tokens={config.max_new_tokens} before finishing")
                continue
            completion = reformat(generated.text, template, template)
            if completion is None:
                _remove(stats, "no_answer", f"no reasoning and answer in the {template.name} layout")
                continue
            candidates.append(Candidate(row, completion))
    return candidates


def check(config: ColdStartDataConfig) -> None:
    """The stage contract's check (commands.Command.check): the settings, the task and templates they name; reads
    no rows, no model, no input or output path."""
    check_declared(config)
    get_template(config.template)
    filter_settings(config.filters)
    get_task(config)
    if config.max_per_question is not None and config.max_per_question < 1:
        raise UserError(f"max_per_question must be at least 1 (or null), got {config.max_per_question}")
    if config.source == "zero":
        if not config.completions_file:
            raise UserError("source zero needs --completions_file PATH.jsonl (fields question, answer, completion)")
        if config.completions_template:
            get_template(config.completions_template)
    if config.source == "fewshot":
        check_backend(config.generation_backend, "generation_backend")
        if config.fewshot_examples < 0:
            raise UserError(f"fewshot_examples must be >= 0, got {config.fewshot_examples}")
        check_settings(config.num_samples, config.temperature, config.top_p, config.max_new_tokens, config.batch_size)


def validate(config: ColdStartDataConfig):
    """Everything that can be checked before data is read or a model is loaded: (template, filter settings)."""
    check(config)
    if config.source == "zero":
        assert config.completions_file is not None  # check(): source zero needs one
        if not os.path.isfile(config.completions_file):
            raise UserError(f"completions_file not found: {config.completions_file}")
    if config.source == "fewshot":
        resolve_model(config.model)
    check_dataset_output(config.output, config.overwrite)
    return get_template(config.template), filter_settings(config.filters)


def main(config: ColdStartDataConfig) -> dict[str, Any]:
    started = time.time()
    template, settings = validate(config)
    task = get_task(config)
    # max_tokens counts the model's tokens, as sft's and rejection-sampling's filters do (only the tokenizer loads)
    count_tokens = (
        token_counter(load_tokenizer(config.model, config.trust_remote_code)) if settings.max_tokens else None
    )
    if config.source == "solutions":
        samples, stats = samples_from_solutions(task, template, settings, count_tokens)
    else:
        stats = new_stats(config.source, task.name)
        build = zero_candidates if config.source == "zero" else fewshot_candidates
        candidates = build(config, task, template, stats)
        samples = verify_and_filter(candidates, task, template, settings, stats, config.max_per_question, count_tokens)
        raise_if_empty(stats)
    data_path, stats_path = output_paths(config.output)
    stats["seconds"] = round(time.time() - started, 1)
    stats["data_file"] = data_path
    stats["config"] = config_to_dict(config)
    # Data and stats written in full before either replaces an earlier dataset (a full disk fails before that).
    # The stage marker (a directory output) last: the earlier one goes before anything is replaced.
    files = [(data_path, jsonl_bytes(samples)), (stats_path, json_bytes(stats))]
    if not config.output.endswith(".jsonl"):
        figures = {"kept": stats["kept"], "total": stats["total"], "removed": stats["removed"]}
        marker = stage_marker("cold-start-data", stats["config"], started, figures)
        files.append((os.path.join(config.output, STAGE_MARKER), json_bytes(marker)))
    write_files_atomic(files)
    removed = ", ".join(f"{name} {count}" for name, count in stats["removed"].items() if count) or "nothing"
    logger.info("r1lab: kept %d of %d samples (removed: %s) → %s", stats["kept"], stats["total"], removed, data_path)
    return stats
