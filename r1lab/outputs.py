"""Writing outputs so that a crash never leaves a file or directory that looks complete."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
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


def write_files_atomic(files: list[tuple[str, bytes]]) -> None:
    """Several files that belong together, the last one the proof that the set is complete (a summary, a stage
    marker). Every file is first written in full to a temporary path beside its target, so a full disk fails
    here and replaces nothing; then the old proof is removed, the files are moved into place, the proof last."""
    staged: list[tuple[str, str]] = []
    try:
        for path, data in files:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
            handle, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
            staged.append((staging, path))
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(staging, _default_file_mode())
        if files and os.path.exists(files[-1][0]):
            os.unlink(files[-1][0])
        for staging, path in staged:
            os.replace(staging, path)
    except BaseException:
        for staging, _ in staged:
            if os.path.exists(staging):
                os.unlink(staging)
        raise


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows).encode("utf-8")


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def is_finished(output_dir: str) -> bool:
    return os.path.isfile(os.path.join(output_dir, STAGE_MARKER))


def stage_marker(stage: str, config: dict[str, Any], started: float, figures: dict) -> dict[str, Any]:
    """The finish marker's content: the stage, its start and end, its key figures and its whole config."""
    return {
        "stage": stage,
        "status": "finished",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.time() - started, 1),
        "figures": figures,
        "config": config,
    }


def write_stage_marker(output_dir: str, stage: str, config: dict[str, Any], started: float, figures: dict) -> None:
    write_json_atomic(os.path.join(output_dir, STAGE_MARKER), stage_marker(stage, config, started, figures))


def remove_stage_marker(output_dir: str) -> None:
    """The directory stops claiming to hold a finished stage (before anything in it is replaced)."""
    marker = os.path.join(output_dir, STAGE_MARKER)
    if os.path.isfile(marker):
        os.unlink(marker)


# Written last into a Trainer checkpoint: a checkpoint directory without it was cut off while saving.
CHECKPOINT_COMPLETE_FILE = "trainer_state.json"


def checkpoint_step(path: str) -> int | None:
    suffix = os.path.basename(os.path.normpath(path)).rsplit("-", 1)[-1]
    return (
        int(suffix) if os.path.basename(os.path.normpath(path)).startswith("checkpoint-") and suffix.isdigit() else None
    )


def is_complete_checkpoint(path: str) -> bool:
    """Trainer's last file is there, and whole (a kill while it was written leaves it empty or cut off)."""
    try:
        with open(os.path.join(path, CHECKPOINT_COMPLETE_FILE), encoding="utf-8") as handle:
            return isinstance(json.load(handle), dict)
    except (OSError, ValueError):
        return False


def last_checkpoint(output_dir: str) -> str | None:
    """The highest-numbered complete ``checkpoint-N`` in ``output_dir`` (one killed mid-save is passed over)."""
    if not os.path.isdir(output_dir):
        return None
    numbered = []
    for name in os.listdir(output_dir):
        path = os.path.join(output_dir, name)
        step = checkpoint_step(path)
        if step is not None and os.path.isdir(path) and is_complete_checkpoint(path):
            numbered.append((step, path))
    return max(numbered)[1] if numbered else None


def check_output_dir(output_dir: str, overwrite: bool, resuming: bool = False) -> None:
    """Refuse a finished output (unless ``overwrite``) and an output path we cannot write; creates nothing."""
    if is_finished(output_dir) and not overwrite and not resuming:
        raise UserError(f"{output_dir} holds a finished stage; pass --overwrite true to replace it")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"output_dir {output_dir} exists and is not a directory")
    check_writable_dir(output_dir, "output_dir")


def is_inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or lies under it, after ``..`` and symbolic links are resolved."""
    path, root = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([path, root]) == root


def check_writable_dir(path: str, what: str = "output") -> None:
    """``path`` is a directory r1lab can write into, or one it can create: its nearest existing ancestor is a
    writable directory. Creates nothing."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise UserError(f"{what} {path} cannot be created: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} is not writable ({probe} is read-only)")


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
