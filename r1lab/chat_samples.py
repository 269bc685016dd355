"""Chat samples for SFT: a jsonl of ``messages`` or ``prompt``/``completion`` rows read into TRL's conversational
prompt-completion format (the loss falls on the completion only). Pure: no model, no tokenizer."""

from __future__ import annotations

import os
from typing import Any

from r1lab.errors import UserError
from r1lab.stages.cold_start import DATA_FILE
from r1lab.tasks.files import read_jsonl

ROLES = ("system", "user", "assistant", "tool")


def _messages(value: Any, where: str, what: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user" if what == "prompt" else "assistant", "content": value}]
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: {what} must be a string or a non-empty list of chat messages")
    for message in value:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise UserError(
                f"{where}: {what} holds {message!r}; a message is {{role: system|user|assistant, content: text}}"
            )
    return [{"role": message["role"], "content": message["content"]} for message in value]


def to_prompt_completion(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A chat row (``messages``, or ``prompt``/``completion`` as text or messages) as conversational prompt-completion."""
    if "messages" in row:
        messages = _messages(row["messages"], where, "messages")
        prompt, completion = messages[:-1], messages[-1:]
    elif "prompt" in row and "completion" in row:
        prompt = _messages(row["prompt"], where, "prompt")
        completion = _messages(row["completion"], where, "completion")
    else:
        raise UserError(
            f"{where}: expected 'messages' or 'prompt' and 'completion' (has: {', '.join(sorted(row)) or 'nothing'})"
        )
    if completion[-1]["role"] != "assistant" or not completion[-1]["content"].strip():
        raise UserError(f"{where}: the last message must be a non-empty assistant message")
    if not prompt:
        raise UserError(f"{where}: no message before the assistant's: nothing to condition on")
    return {"prompt": prompt, "completion": completion}


def read_train_file(path: str) -> list[dict[str, Any]]:
    if os.path.isdir(path):
        path = os.path.join(path, DATA_FILE)
    if not os.path.isfile(path):
        raise UserError(f"train_file not found: {path}")
    rows = read_jsonl(path)
    if not rows:
        raise UserError(f"train_file {path} has no samples")
    return [to_prompt_completion(row, f"{path} sample {index + 1}") for index, row in enumerate(rows)]
