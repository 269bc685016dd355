"""cold-start-data's length filter counts the model's tokens, as sft's and rejection sampling's do."""

from __future__ import annotations

import json
import os

from transformers import AutoTokenizer

from r1lab.cli import main as cli_main
from r1lab.filters import approximate_tokens


def test_max_tokens_counts_the_models_tokens(tmp_path, tiny_model_dir, gsm8k_fixture_dir):
    limit = 100
    output = str(tmp_path / "data")
    args = ["cold-start-data", "--task", "gsm8k", "--dataset", gsm8k_fixture_dir, "--source", "solutions"]
    args += ["--model", tiny_model_dir, "--filters", f"{{max_tokens: {limit}}}", "--output", output]
    assert cli_main(args) == 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with open(os.path.join(output, "train.jsonl"), encoding="utf-8") as handle:
        completions = [json.loads(line)["completion"][0]["content"] for line in handle]
    with open(os.path.join(output, "stats.json"), encoding="utf-8") as handle:
        stats = json.load(handle)
    counts = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in completions]
    assert completions and max(counts) <= limit
    assert stats["removed"]["length"] > 0
    # the word count would have judged otherwise: the filter is the tokenizer's, not the stand-in
    assert any(approximate_tokens(text) != count for text, count in zip(completions, counts, strict=True))
