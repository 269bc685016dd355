"""Rejection sampling (R1 stage 3 data) on the tiny model: a stubbed sampler with known right and wrong
completions, the real sampler on a random model, general data mixing, atomic writes, config errors."""

from __future__ import annotations

import json
import os

import pytest

from r1lab.cli import main as cli_main
from r1lab.generation import Completion

OPTIONS = {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 2}
CHAIN_SUM = ["--task", "gym:chain_sum", "--task_size", "4", "--task_options", json.dumps(OPTIONS)]
GENERAL_ROWS = [
    {"messages": [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "An AI assistant."}]},
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ]
    },
    {"prompt": "Translate into French: good morning", "completion": "Bonjour."},
    {
        "prompt": [{"role": "user", "content": "Write a haiku about rain."}],
        "completion": [
            {"role": "assistant", "content": "Grey sky lets go,\nroofs drum a soft song,\npuddles hold the light."}
        ],
    },
    {"prompt": "hello", "completion": "Hello! How can I help?"},
]
TINY_TRAINING = [
    "--max_steps",
    "1",
    "--per_device_train_batch_size",
    "2",
    "--logging_steps",
    "1",
    "--save_strategy",
    "no",
]
SAMPLES_PER_QUESTION = 6


def chain_sum_rows(size: int = 4) -> list[dict]:
    from r1lab.config import build_config
    from r1lab.tasks import TaskSpec, get_task

    return get_task(
        build_config(TaskSpec, {"task": "gym:chain_sum", "task_size": size, "task_options": OPTIONS})
    ).load()


def xml(reasoning: str, answer: str, truncated: bool = False) -> Completion:
    return Completion(f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>", 40, truncated)


def known_samples(row: dict, solvable: bool) -> list[Completion]:
    """Six samples of a question, one per outcome; an unsolvable question's samples all give a wrong answer."""
    gold, wrong = row["answer"], str(int(row["answer"]) + 1)
    right = gold if solvable else wrong
    return [
        xml(row["solution"], right),  # kept
        xml("Another way to see it.\n" + row["solution"], right),  # verified, over max_per_question
        xml(row["solution"], wrong),  # checker
        xml("Add the terms.\n" * 6 + row["solution"], right),  # verified, repetition filter
        Completion(xml(row["solution"], right).text[:30], 96, True),  # truncated
        Completion(f"I think it is {gold}.", 8, False),  # no answer in the layout
    ]


def stub_generation(monkeypatch, rows: list[dict], unsolvable: int = 1, calls: list | None = None) -> None:
    """``generate`` returns known_samples for rejection sampling (the first ``unsolvable`` questions never
    right) and runs the real sampler for every other caller (eval)."""
    import r1lab.generation as generation
    import r1lab.stages.rejection as rejection

    real = generation.generate
    index_of = {row["question"]: index for index, row in enumerate(rows)}

    def fake(model, tokenizer, prompts, n=1, **settings):
        if settings.get("description") != "rejection sampling":
            return real(model, tokenizer, prompts, n=n, **settings)
        assert n == SAMPLES_PER_QUESTION
        if calls is not None:
            calls.append({"prompts": prompts, **settings})
        return [
            known_samples(rows[index_of[p[-1]["content"]]], index_of[p[-1]["content"]] >= unsolvable) for p in prompts
        ]

    monkeypatch.setattr(rejection, "generate", fake)


@pytest.fixture
def general_file(tmp_path):
    path = tmp_path / "general.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in GENERAL_ROWS))
    return str(path)


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _run(tiny_model_dir, output, *extra) -> int:
    return cli_main(
        [
            "rejection-sampling",
            "--model",
            tiny_model_dir,
            *CHAIN_SUM,
            "--num_samples",
            str(SAMPLES_PER_QUESTION),
            "--output",
            str(output),
            *extra,
        ]
    )


def test_keeps_exactly_the_verified_readable_samples_mixes_general_data_and_trains(
    tiny_model_dir, general_file, tmp_path, monkeypatch
):
    rows, calls = chain_sum_rows(), []
    stub_generation(monkeypatch, rows, unsolvable=1, calls=calls)
    output = tmp_path / "rs"
    assert (
        _run(
            tiny_model_dir,
            output,
            "--general_file",
            general_file,
            "--general_ratio",
            "0.67",
            "--temperature",
            "0.7",
            "--max_new_tokens",
            "96",
        )
        == 0
    )
    # The task's own prompts (as eval and GRPO build them), sampled with the config's settings.
    from r1lab.templates import XML_SYSTEM_PROMPT

    assert [p[-1]["content"] for p in calls[0]["prompts"]] == [row["question"] for row in rows]
    assert calls[0]["prompts"][0][0] == {"role": "system", "content": XML_SYSTEM_PROMPT}
    assert (calls[0]["temperature"], calls[0]["max_new_tokens"], calls[0]["stop_strings"]) == (0.7, 96, "</answer>")

    written = _rows(output / "train.jsonl")
    reasoning = [row for row in written if row["source"] == "reasoning"]
    general = [row for row in written if row["source"] == "general"]
    # Questions 1-3: the first verified, readable sample each; question 0 (never right) contributes none.
    assert [row["prompt"][-1]["content"] for row in reasoning] == [row["question"] for row in rows[1:]]
    assert [row["completion"] for row in reasoning] == [
        [{"role": "assistant", "content": xml(row["solution"], row["answer"]).text}] for row in rows[1:]
    ]
    assert [row["answer"] for row in reasoning] == [row["answer"] for row in rows[1:]]
    # round(0.67 * 3) = 2 general samples, drawn from the file, as chat prompt/completion.
    assert len(general) == 2
    originals = [json.dumps({k: v for k, v in row.items() if k != "source"}, sort_keys=True) for row in general]
    from r1lab.chat_samples import to_prompt_completion

    pool = [json.dumps(to_prompt_completion(row, "x"), sort_keys=True) for row in GENERAL_ROWS]
    assert all(item in pool for item in originals)

    stats = json.loads((output / "stats.json").read_text())
    assert (stats["sampled"], stats["verified"], stats["kept_reasoning"], stats["general_added"], stats["rows"]) == (
        24,
        9,
        3,
        2,
        5,
    )
    assert stats["accept_rate"] == 0.375 and stats["general_wanted"] == 2 and stats["general_available"] == 5
    removed = {name: count for name, count in stats["removed"].items() if count}
    assert removed == {"truncated": 4, "no_answer": 4, "checker": 7, "repetition": 3, "max_per_question": 3}
    assert sum(removed.values()) + stats["kept_reasoning"] == stats["sampled"]
    assert [(q["sampled"], q["verified"], q["kept"], q["accept_rate"]) for q in stats["per_question"]] == [
        (6, 0, 0, 0.0),
        (6, 3, 1, 0.5),
        (6, 3, 1, 0.5),
        (6, 3, 1, 0.5),
    ]
    assert (stats["questions_none_verified"], stats["questions_all_verified"]) == (1, 0)
    marker = json.loads((output / "r1lab_stage.json").read_text())
    assert marker["stage"] == "rejection-sampling" and marker["figures"]["kept_reasoning"] == 3
    assert sorted(os.listdir(output)) == ["r1lab_stage.json", "stats.json", "train.jsonl"]

    # Stage 3's SFT reads the directory as it is.
    sft_dir = tmp_path / "sft"
    assert (
        cli_main(
            [
                "sft",
                "--model",
                tiny_model_dir,
                "--train_file",
                str(output),
                *TINY_TRAINING,
                "--output_dir",
                str(sft_dir),
            ]
        )
        == 0
    )
    assert json.loads((sft_dir / "r1lab_stage.json").read_text())["figures"]["train_samples"] == 5


def test_refuses_to_overwrite_and_a_failed_overwrite_leaves_no_finished_dataset(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    rows = chain_sum_rows()
    stub_generation(monkeypatch, rows, unsolvable=1)
    output = tmp_path / "rs"
    assert _run(tiny_model_dir, output, "--max_per_question", "null") == 0
    assert json.loads((output / "stats.json").read_text())["kept_reasoning"] == 6  # A and B of 3 questions
    assert _run(tiny_model_dir, output) == 2
    assert "holds a finished stage; pass --overwrite true" in capsys.readouterr().err
    # Overwriting with a model that never verifies: the old dataset and marker go, stats explain why.
    stub_generation(monkeypatch, rows, unsolvable=4)
    assert _run(tiny_model_dir, output, "--overwrite", "true") == 2
    assert "no reasoning sample kept" in capsys.readouterr().err
    assert sorted(os.listdir(output)) == ["stats.json"]


def test_injected_write_failure_leaves_no_partial_file(tiny_model_dir, general_file, tmp_path, monkeypatch):
    from r1lab.config import build_config
    from r1lab.stages.rejection import RejectionSamplingConfig, main

    stub_generation(monkeypatch, chain_sum_rows())
    real_replace = os.replace

    def failing_replace(source, destination):
        if str(destination).endswith("train.jsonl"):
            raise OSError(28, "No space left on device")
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", failing_replace)
    output = tmp_path / "rs"
    config = build_config(
        RejectionSamplingConfig,
        {
            "model": tiny_model_dir,
            "task": "gym:chain_sum",
            "task_size": 4,
            "task_options": OPTIONS,
            "num_samples": SAMPLES_PER_QUESTION,
            "general_file": general_file,
            "general_ratio": 1.0,
            "output": str(output),
        },
    )
    with pytest.raises(OSError, match="No space left"):
        main(config)
    # stats.json is written first and complete; no train.jsonl, no staging file, no finish marker.
    assert sorted(os.listdir(output)) == ["stats.json"]


def test_random_model_verifies_nothing_and_says_so(tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "rs"
    code = cli_main(
        [
            "rejection-sampling",
            "--model",
            tiny_model_dir,
            *CHAIN_SUM,
            "--task_size",
            "2",
            "--num_samples",
            "2",
            "--max_new_tokens",
            "8",
            "--batch_size",
            "4",
            "--progress",
            "false",
            "--output",
            str(output),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("r1lab: error: no reasoning sample kept: every one of 4 candidates was removed;")
    assert f"per-question accept rates in {output / 'stats.json'}" in error
    stats = json.loads((output / "stats.json").read_text())
    assert (stats["sampled"], stats["verified"], stats["kept_reasoning"], stats["questions_none_verified"]) == (
        4,
        0,
        0,
        2,
    )
    assert sorted(os.listdir(output)) == ["stats.json"]


def test_general_samples_are_capped_by_the_file(general_file):
    from r1lab.config import build_config
    from r1lab.stages.rejection import RejectionSamplingConfig, pick_general, read_general

    config = build_config(RejectionSamplingConfig, {"general_file": general_file, "general_ratio": 0.5, "seed": 1})
    pool = read_general(config)
    stats: dict = {}
    assert len(pick_general(pool, 4, config, stats)) == 2
    assert pick_general(pool, 4, config, {}) == pick_general(pool, 4, config, {})  # seeded
    assert len(pick_general(pool, 100, config, stats)) == 5
    assert (stats["general_wanted"], stats["general_added"]) == (50, 5)
    assert pick_general(pool, 0, config, stats) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--num_sample", "4"], "unknown config key 'num_sample' (did you mean num_samples?)"),
        (["--general_ratio", "-0.5"], "general_ratio must be at least 0.0, got -0.5"),
        (["--general_ratio", "0.3"], "general_ratio 0.3 needs general_file"),
        (["--general_file", "nowhere.jsonl", "--general_ratio", "0.3"], "general_file not found: nowhere.jsonl"),
        (
            ["--general_file", "BAD", "--general_ratio", "0.3"],
            "expected 'messages' or 'prompt' and 'completion' (has: text)",
        ),
        (["--num_samples", "0"], "num_samples must be at least 1, got 0"),
        (["--max_per_question", "0"], "max_per_question must be at least 1 (or null), got 0"),
        (["--template", "yaml"], "unknown template 'yaml'"),
        (["--filters", "{max_char: 10}"], "filters: unknown config key 'max_char'"),
        (["--task", "mix"], "rejection sampling keeps answers a checker verifies"),
        (["--task", "nope"], "unknown task 'nope'"),
        (["--generation_backend", "tpu"], "generation_backend must be one of auto, hf, vllm, got 'tpu'"),
        (["--model", "/nonexistent/model"], "model not found: /nonexistent/model"),
    ],
)
def test_config_errors_before_any_model_loads(arguments, message, tiny_model_dir, tmp_path, monkeypatch, capsys):
    import r1lab.stages.rejection as rejection

    def no_loading(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded before the config was validated")

    monkeypatch.setattr(rejection, "load_generation_model", no_loading)
    monkeypatch.setattr(rejection, "load_tokenizer", no_loading)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no chat here"}) + "\n")
    arguments = [str(bad) if argument == "BAD" else argument for argument in arguments]
    output = tmp_path / "rs"
    assert cli_main(["rejection-sampling", "--model", tiny_model_dir, "--output", str(output), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error
    assert not output.exists()


@pytest.mark.parametrize("recipe", ["recipes/r1/rejection_sampling.yaml", "recipes/quickstart/rejection_sampling.yaml"])
def test_recipes_are_valid_configs(recipe):
    from r1lab.config import load_config
    from r1lab.stages.rejection import RejectionSamplingConfig, read_general

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = load_config(RejectionSamplingConfig, os.path.join(root, recipe), {})
    config.general_file = os.path.join(root, config.general_file)
    general = read_general(config)
    assert len(general) >= 30 and config.general_ratio == pytest.approx(1 / 3, abs=0.01)
    assert config.num_samples >= 4 and config.output.startswith("runs/")
