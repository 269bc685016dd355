"""The files r1lab writes into a run directory and reads back, each declared once here: its name, the record
it holds (a ``TypedDict``), its writer and its reader.

=====================  ===========================================  =====================  ==========================
file                   written by                                   record                 read by
=====================  ===========================================  =====================  ==========================
``samples.jsonl``      ``eval`` (with summary.json, atomically)     :class:`EvalRecord`    eval --compare, report,
                                                                                           pipeline significance
``summary.json``       ``eval``, last: its presence means done      :class:`EvalSummary`   eval --compare, report
``manifest.json``      ``pipeline``, rewritten atomically           :class:`Manifest`      pipeline --resume, status,
                                                                                           report
``metrics.jsonl``      training stages, one line per logged step    :class:`MetricsRecord` report, a resumed run
``completions.jsonl``  grpo, the completions behind a logged step   :class:`Completion`    report, a resumed run
``heldout.jsonl``      training stages with ``heldout_eval``        :class:`HeldoutRecord` report, a resumed run
=====================  ===========================================  =====================  ==========================

Reading validates every record against its declaration and reports the first problem in one line naming the
file, the line and the field (:class:`RunFileError`, a :class:`~r1lab.errors.UserError`), e.g.
``a/samples.jsonl: line 3: greedy: expected a checked completion or null, got "yes"``. Keys a record does not
declare are kept and not checked (a newer r1lab may add some).

One leniency, stated here and nowhere else: the logs a running training stage appends to (metrics,
completions, heldout) may end in a line cut off mid-write when they are read while it runs, or after a kill.
That last line, and only that one, is skipped when it is not valid JSON. Every other problem is an error.
"""

import json
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from r1lab.errors import UserError
from r1lab.outputs import json_bytes, jsonl_bytes, write_files_atomic, write_json_atomic, write_text_atomic

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict, get_type_hints
else:  # typing has NotRequired from 3.11 on; its TypedDict and get_type_hints must know it too
    from typing_extensions import NotRequired, TypedDict, get_type_hints

# ---------------------------------------------------------------------------------------------- records


class CheckedCompletion(TypedDict):
    """One completion of an eval with the task's verdict on it."""

    completion: str
    correct: bool
    extracted: NotRequired[str | None]
    formatted: NotRequired[bool]
    tokens: NotRequired[int]
    truncated: NotRequired[bool]
    tests: NotRequired[dict[str, Any]]  # task code: tests passed / total, status, detail, seconds
    judges: NotRequired[dict[str, float | None]]  # each judge's score (eval's judges); None: not scored


class Vote(TypedDict):
    answer: str | None
    votes: int
    correct: bool


class EvalRecord(TypedDict):
    """One question of an eval: its greedy completion (or null) and its k sampled ones."""

    question: str
    samples: list[CheckedCompletion]
    index: NotRequired[int]
    task_index: NotRequired[int]
    gold: NotRequired[Any]
    greedy: NotRequired[CheckedCompletion | None]
    pass_at_1: NotRequired[float]
    correct_samples: NotRequired[int]
    vote: NotRequired[Vote]


# The metrics `eval --compare` reports, in order: (key, label, higher is better). A summary holds at least one.
HEADLINE = (
    ("greedy_accuracy", "greedy accuracy", True),
    ("pass_at_1", "pass@1", True),
    ("cons_at_k", "cons@k", True),
    ("pass_at_k", "pass@k", True),
    ("format_rate", "format rate", True),
    ("greedy_format_rate", "greedy format rate", True),
    ("truncation_rate", "truncation rate", False),
    ("mean_tokens", "mean tokens", None),
    ("p90_tokens", "p90 tokens", None),
    ("tokens_per_second", "generated tokens/s", True),
)


class EvalSummary(TypedDict):
    """An eval's headline figures (at least one of :data:`HEADLINE`), speed and settings."""

    questions: NotRequired[int]
    k: NotRequired[int]
    model: NotRequired[str]
    task: NotRequired[str]
    split: NotRequired[str]
    greedy_accuracy: NotRequired[float | None]
    pass_at_1: NotRequired[float | None]
    cons_at_k: NotRequired[float | None]
    pass_at_k: NotRequired[float | None]
    pass_at: NotRequired[dict[str, float]]
    format_rate: NotRequired[float | None]
    greedy_format_rate: NotRequired[float | None]
    truncation_rate: NotRequired[float | None]
    mean_tokens: NotRequired[float | None]
    p90_tokens: NotRequired[float | None]
    tokens_per_second: NotRequired[float | None]
    judges: NotRequired[dict[str, dict[str, float | None]]]  # judge → {"greedy": mean, "sampled": mean}
    settings: NotRequired[dict[str, Any]]


StageStatus = Literal["pending", "running", "finished", "failed"]


class ManifestStage(TypedDict):
    """One stage of a pipeline run: where it writes, what it reads, how it went and its key figures."""

    name: str
    command: str
    status: StageStatus
    output: NotRequired[str]
    inputs: NotRequired[dict[str, str]]
    config: NotRequired[dict[str, Any]]
    figures: NotRequired[dict[str, Any]]
    error: NotRequired[str | None]
    traceback: NotRequired[str]
    seconds: NotRequired[float]
    started: NotRequired[str]
    ended: NotRequired[str]


class Manifest(TypedDict):
    """A pipeline run's table of stages."""

    name: str
    stages: list[ManifestStage]
    run_dir: NotRequired[str]
    created: NotRequired[str]
    updated: NotRequired[str]
    machine: NotRequired[dict[str, Any]]


class MetricsRecord(TypedDict):
    """One logged training step: the trainer's logs (any figures), the step and its mean seconds."""

    step: int
    epoch: NotRequired[float | None]
    step_seconds: NotRequired[float]


class Completion(TypedDict):
    """One GRPO completion behind a logged step, with each reward component and the weighted total."""

    step: int
    completion: str
    question: NotRequired[str | None]
    reward: NotRequired[float | None]
    rewards: NotRequired[dict[str, float | None]]


class HeldoutRecord(TypedDict):
    """A held-out eval during training: its step and headline figures."""

    step: int
    questions: int
    k: int
    greedy_accuracy: NotRequired[float | None]
    greedy_format_rate: NotRequired[float | None]
    pass_at_1: NotRequired[float | None]
    format_rate: NotRequired[float | None]
    pass_at_k: NotRequired[float | None]
    mean_tokens: NotRequired[float | None]
    truncation_rate: NotRequired[float | None]
    seconds: NotRequired[float]


@dataclass(frozen=True)
class RunFile:
    """A file of the run directory: its name, its record, and whether it holds one record per line (appended by
    a running stage when ``live``)."""

    name: str
    record: type
    lines: bool
    live: bool = False


SAMPLES = RunFile("samples.jsonl", EvalRecord, lines=True)
SUMMARY = RunFile("summary.json", EvalSummary, lines=False)
MANIFEST = RunFile("manifest.json", Manifest, lines=False)
METRICS = RunFile("metrics.jsonl", MetricsRecord, lines=True, live=True)
COMPLETIONS = RunFile("completions.jsonl", Completion, lines=True, live=True)
HELDOUT = RunFile("heldout.jsonl", HeldoutRecord, lines=True, live=True)
RUN_FILES = (SAMPLES, SUMMARY, MANIFEST, METRICS, COMPLETIONS, HELDOUT)

# ---------------------------------------------------------------------------------------------- validation


class RunFileError(UserError):
    """A run file that cannot be read or does not hold what its declaration says."""


class _Mismatch(Exception):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}" if field else problem)


def _is_record(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, dict) and hasattr(annotation, "__required_keys__")


def expected(annotation: Any) -> str:
    """What a declared type accepts, in words."""
    origin = get_origin(annotation)
    if annotation is Any:
        return "any value"
    if annotation is type(None):
        return "null"
    if annotation in (str, int, float, bool):
        return {str: "text", int: "an integer", float: "a number", bool: "true or false"}[annotation]
    if _is_record(annotation):
        return "a " + re.sub(r"(?<!^)(?=[A-Z])", " ", annotation.__name__).lower()
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(value) for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(expected(member) for member in get_args(annotation))
    if origin is list:
        return f"a list of {expected(get_args(annotation)[0])}"
    if origin is dict:
        return f"an object of {expected(get_args(annotation)[1])}"
    raise TypeError(f"run_files cannot check {annotation!r}")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _check(value: Any, annotation: Any, field: str) -> None:
    """Raise :class:`_Mismatch` naming the first place where ``value`` does not fit ``annotation``."""
    origin = get_origin(annotation)
    if annotation is Any:
        return
    if origin in (Union, types.UnionType):
        for member in get_args(annotation):
            try:
                _check(value, member, field)
                return
            except _Mismatch:
                continue
        if isinstance(value, dict) and any(_is_record(member) for member in get_args(annotation)):
            _check(value, next(member for member in get_args(annotation) if _is_record(member)), field)
        raise _Mismatch(field, f"expected {expected(annotation)}, got {_shown(value)}")
    if _is_record(annotation):
        if not isinstance(value, dict):
            raise _Mismatch(field, f"expected {expected(annotation)} (an object), got {_shown(value)}")
        hints = get_type_hints(annotation)
        for key in sorted(annotation.__required_keys__):
            if key not in value:
                raise _Mismatch(_join(field, key), f"missing ({expected(hints[key])} expected)")
        for key, hint in hints.items():
            if key in value:
                _check(value[key], hint, _join(field, key))
        return
    if origin is list:
        if not isinstance(value, list):
            raise _Mismatch(field, f"expected {expected(annotation)}, got {_shown(value)}")
        for position, item in enumerate(value):
            _check(item, get_args(annotation)[0], f"{field}[{position}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch(field, f"expected {expected(annotation)}, got {_shown(value)}")
        for key, item in value.items():
            _check(item, get_args(annotation)[1], _join(field, str(key)))
        return
    if origin is Literal:
        if value in get_args(annotation) and isinstance(value, str):
            return
    elif annotation is type(None):
        if value is None:
            return
    elif annotation is bool:
        if isinstance(value, bool):
            return
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return
    elif annotation is str:
        if isinstance(value, str):
            return
    else:
        raise TypeError(f"run_files cannot check {annotation!r}")
    raise _Mismatch(field, f"expected {expected(annotation)}, got {_shown(value)}")


def validate(value: Any, record: type, where: str) -> dict[str, Any]:
    """``value`` when it fits ``record``; else RunFileError ``where: field: expected …, got …``."""
    try:
        _check(value, record, "")
    except _Mismatch as mismatch:
        raise RunFileError(f"{where}: {mismatch}") from None
    return value


# ---------------------------------------------------------------------------------------------- reading


def _resolve(path: str, file: RunFile) -> str:
    """A file's path from the file itself or the directory holding it."""
    return os.path.join(path, file.name) if os.path.isdir(path) else path


def read_record(path: str, file: RunFile) -> dict[str, Any]:
    """The one record of a JSON file (``path``: the file or its directory), validated."""
    path = _resolve(path, file)
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise RunFileError(f"{file.name} not found: {path}") from None
    except json.JSONDecodeError as error:
        raise RunFileError(f"{path}: line {error.lineno}: not valid JSON ({error.msg})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunFileError(f"cannot read {path}: {error}") from None
    return validate(value, file.record, path)


def iter_records(path: str, file: RunFile) -> Iterator[dict[str, Any]]:
    """The validated records of a JSON-lines file, one per non-blank line (``path``: the file or its
    directory). A live log's last line is skipped when it is cut off (the module docstring's one leniency)."""
    path = _resolve(path, file)
    try:
        with open(path, encoding="utf-8") as handle:
            pending: tuple[int, str] | None = None
            for number, line in enumerate(handle, start=1):
                if pending is not None:
                    yield _parse_line(path, file, *pending)
                pending = (number, line) if line.strip() else None
            if pending is not None:
                number, line = pending
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    if file.live:
                        return  # cut off mid-write
                    raise RunFileError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
                yield validate(value, file.record, f"{path}: line {number}")
    except FileNotFoundError:
        raise RunFileError(f"{file.name} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunFileError(f"cannot read {path}: {error}") from None


def _parse_line(path: str, file: RunFile, number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise RunFileError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
    return validate(value, file.record, f"{path}: line {number}")


def read_records(path: str, file: RunFile) -> list[dict[str, Any]]:
    return list(iter_records(path, file))


def read_samples(path: str) -> list[EvalRecord]:
    """An eval's per-question records (``samples.jsonl`` or the directory holding it); at least one."""
    records = read_records(path, SAMPLES)
    if not records:
        raise RunFileError(f"{_resolve(path, SAMPLES)}: holds no questions")
    return records  # type: ignore[return-value]


def read_summary(path: str) -> EvalSummary:
    """An eval's ``summary.json`` (or the directory holding it), with at least one headline metric."""
    summary = read_record(path, SUMMARY)
    if not any(isinstance(summary.get(key), (int, float)) for key, _, _ in HEADLINE):
        raise RunFileError(f"{_resolve(path, SUMMARY)}: not an r1lab eval summary (no headline metric)")
    return summary  # type: ignore[return-value]


def read_manifest(run_dir: str) -> Manifest:
    """A pipeline run's ``manifest.json``; RunFileError when it is not there."""
    path = os.path.join(run_dir, MANIFEST.name)
    if not os.path.isfile(path):
        raise RunFileError(f"no {MANIFEST.name} in {run_dir}: not a pipeline run directory")
    return read_record(path, MANIFEST)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- writing


def _checked_rows(rows: list[dict[str, Any]], file: RunFile, path: str) -> list[dict[str, Any]]:
    """The writer's side of the declaration: what r1lab writes is what its reader accepts."""
    for number, row in enumerate(rows, start=1):
        validate(json.loads(json.dumps(row, default=float)), file.record, f"{path}: line {number} (being written)")
    return rows


def write_eval(output_dir: str, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """samples.jsonl and summary.json, both written in full before either replaces an earlier eval; the summary
    last: its presence means the eval finished."""
    samples_path, summary_path = os.path.join(output_dir, SAMPLES.name), os.path.join(output_dir, SUMMARY.name)
    _checked_rows(records, SAMPLES, samples_path)
    _checked_rows([summary], SUMMARY, summary_path)
    write_files_atomic([(samples_path, jsonl_bytes(records)), (summary_path, json_bytes(summary))])


def write_manifest(run_dir: str, manifest: dict[str, Any]) -> None:
    path = os.path.join(run_dir, MANIFEST.name)
    _checked_rows([manifest], MANIFEST, path)
    write_json_atomic(path, manifest)


def append_records(path: str, file: RunFile, rows: list[dict[str, Any]]) -> None:
    """Rows appended to a live log, each validated first (a value JSON cannot hold is written as a float)."""
    lines = [json.dumps(row, ensure_ascii=False, default=float) for row in rows]
    for line in lines:
        validate(json.loads(line), file.record, f"{path} (being appended)")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def keep_records_up_to(path: str, file: RunFile, step: int) -> list[dict[str, Any]]:
    """The records of a live log whose ``step`` is at most ``step``, the file rewritten (atomically) to hold only
    those: none for a fresh run (step 0), a resumed run's records up to its checkpoint. A line cut off by a kill
    is dropped wherever it is (the run that wrote it is gone); a line of the wrong shape is an error."""
    if not os.path.isfile(path):
        return []
    kept: list[dict[str, Any]] = []
    if step > 0:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                record = validate(value, file.record, f"{path}: line {number}")
                if record["step"] <= step:
                    kept.append(record)
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept))
    return kept
