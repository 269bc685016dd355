"""``r1lab eval``: greedy accuracy, pass@1 averaged over k samples and cons@k, every sample kept.

    r1lab eval --model runs/x/grpo --task gsm8k --k 8 --limit 200
    r1lab eval --compare runs/a/summary.json runs/b/summary.json

``--compare`` also pairs the two evals question by question (:mod:`r1lab.significance`): greedy answers that
became right / wrong with an exact sign-test p-value, and a paired bootstrap interval for pass@1.

Writes ``samples.jsonl`` (one line per question: the greedy completion and the k sampled ones, each
with its extracted answer, correctness, token count and truncation flag, plus the vote) and, last,
``summary.json`` (headline metrics, speed, every setting and the library versions). Correctness comes
from the task's ``check`` only; the arithmetic lives in :mod:`r1lab.eval_metrics`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import r1lab
from r1lab.config import build_config, config_to_dict, setting
from r1lab.errors import UserError
from r1lab.eval_metrics import correct_samples, score_question, summarize
from r1lab.generation import (
    check_settings,
    generate,
    is_hf_model,
    load_generation_model,
    prompt_token_ids,
    repeat_completions,
)
from r1lab.models import ModelDtype, load_tokenizer, model_config_dict, resolve_model
from r1lab.outputs import check_output_dir
from r1lab.rewards import build_rewards
from r1lab.run_files import HEADLINE, SAMPLES, SUMMARY, read_summary, write_eval
from r1lab.significance import compare_evals, format_significance
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template
from r1lab.vllm_support import Backend, check_backend

logger = logging.getLogger("r1lab")

# Settings that make two summaries comparable; `--compare` names the ones that differ.
_COMPARABLE = (
    "task",
    "dataset",
    "split",
    "limit",
    "task_options",
    "template",
    "k",
    "temperature",
    "top_p",
    "max_new_tokens",
)


@dataclass
class EvalConfig(TaskSpec):
    """What to evaluate and how to sample (TaskSpec's task fields plus these)."""

    split: str = setting("test", "Which split's rows: train, validation or test.")
    model: str = setting("embedded", "The model: embedded (SmolLM2-135M-Instruct), a local directory or a hub id.")
    k: int = setting(1, "Samples per question for pass@1 and cons@k.", minimum=1)
    temperature: float = setting(
        0.6, "Of the k samples (R1 reports pass@1 at 0.6, top-p 0.95); 0 = greedy.", minimum=0.0
    )
    top_p: float = setting(
        0.95, "Nucleus sampling: the smallest set of tokens whose probability reaches top_p.", minimum=0.0, maximum=1.0
    )
    greedy: bool = setting(True, "Also run one greedy pass (greedy accuracy).")
    max_new_tokens: int = setting(256, "At most this many tokens per completion.", minimum=1)
    template: str = setting(
        "xml", "The output layout: xml (<reasoning>/<answer>, the seed's) or think (<think>...</think> answer)."
    )
    batch_size: int = setting(16, "Prompts decoded together.", minimum=1)
    output_dir: str = setting("runs/eval", "Where the outputs go.")
    seed: int = setting(0, "The seed of sampling (and of anything else drawn at random).", minimum=0)
    model_dtype: ModelDtype = setting(
        "auto", "The weights' dtype: auto = bfloat16 on a GPU, and on a CPU with bf16 units; else float32."
    )
    trust_remote_code: bool = setting(False, "Run code a model ships with it (off: such a model is refused).")
    overwrite: bool = setting(False, "Replace a finished output (its finish marker goes first).")
    backend: Backend = setting(
        "auto", "auto: vLLM where installed and a GPU is visible, else r1lab's decoding loop (hf)."
    )
    progress: bool = setting(True, "Progress bars with ETA on stderr.")
    judges: list[Any] = setting(
        default_factory=list,
        help="Rewards that score every completion, as GRPO's rewards list names them, e.g. "
        "[{name: helpfulness, model: embedded}, harmlessness]: their means go into the summary, and eval --compare "
        "pairs them (mean difference with a bootstrap interval, win rate with a sign test). For task: prompts.",
    )


@dataclass
class EvalQuestions:
    """The questions an eval asks: the task, the template, the rows, their prompts, and the judges (reward
    functions) that score each completion."""

    task: Any
    template: Any
    rows: list[dict[str, Any]]
    prompts: list[list[dict[str, str]]]
    judges: list[Any] = dataclasses.field(default_factory=list)


@dataclass
class EvalPlan:
    """Everything validated before the model is loaded."""

    config: EvalConfig
    questions: EvalQuestions
    model_path: str
    tokenizer: Any


def load_questions(config: EvalConfig) -> EvalQuestions:
    """The task's rows (UserError for a bad split, limit or file) and each row's prompt in the template."""
    template = get_template(config.template)
    task = get_task(config)
    rows = task.load()
    prompts = [task.prompt(row["question"], template) for row in rows]
    return EvalQuestions(task, template, rows, prompts, build_judges(config, task, template))


def build_judges(config: EvalConfig, task, template) -> list[Any]:
    """The ``judges`` as reward functions, built (names, options) as GRPO builds its rewards."""
    if not config.judges:
        return []
    if not isinstance(config.judges, list):
        raise UserError(f"judges must be a list of rewards, got {config.judges!r}")
    functions, _ = build_rewards(config.judges, {"task": task, "template": template.name})
    return functions


def score_with_judges(records: list[dict[str, Any]], questions: EvalQuestions) -> None:
    """Each judge's score on every completion (greedy and sampled) into the completion's ``judges``, the judge
    called as GRPO calls a reward (prompts, completions, the rows' columns); a completion repeated within a
    question (greedy copies at temperature 0) is scored once."""
    if not questions.judges:
        return
    placed: list[tuple[dict[str, Any], int]] = []
    distinct: dict[tuple[int, str], int] = {}
    prompts: list[list[dict[str, str]]] = []
    texts: list[str] = []
    rows: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        for completion in [record.get("greedy"), *record["samples"]]:
            if completion is None:
                continue
            key = (index, completion["completion"])
            if key not in distinct:
                distinct[key] = len(texts)
                prompts.append(questions.prompts[index])
                texts.append(completion["completion"])
                rows.append(questions.rows[index])
            placed.append((completion, distinct[key]))
    names = sorted({key for row in rows for key in row} - {"question"})
    columns = {name: [row.get(name) for row in rows] for name in names}
    for judge in questions.judges:
        scores = judge(prompts=prompts, completions=texts, **columns)
        for completion, position in placed:
            value = scores[position]
            completion.setdefault("judges", {})[judge.__name__] = None if value is None else float(value)


def check_eval_settings(config: EvalConfig) -> None:
    """The sampling settings' ranges and the backend's name (also a training stage's ``final_eval``, up front)."""
    if config.k < 1:
        raise UserError(f"k must be at least 1, got {config.k}")
    check_settings(config.k, config.temperature, config.top_p, config.max_new_tokens, config.batch_size)
    check_backend(config.backend)


def check(config: EvalConfig) -> None:
    """The stage contract's check (commands.Command.check): the sampling settings, the task, template and judges
    they name; reads no rows, no model, no output path."""
    check_eval_settings(config)
    template = get_template(config.template)
    build_judges(config, get_task(config), template)


def plan(config: EvalConfig) -> EvalPlan:
    """Check every setting, load the rows and the tokenizer; raises UserError and writes nothing."""
    check(config)
    if not config.output_dir:
        raise UserError("output_dir must be set")
    if os.path.exists(os.path.join(config.output_dir, SUMMARY.name)) and not config.overwrite:
        raise UserError(f"{config.output_dir} already holds an eval summary; pass --overwrite true to replace it")
    check_output_dir(config.output_dir, overwrite=True)
    questions = load_questions(config)
    model_path = resolve_model(config.model)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    context = (model_config_dict(model_path) or {}).get("max_position_embeddings")
    if context:
        longest = max(len(ids) for ids in prompt_token_ids(tokenizer, questions.prompts))
        if longest + config.max_new_tokens > context:
            raise UserError(
                f"the longest prompt ({longest} tokens) + max_new_tokens ({config.max_new_tokens}) exceeds "
                f"the model's context of {context} tokens"
            )
    return EvalPlan(config, questions, model_path, tokenizer)


def checked(completion, row: dict[str, Any], task, template, verdict=None) -> dict[str, Any]:
    """One completion with the task's verdict on it (``verdict``: already computed)."""
    verdict = verdict if verdict is not None else task.check(completion.text, row, template)
    record = {
        "completion": completion.text,
        "extracted": verdict.extracted,
        "correct": bool(verdict.correct),
        "formatted": bool(verdict.formatted),
        "tokens": completion.tokens,
        "truncated": completion.truncated,
    }
    if getattr(verdict, "report", None):  # task code: tests passed / total, status, detail, seconds
        record["tests"] = verdict.report
    return record


def check_outputs(rows, outputs, task, template) -> list[list[Any]]:
    """The task's verdict on every completion, per question; a task with ``check_batch`` checks them all at once."""
    batch = getattr(task, "check_batch", None)
    if batch is None:
        return [
            [task.check(completion.text, row, template) for completion in completions]
            for row, completions in zip(rows, outputs)
        ]
    flat_rows = [row for row, completions in zip(rows, outputs) for _ in completions]
    flat = batch([completion.text for completions in outputs for completion in completions], flat_rows, template)
    verdicts, position = [], 0
    for completions in outputs:
        verdicts.append(flat[position : position + len(completions)])
        position += len(completions)
    return verdicts


def build_records(rows, greedy_outputs, sampled_outputs, task, template) -> list[dict[str, Any]]:
    """Per-question records for samples.jsonl: question, gold, greedy and sampled completions, the vote."""
    sampled_verdicts = check_outputs(rows, sampled_outputs, task, template)
    greedy_verdicts = check_outputs(rows, greedy_outputs, task, template) if greedy_outputs is not None else None
    records = []
    for index, row in enumerate(rows):
        samples = [
            checked(completion, row, task, template, verdict)
            for completion, verdict in zip(sampled_outputs[index], sampled_verdicts[index])
        ]
        greedy = (
            checked(greedy_outputs[index][0], row, task, template, greedy_verdicts[index][0])
            if greedy_outputs is not None and greedy_verdicts is not None  # both or neither
            else None
        )
        score = score_question(samples)
        records.append(
            {
                "index": index,
                "task_index": row.get("task_index", index),
                "question": row["question"],
                "gold": row["answer"],
                "greedy": greedy,
                "samples": samples,
                "pass_at_1": score["pass_at_1"],
                "correct_samples": correct_samples({"samples": samples}),
                "vote": score["vote"],
            }
        )
    return records


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "r1lab": r1lab.__version__}
    for package in ("torch", "transformers", "trl", "math-verify", "reasoning-gym", "vllm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def command_line(config: EvalConfig) -> str:
    """``r1lab eval`` with every setting that differs from the defaults: the run, reproducible."""
    defaults = EvalConfig()
    parts = ["r1lab eval"]
    for field in dataclasses.fields(EvalConfig):
        value = getattr(config, field.name)
        if field.name in ("overwrite", "progress") or value == getattr(defaults, field.name):
            continue
        if isinstance(value, (dict, list)):
            text = json.dumps(value)
        elif value is None:
            text = "null"
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        quoted = (
            text
            if text and all(char.isalnum() or char in "-_./:=@+," for char in text)
            else "'" + text.replace("'", "'\\''") + "'"
        )
        parts.append(f"--{field.name} {quoted}")
    return " ".join(parts)


def _timed_generate(
    model, tokenizer, questions: EvalQuestions, config: EvalConfig, progress: bool, **settings
) -> tuple[list, dict[str, float]]:
    started = time.perf_counter()
    outputs = generate(
        model,
        tokenizer,
        questions.prompts,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        seed=config.seed,
        stop_strings=questions.template.stop_string,
        progress=progress,
        **settings,
    )
    seconds = time.perf_counter() - started
    tokens = sum(completion.tokens for completions in outputs for completion in completions)
    return outputs, {
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / max(seconds, 1e-9), 2),
    }


def evaluate_questions(
    model, tokenizer, questions: EvalQuestions, config: EvalConfig, progress: bool
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The evaluation core (``r1lab eval``, a training stage's held-out eval and its final eval): the greedy pass
    when ``config.greedy``, k samples per question, the task's verdict on each → (per-question records, the
    passes' tokens and seconds). At temperature 0 the k samples are the greedy completion (generated once)."""
    passes: dict[str, dict[str, float]] = {}
    greedy_outputs = None
    if config.greedy:
        greedy_outputs, passes["greedy"] = _timed_generate(
            model, tokenizer, questions, config, progress, n=1, temperature=0.0, description="greedy"
        )
    if config.temperature == 0 and greedy_outputs is not None:
        sampled_outputs = repeat_completions(greedy_outputs, config.k)
    else:
        sampled_outputs, passes["sampled"] = _timed_generate(
            model,
            tokenizer,
            questions,
            config,
            progress,
            n=config.k,
            temperature=config.temperature,
            top_p=config.top_p,
            description=f"sampling k={config.k}",
        )
    records = build_records(questions.rows, greedy_outputs, sampled_outputs, questions.task, questions.template)
    score_with_judges(records, questions)
    return records, passes


def main(config: EvalConfig) -> dict[str, Any]:
    started = time.time()
    prepared = plan(config)
    model = load_generation_model(
        config.model, config.model_dtype, config.trust_remote_code, config.seed, config.backend
    )
    records, passes = evaluate_questions(model, prepared.tokenizer, prepared.questions, config, config.progress)
    generated = sum(item["tokens"] for item in passes.values())
    seconds = sum(item["seconds"] for item in passes.values())
    summary: dict[str, Any] = {
        "model": config.model,
        "model_path": prepared.model_path,
        "task": prepared.questions.task.name,
        "split": config.split,
        "template": config.template,
        **summarize(records, prepared.questions.task.has_gold),
        "temperature": config.temperature,
        "top_p": config.top_p,
        "generated_tokens": generated,
        "generation_seconds": round(seconds, 3),
        "tokens_per_second": round(generated / seconds, 2) if seconds > 0 else None,
        "passes": passes,
        "backend": "hf" if is_hf_model(model) else "vllm",
        "device": _device_name(model),
        "peak_gpu_allocated_mb": _peak_gpu_mb(model),
        "wall_seconds": round(time.time() - started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": command_line(config),
        "settings": config_to_dict(config),
        "versions": library_versions(),
    }
    write_eval(config.output_dir, records, summary)
    print(format_summary(summary, config.output_dir))
    return summary


def _peak_gpu_mb(model) -> float | None:
    """Peak GPU memory torch allocated in this process (the HF backend on a GPU), else None."""
    device = getattr(model, "device", None) if is_hf_model(model) else None
    if device is None or device.type != "cuda":
        return None
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def _device_name(model) -> str:
    try:
        import torch

        device = getattr(model, "device", None)
        if device is not None and device.type == "cuda":
            return torch.cuda.get_device_name(device)
        return str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    except Exception:
        return "unknown"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_summary(summary: dict[str, Any], output_dir: str | None = None) -> str:
    """The headline metrics as a small table."""
    questions, k = summary["questions"], summary["k"]
    rows = [
        ("greedy accuracy", _rate(summary.get("greedy_accuracy"))),
        (f"pass@1 (k={k}, T={summary['temperature']}, top-p={summary['top_p']})", _rate(summary["pass_at_1"])),
        (f"cons@{k}", _rate(summary["cons_at_k"])),
        (f"pass@{k}", _rate(summary["pass_at_k"])),
        *[
            (f"pass@{at} (unbiased, of {k})", _rate(value))
            for at, value in (summary.get("pass_at") or {}).items()
            if at not in ("1", str(k))
        ],
        (
            "format rate (greedy / sampled)",
            f"{_rate(summary.get('greedy_format_rate'))} / {_rate(summary['format_rate'])}",
        ),
        ("mean / p90 tokens", f"{summary['mean_tokens']:.1f} / {summary['p90_tokens']}"),
        ("truncation rate", _rate(summary["truncation_rate"])),
        *[
            (f"judge {name} (greedy / sampled)", f"{_rate(means.get('greedy'))} / {_rate(means.get('sampled'))}")
            for name, means in (summary.get("judges") or {}).items()
        ],
        ("generated tokens/s", f"{summary['tokens_per_second']}"),
        ("wall time", f"{summary['wall_seconds']} s"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"r1lab eval: {summary['task']} [{summary['split']}] {questions} questions, model {summary['model']}"]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    if output_dir:
        lines.append(f"  wrote {os.path.join(output_dir, SAMPLES.name)} and {SUMMARY.name}")
    return "\n".join(lines)


def run_eval(model_path: str, task_spec: TaskSpec, template, **settings) -> dict[str, Any]:
    """Evaluate a trained model on a task: the hook for stages (e.g. at the end of GRPO).

    Takes the task's identity (task, dataset, task_size, task_seed, task_options) from ``task_spec`` but
    not its split and limit: those are eval settings (``split`` defaults to ``test``; pass ``limit``).
    ``template`` is a name or a Template. ``settings`` are any other EvalConfig fields; ``output_dir``
    defaults to ``<model_path>/eval`` for a local model, and ``overwrite`` to true. Returns the summary.
    """
    values: dict[str, Any] = {
        name: getattr(task_spec, name) for name in ("task", "dataset", "task_size", "task_seed", "task_options")
    }
    values["model"] = model_path
    values["template"] = template if isinstance(template, str) else template.name
    if os.path.isdir(os.path.expanduser(model_path)):
        values["output_dir"] = os.path.join(model_path, "eval")
    values["overwrite"] = True
    values.update(settings)
    return main(build_config(EvalConfig, values, source="run_eval"))


def compare_summaries(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, Any, Any, float | None]]:
    """(label, before, after, after - before) for each headline metric present in either summary."""
    rows = []
    for key, label, _ in HEADLINE:
        if key not in before and key not in after:
            continue
        old, new = before.get(key), after.get(key)
        delta = (new - old) if isinstance(old, (int, float)) and isinstance(new, (int, float)) else None
        if key == "cons_at_k":
            label = (
                f"cons@{before.get('k', '?')} / cons@{after.get('k', '?')}"
                if before.get("k") != after.get("k")
                else f"cons@{before.get('k', 'k')}"
            )
        if key == "pass_at_k":
            label = (
                f"pass@{before.get('k', '?')} / pass@{after.get('k', '?')}"
                if before.get("k") != after.get("k")
                else f"pass@{before.get('k', 'k')}"
            )
        rows.append((label, old, new, delta))
    return rows


def different_settings(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    old, new = before.get("settings") or {}, after.get("settings") or {}
    return [f"{key}: {old.get(key)!r} vs {new.get(key)!r}" for key in _COMPARABLE if old.get(key) != new.get(key)]


def format_comparison(path_a: str, path_b: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    def show(value):
        if value is None:
            return "-"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    rows = compare_summaries(before, after)
    width = max([len(label) for label, *_ in rows] + [6])
    lines = [f"A: {path_a} ({before.get('model', '?')})", f"B: {path_b} ({after.get('model', '?')})", ""]
    lines.append(f"  {'metric':<{width}}  {'A':>10}  {'B':>10}  {'B - A':>10}")
    for label, old, new, delta in rows:
        lines.append(
            f"  {label:<{width}}  {show(old):>10}  {show(new):>10}  {'-' if delta is None else f'{delta:+.4f}':>10}"
        )
    differences = different_settings(before, after)
    if differences:
        lines.append("\nnote: the runs differ in " + "; ".join(differences))
    return "\n".join(lines)


def compare_command(arguments: list[str]) -> int:
    """``r1lab eval --compare A B``: print the deltas of the headline metrics (B minus A)."""
    if arguments and arguments[0].startswith("--compare="):
        arguments = ["--compare", *arguments[0].split("=", 1)[1].split(","), *arguments[1:]]
    if len(arguments) != 3 or arguments[0] != "--compare" or any(item.startswith("--") for item in arguments[1:]):
        raise UserError("usage: r1lab eval --compare A/summary.json B/summary.json (nothing else)")
    before, after = read_summary(arguments[1]), read_summary(arguments[2])
    significance = comparison_significance(arguments[1], arguments[2])  # refuses different questions before printing
    print(format_comparison(arguments[1], arguments[2], before, after))
    print("\n" + "\n".join(significance))
    return 0


def comparison_significance(path_a: str, path_b: str) -> list[str]:
    """The paired significance lines of B against A from the ``samples.jsonl`` beside each summary
    (:mod:`r1lab.significance`); UserError when the evals' question sets differ."""
    folders = [path if os.path.isdir(path) else os.path.dirname(path) or "." for path in (path_a, path_b)]
    missing = [
        os.path.join(folder, SAMPLES.name)
        for folder in folders
        if not os.path.isfile(os.path.join(folder, SAMPLES.name))
    ]
    if missing:
        return [f"significance: not computed, no {' or '.join(missing)} (the per-question results it pairs)"]
    result = compare_evals(*folders)
    return [
        f"significance (B against A, paired over the same {result.questions} questions):",
        *format_significance(result),
    ]
