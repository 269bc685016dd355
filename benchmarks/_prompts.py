"""What the generation benchmarks share: their options, their prompts, the model, and one error line (never a
traceback) for bad input."""

from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GSM8K_FOLDERS = (os.path.join(REPO, "..", "shared", "data", "gsm8k"), os.path.join(REPO, "tests", "fixtures", "gsm8k"))
# The cpu-rl and quickstart evals' questions (recipes/cpu-rl/eval.yaml).
CHAIN_SUM_OPTIONS = {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2}


def default_gsm8k() -> str:
    for folder in GSM8K_FOLDERS:
        if os.path.isfile(os.path.join(folder, "test.jsonl")):
            return os.path.normpath(folder)
    sys.exit(f"no GSM8K test.jsonl in {' or '.join(GSM8K_FOLDERS)}; pass --dataset")


def test_prompts(task_name: str, limit: int, dataset: str | None = None):
    """(task, rows, chat prompts, template) for the first ``limit`` test questions of ``chain_sum`` (the cpu-rl eval's
    options) or ``gsm8k`` (``dataset``: a folder with test.jsonl, default ../shared/data/gsm8k), xml template."""
    from r1lab.errors import UserError
    from r1lab.tasks import TaskSpec, get_task
    from r1lab.templates import get_template

    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    if task_name == "chain_sum":
        spec = TaskSpec(task="gym:chain_sum", split="test", task_seed=42, task_options=CHAIN_SUM_OPTIONS)
    else:
        spec = TaskSpec(task="gsm8k", dataset=dataset or default_gsm8k(), split="test")
    template = get_template("xml")
    task = get_task(spec)
    rows = task.load(limit=limit)
    return task, rows, [task.prompt(row["question"], template) for row in rows], template


def load(name: str):
    """(model in eval mode, tokenizer)."""
    from r1lab.models import load_model, load_tokenizer

    return load_model(name).eval(), load_tokenizer(name)


def run(main) -> None:
    """Run a benchmark's ``main``; r1lab's errors (a bad model path, a bad setting) end it with one line and exit 2."""
    from r1lab.errors import UserError

    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def sampling_parser(description: str, limit: int) -> argparse.ArgumentParser:
    """The options of a benchmark that samples k completions per prompt (the cpu-rl eval's settings by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--limit", type=int, default=limit)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top_p", type=float, default=0.95)
    parser.add_argument("--max_new_tokens", type=int, default=80)
    parser.add_argument("--batch_size", type=int, default=64)
    return parser


def check_sampling(args) -> None:
    """r1lab's checks of the sampling options, before any model loads (UserError: one line through :func:`run`)."""
    from r1lab.generation import check_settings

    check_settings(args.k, args.temperature, args.top_p, args.max_new_tokens, args.batch_size)
