"""Bad input on the command line: one ``r1lab: error:`` line, exit code 2, no traceback, nothing created.

Every case fails before a model loads: cases that get past the task and reward checks point ``--model`` at
an invalid local directory, so nothing converts the embedded model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from r1lab.cli import main as cli_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO_ROOT, "tests", "fixtures", "gsm8k")


def make_inputs(tmp_path) -> dict[str, str]:
    """Files and directories the cases refer to, by placeholder name."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("learning_rate: 1.0e-5\nrewards: [accuracy\nlimit: 3\n", encoding="utf-8")
    unknown_key = tmp_path / "unknown_key.yaml"
    unknown_key.write_text("learning_rate: 1.0e-5\nnum_generation: 4\n", encoding="utf-8")
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q", "answer": \n', encoding="utf-8")
    columns = tmp_path / "columns.jsonl"
    columns.write_text('{"problem": "q", "solution": "#### 1"}\n', encoding="utf-8")
    no_config = tmp_path / "not_a_model"
    no_config.mkdir()
    (no_config / "README.md").write_text("hello", encoding="utf-8")
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    return {
        "{missing_config}": str(tmp_path / "missing.yaml"),
        "{broken_yaml}": str(broken),
        "{unknown_key_yaml}": str(unknown_key),
        "{missing_dataset}": str(tmp_path / "no_such_dataset"),
        "{bad_jsonl}": str(bad_jsonl),
        "{columns_jsonl}": str(columns),
        "{not_a_model}": str(no_config),
        "{no_weights}": str(no_weights),
        "{fixture}": FIXTURE,
    }


# (id, argv with placeholders, text the error line must contain)
CASES = [
    ("missing-config", ["grpo", "--config", "{missing_config}"], "config file not found"),
    ("broken-yaml", ["grpo", "--config", "{broken_yaml}"], "{broken_yaml}:3: broken YAML"),
    (
        "unknown-key-in-yaml",
        ["grpo", "--config", "{unknown_key_yaml}"],
        "unknown config key 'num_generation' (did you mean num_generations?)",
    ),
    ("unknown-key-on-command-line", ["grpo", "--learning_rat", "1e-5"], "did you mean learning_rate?"),
    ("wrong-type", ["grpo", "--learning_rate", "fast"], "learning_rate: expected a number"),
    ("wrong-type-optional-bool", ["grpo", "--bf16", "maybe"], "bf16: expected true or false"),
    ("wrong-type-list", ["grpo", "--rewards", "[accuracy, xml.soft_format"], "rewards: expected a list"),
    ("config-needs-a-path", ["grpo", "--config"], "--config needs a path"),
    ("bare-word", ["grpo", "learning_rate", "1"], "unexpected argument 'learning_rate'"),
    ("unknown-command", ["trian"], "unknown command 'trian'"),
    ("unknown-task", ["grpo", "--task", "gsm9k"], "unknown task 'gsm9k'"),
    ("unknown-gym-task", ["grpo", "--task", "gym:chain_summ"], "unknown reasoning-gym task 'chain_summ'"),
    (
        "bad-gym-option",
        ["grpo", "--task", "gym:chain_sum", "--task_options", "{min_terms: 5, max_terms: 2}"],
        "max_terms must be >= min_terms",
    ),
    (
        "unknown-reward",
        ["grpo", "--dataset", "{fixture}", "--rewards", "accuracy,xml.sfot_format"],
        "unknown reward 'xml.sfot_format'",
    ),
    (
        "unknown-reward-option",
        ["grpo", "--dataset", "{fixture}", "--rewards", "[{name: accuracy, colour: red}]"],
        "has no option(s) colour",
    ),
    (
        "unknown-reward-path",
        ["grpo", "--dataset", "{fixture}", "--rewards", "nowhere.reward_fn"],
        "unknown reward 'nowhere.reward_fn'",
    ),
    (
        "reward-weights-mismatch",
        ["grpo", "--dataset", "{fixture}", "--rewards", "accuracy", "--reward_weights", "1,2"],
        "reward_weights has 2 values for 1 rewards",
    ),
    ("unknown-template", ["grpo", "--dataset", "{fixture}", "--template", "json"], "unknown template 'json'"),
    ("missing-dataset", ["grpo", "--dataset", "{missing_dataset}"], "dataset not found"),
    ("malformed-jsonl", ["grpo", "--dataset", "{bad_jsonl}"], "{bad_jsonl}:2: malformed JSON line"),
    ("missing-columns", ["grpo", "--dataset", "{columns_jsonl}"], "lacks column(s) question, answer"),
    ("limit-beyond-data", ["grpo", "--dataset", "{fixture}", "--limit", "1000"], "limit 1000 is beyond the data"),
    (
        "model-dir-without-config",
        ["grpo", "--dataset", "{fixture}", "--model", "{not_a_model}"],
        "is not a model directory: no config.json",
    ),
    (
        "model-dir-without-weights",
        ["grpo", "--dataset", "{fixture}", "--model", "{no_weights}"],
        "is not a model directory: no weights",
    ),
    ("model-path-missing", ["grpo", "--dataset", "{fixture}", "--model", "./no/such/model"], "model not found"),
    (
        "generation-batch-not-divisible",
        ["grpo", "--num_generations", "3", "--generation_batch_size", "16"],
        "must be divisible by num_generations (3)",
    ),
]


def fill(items: list[str], inputs: dict[str, str]) -> list[str]:
    filled = []
    for item in items:
        for placeholder, value in inputs.items():
            item = item.replace(placeholder, value)
        filled.append(item)
    return filled


def assert_one_error_line(stderr: str, expected: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("r1lab: error: "), lines[0]
    assert expected in lines[0], f"{expected!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("argv, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_error_line_and_exit_code_2(argv, expected, tmp_path, capsys):
    inputs = make_inputs(tmp_path)
    output_dir = tmp_path / "out"
    code = cli_main([*fill(argv, inputs), "--output_dir", str(output_dir)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert_one_error_line(captured.err, fill([expected], inputs)[0])
    assert not output_dir.exists()
    assert "Traceback" not in captured.out


def test_no_arguments_prints_usage_and_exits_2(capsys):
    assert cli_main([]) == 2
    assert "usage: r1lab" in capsys.readouterr().out


def test_help_exits_0(capsys):
    assert cli_main(["--help"]) == 0
    assert "grpo" in capsys.readouterr().out
    assert cli_main(["grpo", "--help"]) == 0
    assert "--rewards" in capsys.readouterr().out


def test_real_process_exit_code_and_no_traceback(tmp_path):
    output_dir = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "r1lab",
            "grpo",
            "--dataset",
            FIXTURE,
            "--limit",
            "1000",
            "--output_dir",
            str(output_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout
    assert_one_error_line(result.stderr, "limit 1000 is beyond the data")
    assert not output_dir.exists()
