"""Rewards from TRL and your own code in real tiny GRPO runs through the CLI, and the bad entries refused before a
model loads (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import reward_helpers
import yaml
from conftest import REPO_ROOT
from test_bad_inputs import CHAIN_SUM, assert_one_error_line, snapshot

from r1lab.cli import main as cli_main

EXAMPLE = os.path.join(REPO_ROOT, "examples", "rewards")
TRL_FACTORIES = (
    "trl.rewards.get_cosine_scaled_reward",
    "trl.rewards.get_soft_overlong_punishment",
    "trl.rewards.get_repetition_penalty_reward",
)


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


def test_the_docs_page_shows_the_example_as_it_is():
    page = Path(os.path.join(REPO_ROOT, "docs", "usage.md")).read_text(encoding="utf-8")
    for name in ("group_length.py", "trl_rewards.yaml"):
        source = Path(os.path.join(EXAMPLE, name)).read_text(encoding="utf-8").rstrip()
        assert source in page, f"docs/usage.md does not show examples/rewards/{name} as it is"


def test_the_example_trains_with_trls_three_factories_and_a_batch_reward(tiny_model_dir, tmp_path, monkeypatch):
    """The docs' recipe (TRL's cosine, soft overlong and repetition factories by dotted path with options, the
    example's batch-relative reward) plus a spy that records what TRL passes: two real GRPO steps."""
    monkeypatch.syspath_prepend(EXAMPLE)
    reward_helpers.SPY_CALLS.clear()
    recipe = yaml.safe_load(Path(EXAMPLE, "trl_rewards.yaml").read_text(encoding="utf-8"))
    recipe["rewards"].append("reward_helpers.batch_spy")  # variance even for a random model, and a witness
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    output_dir = tmp_path / "grpo"
    code = cli_main(
        [
            "grpo",
            "--config",
            str(config),
            "--model",
            tiny_model_dir,
            "--task_size",
            "8",
            "--task_options",
            "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--max_completion_length",
            "16",
            "--max_steps",
            "2",
            "--learning_rate",
            "1e-2",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    before, after = _weights(tiny_model_dir), _weights(str(output_dir))
    assert any(not (before[name] == after[name]).all() for name in before), "GRPO did not change any weight"

    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    first = records[0]
    for name in (*TRL_FACTORIES, "group_length.relative_length", "think.format", "reward_helpers.batch_spy"):
        assert f"rewards/{name}/mean" in first, name
        assert first[f"reward_failures/{name}"] == 0.0, name  # every one ran on every batch
    assert first["relative_length/spread_tokens"] >= 0.0  # the function's own log_metric reached metrics.jsonl
    assert first["rewards/trl.rewards.get_cosine_scaled_reward/mean"] < 0  # a random model is never right
    logged = [json.loads(line) for line in (output_dir / "completions.jsonl").read_text().splitlines()]
    assert set(logged[0]["rewards"]) >= {*TRL_FACTORIES, "group_length.relative_length"}

    # the spy: one call per batch of a whole group (4 completions of one prompt), token ids as generated
    calls = reward_helpers.SPY_CALLS
    assert [call["step"] for call in calls] == [0, 1]
    for call in calls:
        assert call["completions"] == 4 and call["distinct_prompts"] == 1
        assert len(call["token_counts"]) == 4 and all(0 < count <= 16 for count in call["token_counts"])
        assert call["hooks"] == (True, True)
        assert {"answer", "solution", "task_index"} <= set(call["columns"])


BAD_ENTRIES = [
    (
        "unknown-option",
        "[{name: trl.rewards.get_soft_overlong_punishment, options: {max_completion_len: 96, soft_punish_cache: 24, cache: 8}}]",
        "reward 'trl.rewards.get_soft_overlong_punishment' has no option(s) cache (options: max_completion_len, soft_punish_cache)",
    ),
    (
        "missing-option",
        "[{name: trl.rewards.get_soft_overlong_punishment, options: {max_completion_len: 96}}]",
        "needs option(s) soft_punish_cache",
    ),
    (
        "wrong-type",
        "[{name: trl.rewards.get_cosine_scaled_reward, options: {max_len: long}}]",
        "option max_len: expected an integer, got 'long'",
    ),
    (
        "factory-rejects-its-options",
        "[{name: trl.rewards.get_repetition_penalty_reward, options: {max_penalty: 0.5}}]",
        "rejected its options (max_penalty=0.5): max_penalty 0.5 should not be positive",
    ),
    ("not-callable", "[accuracy, math.pi]", "reward 'math.pi' is not callable (a float)"),
    (
        "options-for-a-function",
        "[{name: trl.rewards.think_format_reward, options: {score: 2}}]",
        "is a reward function (called as TRL calls it) and takes no options (score)",
    ),
    ("builtin-missing-option", "[accuracy, cosine]", "reward 'cosine' needs option(s) max_len"),
    (
        "builtin-bad-value",
        "[{name: soft_overlong, options: {max_completion_len: 96, soft_punish_cache: 128}}]",
        "soft_punish_cache must be between 0 and max_completion_len (96), got 128",
    ),
]


@pytest.mark.parametrize("rewards, expected", [case[1:] for case in BAD_ENTRIES], ids=[case[0] for case in BAD_ENTRIES])
def test_a_bad_reward_entry_is_one_line_exit_2_and_nothing_written(
    rewards, expected, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = cli_main(["grpo", "--model", tiny_model_dir, *CHAIN_SUM, "--rewards", rewards, "--output_dir", "out"])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert_one_error_line(captured.err, expected)
    assert snapshot(tmp_path) == before


def test_a_pipeline_refuses_a_bad_reward_option_in_a_later_stage_before_the_first_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": [
                    {"name": "data", "command": "cold-start-data", "config": {"task": "gym:chain_sum", "task_size": 4}},
                    {
                        "name": "rl",
                        "command": "grpo",
                        "config": {
                            "rewards": [
                                {
                                    "name": "trl.rewards.get_soft_overlong_punishment",
                                    "options": {"max_completion_len": 96},
                                }
                            ]
                        },
                    },
                ]
            }
        )
    )
    before = snapshot(tmp_path)
    assert cli_main(["pipeline", "--config", "p.yaml", "--run_dir", "run"]) == 2
    assert_one_error_line(
        capsys.readouterr().err,
        "stage 'rl': reward 'trl.rewards.get_soft_overlong_punishment' needs option(s) soft_punish_cache",
    )
    assert snapshot(tmp_path) == before


def _grpo_recipes() -> list[str]:
    found = [os.path.join(EXAMPLE, "trl_rewards.yaml")]
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, "recipes")):
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.endswith(".yaml") and "rewards" in (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}):
                found.append(path)
    return found


@pytest.mark.parametrize("recipe", _grpo_recipes(), ids=lambda path: os.path.relpath(path, REPO_ROOT))
def test_every_grpo_recipe_builds_its_rewards(recipe, monkeypatch):
    from r1lab.config import load_config
    from r1lab.rewards import build_rewards, check_reward_names
    from r1lab.stages.grpo import R1GRPOConfig

    monkeypatch.syspath_prepend(EXAMPLE)
    config = load_config(R1GRPOConfig, recipe, {})
    check_reward_names(config.rewards)
    functions, weights = build_rewards(
        config.rewards, {"task": None, "template": config.template}, config.reward_weights
    )
    assert len(functions) == len(config.rewards) and (weights is None or len(weights) == len(functions))


def test_the_long_cot_recipe_uses_the_four_controls_with_lengths_matching_the_run():
    from r1lab.config import load_config
    from r1lab.stages.grpo import R1GRPOConfig

    config = load_config(R1GRPOConfig, os.path.join(REPO_ROOT, "recipes", "r1", "long_cot_rl.yaml"), {})
    entries = {entry["name"]: entry for entry in config.rewards if isinstance(entry, dict)}
    assert {"cosine", "soft_overlong", "repetition_penalty", "reasoning_steps"} <= set(entries)
    assert entries["cosine"]["options"]["max_len"] == config.max_completion_length
    assert entries["soft_overlong"]["options"]["max_completion_len"] == config.max_completion_length
    assert config.template == "think" and config.beta == 0.0


def test_score_samples_scores_an_evals_completions_as_grpo_would(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """examples/rewards/score_samples.py (behind the measured table in docs/usage.md) on a hand-made eval."""
    from r1lab.tasks import TaskSpec, get_task
    from r1lab.templates import get_template

    monkeypatch.syspath_prepend(EXAMPLE)
    import score_samples

    spec = {
        "task": "gym:chain_sum",
        "task_size": 4,
        "task_seed": 42,
        "split": "test",
        "task_options": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
    }
    row = get_task(TaskSpec(**spec)).load()[0]
    xml = get_template("xml")
    right, wrong = xml.format("Step 1: add.", row["answer"]), xml.format("add", str(int(row["answer"]) + 1))
    (tmp_path / "summary.json").write_text(
        json.dumps({"settings": {**spec, "template": "xml", "model": tiny_model_dir}})
    )
    output = {"extracted": None, "formatted": True, "truncated": False, "tokens": 20}
    record = {
        "index": 0,
        "task_index": row["task_index"],
        "question": row["question"],
        "gold": row["answer"],
        "greedy": {**output, "completion": right, "correct": True},
        "samples": [{**output, "completion": wrong, "correct": False}],
    }
    (tmp_path / "samples.jsonl").write_text(json.dumps(record) + "\n")
    means = score_samples.main(
        [str(tmp_path), "--rewards", "[{name: cosine, options: {max_len: 1000}}, reasoning_steps]"]
    )
    printed = capsys.readouterr().out
    assert "| 0 | greedy | 20 | yes |" in printed and "| 0 | sample 1 | 20 | no |" in printed
    assert "| mean of 2 | | 20.0 | 1/2 |" in printed
    assert abs(means["cosine"]) < 0.01  # about +1 (right, short) and about -1 (wrong, short)
    assert means["reasoning_steps"] == pytest.approx(1 / 6)  # one "Step 1:" of three, in one completion of two


def test_the_docs_show_the_long_cot_recipes_rewards_as_they_are():
    from r1lab.config import read_yaml_mapping

    page = Path(os.path.join(REPO_ROOT, "docs", "usage.md")).read_text(encoding="utf-8")
    after = page.split("`recipes/r1/long_cot_rl.yaml` is a GPU stage-2 recipe", 1)[1]
    block = after.split("```yaml\n", 1)[1].split("```", 1)[0]
    recipe = read_yaml_mapping(os.path.join(REPO_ROOT, "recipes", "r1", "long_cot_rl.yaml"))
    assert yaml.safe_load(block)["rewards"] == recipe["rewards"]
