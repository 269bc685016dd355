"""The run directory's files (r1lab.run_files): every declared field of every file, given a value of the wrong
shape, is refused in one line naming file, line and field — by the reader, and through every command that reads
that file (eval --compare, status, report, pipeline --resume) with exit 2, nothing written. What the writers write
is what the readers accept.

The wrong values are derived from the declarations, so a field added to a record is covered without a new case.
"""

from __future__ import annotations

import copy
import json
import os
import types
from typing import Any, Literal, Union, get_type_hints

import pytest

from r1lab import run_files
from r1lab.cli import main as cli_main
from r1lab.run_files import RUN_FILES, RunFileError

COMPLETION = {
    "completion": "<answer>4</answer>",
    "correct": True,
    "extracted": "4",
    "formatted": True,
    "tokens": 9,
    "truncated": False,
    "tests": {"passed": 1, "total": 1},
    "judges": {"helpfulness": 0.5},
}
# One valid record per file with every declared field set (test_every_declared_field_has_an_example checks it).
EXAMPLES: dict[str, dict[str, Any]] = {
    "samples.jsonl": {
        "question": "What is 2 + 2?",
        "samples": [dict(COMPLETION)],
        "index": 0,
        "task_index": 0,
        "gold": "4",
        "greedy": dict(COMPLETION),
        "pass_at_1": 1.0,
        "correct_samples": 1,
        "vote": {"answer": "4", "votes": 1, "correct": True},
    },
    "summary.json": {
        "questions": 1,
        "k": 1,
        "model": "m",
        "task": "gym:chain_sum",
        "split": "test",
        "greedy_accuracy": 1.0,
        "pass_at_1": 1.0,
        "cons_at_k": 1.0,
        "pass_at_k": 1.0,
        "pass_at": {"1": 1.0},
        "format_rate": 1.0,
        "greedy_format_rate": 1.0,
        "truncation_rate": 0.0,
        "mean_tokens": 9.0,
        "p90_tokens": 9.0,
        "tokens_per_second": 30.0,
        "judges": {"helpfulness": {"greedy": 0.5, "sampled": None}},
        "settings": {"k": 1},
    },
    "manifest.json": {
        "name": "run",
        "run_dir": "runs/x",
        "created": "2026-12-04T00:00:00",
        "updated": "2026-12-04T00:00:00",
        "machine": {"cpu": {}},
        "stages": [
            {
                "name": "eval",
                "command": "eval",
                "status": "finished",
                "output": "runs/x/01-eval",
                "inputs": {"model": "sft"},
                "config": {"k": 1},
                "figures": {"greedy_accuracy": 1.0},
                "error": None,
                "traceback": "",
                "seconds": 1.5,
                "started": "2026-12-04T00:00:00",
                "ended": "2026-12-04T00:00:01",
            }
        ],
    },
    "metrics.jsonl": {"step": 1, "epoch": 0.5, "step_seconds": 2.0, "loss": 0.1},
    "completions.jsonl": {"step": 1, "completion": "c", "question": "q", "reward": 0.5, "rewards": {"accuracy": 1.0}},
    "heldout.jsonl": {
        "step": 0,
        "questions": 1,
        "k": 1,
        "greedy_accuracy": 1.0,
        "greedy_format_rate": 1.0,
        "pass_at_1": 1.0,
        "format_rate": 1.0,
        "pass_at_k": 1.0,
        "mean_tokens": 9.0,
        "truncation_rate": 0.0,
        "seconds": 0.5,
    },
}
CANDIDATES = ("text", 2.5, 7, True, None, [1], {"x": 1})


def _natural(value, annotation) -> bool:
    """Whether ``value`` is what ``annotation`` means, judged on its own (not by run_files' checker, which these
    tests check): its wrong values come from here."""
    origin = getattr(annotation, "__origin__", None)
    if annotation is Any:
        return True
    if origin is Literal:
        return value in annotation.__args__
    if origin in (Union, types.UnionType) or isinstance(annotation, types.UnionType):
        return any(_natural(value, member) for member in annotation.__args__)
    if origin is list:
        return isinstance(value, list)
    if origin is dict or run_files._is_record(annotation):
        return isinstance(value, dict)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        str: isinstance(value, str),
        int: number and isinstance(value, int),
        float: number,
        bool: isinstance(value, bool),
        type(None): value is None,
    }[annotation]


def _name(path: tuple) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def _fields(record: type, path: tuple = (), example: Any = None):
    """(field as the reader names it, annotation, path into the example) for every declared field, nested records
    and lists of records included (through their first item)."""
    for key, annotation in get_type_hints(record).items():
        inner_path = (*path, key)
        yield _name(inner_path), annotation, inner_path
        value = example.get(key) if isinstance(example, dict) else None
        members = (annotation, *getattr(annotation, "__args__", ()))
        nested = next((member for member in members if run_files._is_record(member)), None)
        if getattr(annotation, "__origin__", None) is list and nested is not None:
            yield from _fields(nested, (*inner_path, 0), value[0] if value else None)
        elif nested is not None:
            yield from _fields(nested, inner_path, value)


def _cases():
    for file in RUN_FILES:
        for field, annotation, path in _fields(file.record, (), EXAMPLES[file.name]):
            for wrong in (value for value in CANDIDATES if not _natural(value, annotation)):
                yield pytest.param(file, field, path, wrong, id=f"{file.name}:{field}={json.dumps(wrong)}")


def _with(example: dict, path: tuple, value) -> dict:
    changed = copy.deepcopy(example)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _write(path: str, file, record) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        if file.lines:
            handle.write(json.dumps(EXAMPLES[file.name]) + "\n" + json.dumps(record) + "\n")
        else:
            json.dump(record, handle)


def _read(file, path: str):
    return run_files.read_records(path, file) if file.lines else run_files.read_record(path, file)


def test_every_declared_field_has_an_example():
    for file in RUN_FILES:
        declared = {field for field, _, _ in _fields(file.record, (), EXAMPLES[file.name])}
        shown = {
            field for field, _, path in _fields(file.record, (), EXAMPLES[file.name]) if _has(EXAMPLES[file.name], path)
        }
        assert declared == shown, f"{file.name}: no example value for {sorted(declared - shown)}"
        assert _read_back(file, EXAMPLES[file.name])


def _has(example, path) -> bool:
    for key in path:
        if (isinstance(example, list) and isinstance(key, int) and key < len(example)) or (
            isinstance(example, dict) and key in example
        ):
            example = example[key]
        else:
            return False
    return True


def _read_back(file, record) -> bool:
    run_files.validate(record, file.record, file.name)
    return True


@pytest.mark.parametrize("file, field, path, wrong", list(_cases()))
def test_a_field_of_the_wrong_shape_names_file_line_and_field(tmp_path, file, field, path, wrong):
    target = str(tmp_path / file.name)
    _write(target, file, _with(EXAMPLES[file.name], path, wrong))
    with pytest.raises(RunFileError) as caught:
        _read(file, target)
    where = f"{target}: line 2" if file.lines else target
    message = str(caught.value)
    assert message.startswith(f"{where}: {field}: expected ") and message.endswith(
        json.dumps(wrong)[:37] if len(json.dumps(wrong)) <= 40 else "..."
    )
    assert "\n" not in message


@pytest.mark.parametrize("file", RUN_FILES, ids=[file.name for file in RUN_FILES])
def test_a_missing_required_field_or_a_record_that_is_not_an_object(tmp_path, file):
    target = str(tmp_path / file.name)
    where = f"{target}: line 2" if file.lines else target
    for required in sorted(file.record.__required_keys__):
        record = {key: value for key, value in EXAMPLES[file.name].items() if key != required}
        _write(target, file, record)
        with pytest.raises(RunFileError, match=f"^{where}: {required}: missing"):
            _read(file, target)
    for value in ([1, 2], "text", 3, None):
        _write(target, file, value)
        with pytest.raises(RunFileError, match=f"^{where}: expected a .* \\(an object\\), got "):
            _read(file, target)


@pytest.mark.parametrize("file", RUN_FILES, ids=[file.name for file in RUN_FILES])
def test_only_a_live_logs_last_line_may_be_cut_off(tmp_path, file):
    target = tmp_path / file.name
    if not file.lines:
        target.write_text(json.dumps(EXAMPLES[file.name])[:-3], encoding="utf-8")
        with pytest.raises(RunFileError, match="not valid JSON"):
            _read(file, str(target))
        return
    whole = json.dumps(EXAMPLES[file.name]) + "\n"
    target.write_text(whole + whole[:20], encoding="utf-8")
    if file.live:
        assert _read(file, str(target)) == [EXAMPLES[file.name]]
    else:
        with pytest.raises(RunFileError, match=f"{target}: line 2: not valid JSON"):
            _read(file, str(target))
    target.write_text(whole + whole[:20] + "\n" + whole, encoding="utf-8")  # cut off in the middle: never a live run's
    with pytest.raises(RunFileError, match=f"{target}: line 2: not valid JSON"):
        _read(file, str(target))


def test_what_the_writers_write_the_readers_accept_and_a_bad_record_is_not_written(tmp_path):
    eval_dir = str(tmp_path / "eval")
    run_files.write_eval(eval_dir, [EXAMPLES["samples.jsonl"]], EXAMPLES["summary.json"])
    assert run_files.read_samples(eval_dir) == [EXAMPLES["samples.jsonl"]]
    assert run_files.read_summary(eval_dir) == EXAMPLES["summary.json"]
    run_files.write_manifest(str(tmp_path), EXAMPLES["manifest.json"])
    assert run_files.read_manifest(str(tmp_path)) == EXAMPLES["manifest.json"]
    for file in (run_files.METRICS, run_files.COMPLETIONS, run_files.HELDOUT):
        path = str(tmp_path / file.name)
        run_files.append_records(path, file, [EXAMPLES[file.name]])
        with pytest.raises(RunFileError, match="being appended"):
            run_files.append_records(path, file, [{**EXAMPLES[file.name], "step": "one"}])
        assert run_files.read_records(path, file) == [EXAMPLES[file.name]]
    before = sorted(os.listdir(eval_dir))
    with pytest.raises(RunFileError, match="being written"):
        run_files.write_eval(eval_dir, [{**EXAMPLES["samples.jsonl"], "greedy": "yes"}], EXAMPLES["summary.json"])
    assert sorted(os.listdir(eval_dir)) == before and run_files.read_samples(eval_dir) == [EXAMPLES["samples.jsonl"]]


# ---------------------------------------------------------------------------------------------- through the CLI


def _eval_dir(folder, record=None, summary=None) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "samples.jsonl"), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record if record is not None else EXAMPLES["samples.jsonl"]) + "\n")
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary if summary is not None else EXAMPLES["summary.json"], handle)
    return str(folder)


def _snapshot(root) -> dict[str, bytes]:
    return {
        os.path.join(folder, name): open(os.path.join(folder, name), "rb").read()
        for folder, _, names in os.walk(root)
        for name in names
    }


def _samples_cases():
    for field, annotation, path in _fields(run_files.EvalRecord, (), EXAMPLES["samples.jsonl"]):
        wrong = next((value for value in CANDIDATES if not _natural(value, annotation)), None)
        if annotation is not Any and wrong is not None:
            yield pytest.param(field, path, wrong, id=field)


@pytest.mark.parametrize("field, path, wrong", list(_samples_cases()))
def test_eval_compare_refuses_every_wrong_samples_field_in_one_line(tmp_path, capsys, field, path, wrong):
    good = _eval_dir(tmp_path / "a")
    bad = _eval_dir(tmp_path / "b", record=_with(EXAMPLES["samples.jsonl"], path, wrong))
    assert cli_main(["eval", "--compare", good, bad]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [error[0]] and error[0].startswith(f"r1lab: error: {bad}/samples.jsonl: line 1: {field}: expected ")


@pytest.mark.parametrize("key", ["greedy_accuracy", "questions", "k", "settings", "pass_at"])
def test_eval_compare_refuses_a_wrong_summary_field_in_one_line(tmp_path, capsys, key):
    good = _eval_dir(tmp_path / "a")
    bad = _eval_dir(tmp_path / "b", summary={**EXAMPLES["summary.json"], key: "text" if key != "settings" else [1]})
    assert cli_main(["eval", "--compare", good, bad]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"r1lab: error: {bad}/summary.json: {key}: expected {error[0].split(': expected ', 1)[1]}"]


@pytest.mark.parametrize(
    "manifest, problem",
    [
        ([1, 2], "expected a manifest (an object), got [1, 2]"),
        ({"name": "run", "stages": {"a": 1}}, 'stages: expected a list of a manifest stage, got {"a": 1}'),
        (
            {"name": "run", "stages": [{"name": "a", "command": "eval", "status": "done"}]},
            'stages[0].status: expected one of "pending", "running", "finished", "failed", got "done"',
        ),
        (
            {"name": "run", "stages": [{"name": "a", "command": "eval", "status": "finished", "figures": [1]}]},
            "stages[0].figures: expected an object of any value, got [1]",
        ),
        (
            {
                "name": "run",
                "stages": [{"name": "a", "command": "eval", "status": "finished", "inputs": {"model": ["x"]}}],
            },
            'stages[0].inputs.model: expected text, got ["x"]',
        ),
        ({"stages": []}, "name: missing (text expected)"),
    ],
)
@pytest.mark.parametrize("command", ["status", "report", "pipeline-resume"])
def test_commands_that_read_a_manifest_refuse_a_wrong_one_in_one_line(
    tmp_path, capsys, monkeypatch, manifest, problem, command
):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    recipe = tmp_path / "pipeline.yaml"
    recipe.write_text("name: run\nrun_dir: run\nstages:\n  - {name: a, command: report}\n", encoding="utf-8")
    before = _snapshot(tmp_path)
    argv = {
        "status": ["status", "run"],
        "report": ["report", "run"],
        "pipeline-resume": ["pipeline", "--config", str(recipe), "--resume", "true"],
    }[command]
    assert cli_main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"r1lab: error: {os.path.join('run', 'manifest.json')}: {problem}"]
    assert _snapshot(tmp_path) == before
