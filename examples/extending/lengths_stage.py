"""A stage: token lengths of a chat dataset's completions (e.g. cold-start data), for choosing
``max_completion_length``. A config dataclass, a ``check(config)`` and a ``main(config)``; ``lengths.json`` and the
finish marker, written atomically."""

import os
import time
from dataclasses import dataclass

from r1lab.chat_samples import read_train_file
from r1lab.config import config_to_dict
from r1lab.errors import UserError
from r1lab.models import load_tokenizer
from r1lab.outputs import check_output_dir, write_json_atomic, write_stage_marker


@dataclass
class LengthsConfig:
    train_file: str = "runs/cold-start-data"  # a chat jsonl or a cold-start-data directory
    model: str = "embedded"  # whose tokenizer counts the tokens
    output_dir: str = "runs/lengths"
    overwrite: bool = False


def check(config: LengthsConfig) -> None:
    """The stage contract: settings only (no files, no model), run for every stage before a pipeline starts."""
    if not config.train_file:
        raise UserError("lengths needs train_file")


def main(config: LengthsConfig) -> dict:
    started = time.time()
    check(config)
    check_output_dir(config.output_dir, config.overwrite)  # bad input: one error line before anything is read
    samples = read_train_file(config.train_file)
    tokenizer = load_tokenizer(config.model)
    lengths = sorted(len(tokenizer(sample["completion"][-1]["content"])["input_ids"]) for sample in samples)
    figures = {
        "samples": len(lengths),
        "mean_tokens": sum(lengths) / len(lengths),
        "p90_tokens": lengths[int(0.9 * (len(lengths) - 1))],
        "max_tokens": lengths[-1],
    }
    write_json_atomic(os.path.join(config.output_dir, "lengths.json"), figures)
    write_stage_marker(config.output_dir, "lengths", config_to_dict(config), started, figures)
    print(f"r1lab lengths: {figures}")
    return figures
