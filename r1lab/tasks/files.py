"""Reading rows from local files and the hub, with errors that name the file and line."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

from r1lab import hub
from r1lab.errors import UserError

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


def read_jsonl(path: str) -> list[dict[str, Any]]:
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise UserError(f"{path}:{line_number}: malformed JSON line ({error.msg})") from None
                if not isinstance(row, dict):
                    raise UserError(f"{path}:{line_number}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
    except OSError as error:
        raise UserError(f"cannot read dataset file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise UserError(f"cannot read dataset file {path}: not UTF-8 text") from None
    return rows


def read_parquet(paths: list[str]) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = []
        for path in paths:
            rows.extend(pq.read_table(path).to_pylist())
        return rows
    except OSError as error:
        raise UserError(f"cannot read parquet dataset {paths[0]}: {error}") from None
    except Exception as error:  # pyarrow raises its own types for corrupt files
        raise UserError(f"cannot read parquet dataset {paths[0]}: {str(error).splitlines()[0]}") from None


def read_local_rows(path: str, split: str) -> list[dict[str, Any]]:
    """Rows from a file, or from ``{split}.jsonl`` / ``{split}-*.parquet`` (also under ``main/``) in a directory."""
    if os.path.isfile(path):
        if path.endswith(".parquet"):
            return read_parquet([path])
        return read_jsonl(path)
    if not os.path.isdir(path):
        raise UserError(f"dataset not found: {path}")
    for folder in (path, os.path.join(path, "main")):
        for pattern in (f"{split}.jsonl", f"{split}.json"):
            candidate = os.path.join(folder, pattern)
            if os.path.isfile(candidate):
                return read_jsonl(candidate)
        parquet = sorted(
            glob.glob(os.path.join(folder, f"{split}-*.parquet")) + glob.glob(os.path.join(folder, f"{split}.parquet"))
        )
        if parquet:
            return read_parquet(parquet)
    raise UserError(f"no {split!r} split in {path} (looked for {split}.jsonl and {split}-*.parquet)")


def looks_local(dataset: str) -> bool:
    """A path the user means as local: it exists, or it is written like a path or a data file."""
    return (
        os.path.exists(dataset)
        or dataset.startswith((".", "/", "~"))
        or dataset.endswith(DATA_SUFFIXES)
        or dataset.count("/") > 1
    )


def read_hub_rows(dataset_id: str, config_name: str | None, split: str) -> list[dict[str, Any]]:
    if not hub.offline_mode():  # offline, datasets reads its cache without the network
        hub.require_hub(f"dataset {dataset_id!r}")
    try:
        import datasets

        loaded = datasets.load_dataset(dataset_id, config_name, split=split)
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(
            f"cannot load dataset {dataset_id!r} split {split!r} from the hub: {first_line} "
            "(offline? pass a local path with --dataset)"
        ) from None
    return [dict(row) for row in loaded]


def require_columns(rows: list[dict[str, Any]], columns: tuple[str, ...], source: str) -> None:
    if not rows:
        raise UserError(f"dataset {source} is empty")
    for index, row in enumerate(rows):
        missing = [column for column in columns if column not in row or row[column] is None]
        if missing:
            raise UserError(
                f"dataset {source} row {index + 1} lacks column(s) {', '.join(missing)} "
                f"(has: {', '.join(sorted(row)) or 'nothing'})"
            )


def read_prompt_rows(
    source: str, split: str, question_key: str | None = None, hub_config: str | None = None
) -> list[dict[str, Any]]:
    """General prompts without a gold answer (R1's stage-4 data, or an eval's general prompts): rows
    ``{"question": prompt, "answer": ""}`` from a local file or directory or a hub set; the column is
    ``question_key``, else ``prompt`` when the first row has one, else ``question``."""
    source = os.path.expanduser(str(source))
    raw = read_local_rows(source, split) if looks_local(source) else read_hub_rows(source, hub_config, split)
    key = question_key or ("prompt" if raw and "prompt" in raw[0] else "question")
    require_columns(raw, (key,), source)
    questions = [str(item[key]).strip() for item in raw]
    if not all(questions):
        raise UserError(f"dataset {source}: empty prompt in column {key!r} (row {questions.index('') + 1})")
    return [{"question": question, "answer": ""} for question in questions]
