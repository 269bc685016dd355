"""The report's reading and analysis: a run's (or one stage's) files read through :mod:`r1lab.run_files`, the
stages of its manifest, the reflection-word rate of completions and evals, and what each training stage and eval
contributes to the page. Nothing here draws or writes; :mod:`r1lab.report_plots` draws, :mod:`r1lab.report` renders.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from r1lab.run_files import (
    COMPLETIONS,
    HELDOUT,
    MANIFEST,
    METRICS,
    SAMPLES,
    SUMMARY,
    Manifest,
    RunFileError,
    iter_records,
    read_manifest,
    read_records,
    read_summary,
)

FINAL_EVAL_DIR = "eval"  # a training stage's ``final_eval`` lands in output_dir/eval


EVAL_DIR_KEY = "_eval_dir"  # set on an eval row's summary when its samples.jsonl is there (for the significance table)


# Words and phrases that mark a model re-examining its own reasoning (R1's "aha moment").
DEFAULT_REFLECTION_WORDS = (
    "wait",
    "let me check",
    "re-check",
    "recheck",
    "double-check",
    "verify",
    "等等",
    "重新",
    "检查",
)


def finite_number(value: Any) -> float | None:
    """A finite int or float as float; anything else (None, bool, text, NaN, inf) is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_metrics(path: str) -> list[dict[str, Any]]:
    """metrics.jsonl's step records (the trainer's final summary line left out)."""
    return [record for record in read_records(path, METRICS) if "train_runtime" not in record]


def iter_completions(path: str) -> Iterator[dict[str, Any]]:
    """completions.jsonl records as ``{"step": int, "completion": str, "reward": float | None, "question": str | None}``
    (a reward that is not a finite number is None)."""
    for record in iter_records(path, COMPLETIONS):
        yield {
            "step": record["step"],
            "completion": record["completion"],
            "reward": finite_number(record.get("reward")),
            "question": record.get("question"),
        }


def read_completions(path: str) -> list[dict[str, Any]]:
    return list(iter_completions(path))


_LATIN_WORD_CHAR = r"0-9A-Za-z_\u00C0-\u024F"


@lru_cache(maxsize=64)
def reflection_pattern(words: tuple[str, ...]) -> re.Pattern | None:
    """One case-insensitive regex for all words: whitespace inside a phrase matches any whitespace; a word
    that starts (ends) with a Latin letter or digit must not be preceded (followed) by one. CJK words match
    anywhere, as CJK text has no spaces between words."""
    parts = []
    for word in sorted({w.strip() for w in words if isinstance(w, str) and w.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(piece) for piece in word.split())
        before = f"(?<![{_LATIN_WORD_CHAR}])" if re.match(f"[{_LATIN_WORD_CHAR}]", word[0]) else ""
        after = f"(?![{_LATIN_WORD_CHAR}])" if re.match(f"[{_LATIN_WORD_CHAR}]", word[-1]) else ""
        parts.append(before + body + after)
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def has_reflection(text: str | None, words: Iterable[str]) -> bool:
    pattern = reflection_pattern(tuple(words))
    return bool(pattern and text and pattern.search(text))


def reflection_rate(texts: Iterable[str | None], words: Iterable[str]) -> float:
    """The fraction of ``texts`` that contain at least one of ``words`` (0.0 for no texts)."""
    pattern = reflection_pattern(tuple(words))
    total = hits = 0
    for text in texts:
        total += 1
        if pattern is not None and isinstance(text, str) and pattern.search(text):
            hits += 1
    return hits / total if total else 0.0


@dataclass
class CompletionsSummary:
    steps: list[int]  # every logged step, ascending
    counts: list[int]  # completions per step
    rates: list[float]  # reflection-word rate per step
    first_reflections: list[dict[str, Any]]  # the first completions (file order) with a reflection word
    phases: list[tuple[str, int, list[dict[str, Any]]]]  # (early/middle/late, step, completions shown)
    total: int


def _spread(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` records spread over the reward ranking, best first (best and worst for two)."""
    ranked = sorted(records, key=lambda r: (r["reward"] is None, -(r["reward"] or 0.0)))
    if count <= 0 or not ranked:
        return []
    if count >= len(ranked):
        return ranked
    if count == 1:
        return ranked[:1]
    indices = sorted({round(i * (len(ranked) - 1) / (count - 1)) for i in range(count)})
    return [ranked[i] for i in indices]


def summarize_completions(
    path: str, words: Iterable[str], examples: int = 3, per_phase: int = 2
) -> CompletionsSummary | None:
    """Reflection-word rate per step, the first reflective completions and a few completions per phase;
    None when the file holds no usable record. Two streaming passes: the file can be large."""
    words = tuple(words)
    per_step: dict[int, list[int]] = {}
    firsts: list[dict[str, Any]] = []
    for record in iter_completions(path):
        counts = per_step.setdefault(record["step"], [0, 0])
        counts[0] += 1
        if has_reflection(record["completion"], words):
            counts[1] += 1
            if len(firsts) < examples:
                firsts.append(record)
    if not per_step:
        return None
    steps = sorted(per_step)
    chosen = {"early": steps[0], "middle": steps[(len(steps) - 1) // 2], "late": steps[-1]}
    if chosen["late"] == chosen["early"]:
        del chosen["late"]
    if chosen["middle"] in (chosen["early"], chosen.get("late")):
        del chosen["middle"]
    wanted = set(chosen.values())
    by_step: dict[int, list[dict[str, Any]]] = {step: [] for step in wanted}
    if per_phase > 0:
        for record in iter_completions(path):
            if record["step"] in wanted:
                by_step[record["step"]].append(record)
    phases = [(name, step, _spread(by_step[step], per_phase)) for name, step in chosen.items()]
    return CompletionsSummary(
        steps=steps,
        counts=[per_step[s][0] for s in steps],
        rates=[per_step[s][1] / per_step[s][0] for s in steps],
        first_reflections=firsts,
        phases=phases,
        total=sum(per_step[s][0] for s in steps),
    )


def eval_reflection_rate(samples_path: str, words: Iterable[str]) -> float | None:
    """Reflection-word rate over every completion (greedy and sampled) in an eval's samples.jsonl."""
    words = tuple(words)
    total = hits = 0
    for record in iter_records(samples_path, SAMPLES):
        for item in [record.get("greedy"), *record["samples"]]:
            if item is not None:
                total += 1
                hits += has_reflection(item["completion"], words)
    return hits / total if total else None


def _stage_dir(run_dir: str, output: Any, index: int, name: str) -> str:
    """A stage's directory: the manifest's path, else the same ``NN-name`` under ``run_dir`` (a run moved,
    or a relative path recorded from another working directory)."""
    candidates = []
    if isinstance(output, str) and output:
        candidates += [output, os.path.join(run_dir, os.path.basename(os.path.normpath(output)))]
    candidates.append(os.path.join(run_dir, f"{index + 1:02d}-{name}"))
    return next((path for path in candidates if os.path.isdir(path)), candidates[0])


def _stages(run_dir: str) -> tuple[list[dict[str, Any]], Manifest | None]:
    """Each stage's name, command, status, inputs, error and directory: the manifest's, or the directory
    itself as one stage. Report stages are left out (this is their output)."""
    if not os.path.isfile(os.path.join(run_dir, MANIFEST.name)):
        name = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
        return [
            {"name": name, "command": "", "dir": run_dir, "status": "", "inputs": {}, "error": None, "seconds": None}
        ], None
    manifest = read_manifest(run_dir)
    stages = []
    for index, entry in enumerate(manifest["stages"]):
        if entry["command"] == "report":
            continue
        stages.append(
            {
                "name": entry["name"],
                "command": entry["command"],
                "dir": _stage_dir(run_dir, entry.get("output"), index, entry["name"]),
                "status": entry["status"],
                "inputs": entry.get("inputs", {}),
                "error": entry.get("error"),
                "seconds": finite_number(entry.get("seconds")),
            }
        )
    return stages, manifest


def with_heldout_start(records: list[dict[str, Any]], stage_dir: str) -> list[dict[str, Any]]:
    """The metrics records with the held-out eval before the first step (``heldout.jsonl``'s step 0) put first,
    so that the held-out curve starts where training started; the later points are in the metrics already."""
    path = os.path.join(stage_dir, HELDOUT.name)
    if not os.path.isfile(path):
        return records
    start = [
        {
            "step": 0,
            **{
                f"heldout/{key}": value
                for key, value in record.items()
                if key not in ("step", "questions", "k", "seconds")
            },
        }
        for record in read_records(path, HELDOUT)
        if record["step"] == 0
    ]
    return start[:1] + records


def left_out(notes: list[str], label: str, what: str, read: Callable[..., Any], *args: Any) -> Any:
    """``read(*args)``, or None with a note when a file of the stage does not hold what r1lab declares for it
    (:mod:`r1lab.run_files`): the report shows what it can of a run, the note names file, line and field."""
    try:
        return read(*args)
    except RunFileError as error:
        notes.append(f"{label}: {what} left out: {error}")
        return None


def collect(run_dir: str, words: tuple[str, ...], reflection_examples: int, samples_per_phase: int):
    """Read every stage (no writing): the stages, the manifest, notes, training data and eval rows."""
    stages, manifest = _stages(run_dir)
    notes: list[str] = []
    training, eval_rows = [], []
    omitted = "reflection-word rate and sample completions omitted"
    for stage in stages:
        name, folder = stage["name"], stage["dir"]
        metrics_path = os.path.join(folder, METRICS.name)
        records: list[dict[str, Any]] = []
        if os.path.isfile(metrics_path):
            logged = left_out(notes, name, "training curves", read_metrics, metrics_path)
            if logged == []:
                notes.append(f"{name}: {METRICS.name} holds no step records")
            elif logged:
                records = left_out(notes, name, "held-out start", with_heldout_start, logged, folder) or logged
        completions_path = os.path.join(folder, COMPLETIONS.name)
        completions = None
        if os.path.isfile(completions_path):
            noted = len(notes)
            completions = left_out(
                notes,
                name,
                "completions",
                summarize_completions,
                completions_path,
                words,
                reflection_examples,
                samples_per_phase,
            )
            if completions is None and len(notes) == noted:
                notes.append(f"{name}: {COMPLETIONS.name} holds no completions; {omitted}")
        elif stage["command"] == "grpo" or any("reward" in record for record in records):
            notes.append(f"{name}: no {COMPLETIONS.name}; {omitted}")
        if records or completions:
            training.append((stage, records, completions))
        model = str(stage["inputs"].get("model", ""))
        for eval_dir, label in ((folder, name), (os.path.join(folder, FINAL_EVAL_DIR), f"{name} (final eval)")):
            if not os.path.isfile(os.path.join(eval_dir, SUMMARY.name)):
                continue
            summary = left_out(notes, label, "eval", read_summary, eval_dir)
            if summary is None:
                continue
            if os.path.isfile(os.path.join(eval_dir, SAMPLES.name)):
                rate = left_out(
                    notes,
                    label,
                    "reflection-word rate",
                    eval_reflection_rate,
                    os.path.join(eval_dir, SAMPLES.name),
                    words,
                )
                summary = {**summary, "reflection_rate": rate, EVAL_DIR_KEY: eval_dir}
            eval_rows.append((label, model if eval_dir == folder else name, stage["status"], summary))
    return stages, manifest, notes, training, eval_rows
