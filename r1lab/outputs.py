"""Writing outputs so that a crash never leaves a file or directory that looks complete."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from r1lab.errors import UserError

STAGE_MARKER = "r1lab_stage.json"  # written last: its presence means the stage finished


def _default_file_mode() -> int:
    """0o666 less the process umask: what ``open(path, "w")`` would have given (mkstemp gives 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: str, data: bytes) -> None:
    """``data`` to ``path`` through a temporary file in the same directory, fsync and ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(staging, _default_file_mode())
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl_atomic(path: str, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))


def is_finished(output_dir: str) -> bool:
    return os.path.isfile(os.path.join(output_dir, STAGE_MARKER))


def check_output_dir(output_dir: str, overwrite: bool, resuming: bool = False) -> None:
    """Refuse a finished output (unless ``overwrite``) and an output path we cannot write; creates nothing."""
    if is_finished(output_dir) and not overwrite and not resuming:
        raise UserError(f"{output_dir} holds a finished stage; pass --overwrite true to replace it")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"output_dir {output_dir} exists and is not a directory")
    probe = os.path.abspath(output_dir)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK):
        raise UserError(f"output_dir {output_dir} is not writable ({probe} is read-only)")


def save_model_atomic(model, tokenizer, output_dir: str) -> None:
    """Save weights + tokenizer into a staging directory, then move the files into ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".model-", dir=output_dir)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
