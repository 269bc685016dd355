"""docs/extending.md's worked examples, run: a new reward, a new task and a new stage, each one file."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from r1lab.cli import main as cli_main
from r1lab.commands import COMMANDS, Command
from r1lab.rewards import get_reward
from r1lab.rewards.base import FACTORIES
from r1lab.tasks import TaskSpec, get_task
from r1lab.tasks.registry import TASKS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO_ROOT, "examples", "extending")
EXAMPLE_FILES = ("brevity_reward.py", "parity_task.py", "lengths_stage.py")


@pytest.fixture
def examples(monkeypatch):
    """The three example modules imported (registering their reward and task), unregistered afterwards."""
    monkeypatch.syspath_prepend(EXAMPLES)
    rewards_before, tasks_before = set(FACTORIES), set(TASKS)
    modules = {name: importlib.import_module(name[:-3]) for name in EXAMPLE_FILES}
    yield modules
    for name in set(FACTORIES) - rewards_before:
        del FACTORIES[name]
    for name in set(TASKS) - tasks_before:
        del TASKS[name]
    for name in EXAMPLE_FILES:
        sys.modules.pop(name[:-3], None)


def test_the_page_shows_each_example_as_it_is():
    page = Path(os.path.join(REPO_ROOT, "docs", "extending.md")).read_text(encoding="utf-8")
    for name in EXAMPLE_FILES:
        source = Path(os.path.join(EXAMPLES, name)).read_text(encoding="utf-8").rstrip()
        assert source in page, f"docs/extending.md does not show examples/extending/{name} as it is"


def test_the_new_task_loads_prompts_and_checks(examples):
    task = get_task(TaskSpec(task="example.parity", task_size=20, split="train"))
    rows = task.load()
    assert len(rows) == 20 and {row["answer"] for row in rows} == {"even", "odd"}
    assert rows != get_task(TaskSpec(task="example.parity", task_size=20, split="test")).load()
    from r1lab.templates import get_template

    xml = get_template("xml")
    right = xml.format("thinking", rows[0]["answer"])
    wrong = xml.format("thinking", "odd" if rows[0]["answer"] == "even" else "even")
    assert task.check(right, rows[0], xml).correct and not task.check(wrong, rows[0], xml).correct


def test_the_new_reward_scores_with_the_task_and_takes_options(examples):
    task = get_task(TaskSpec(task="example.parity", task_size=4))
    row = task.load()[0]
    from r1lab.templates import get_template

    xml = get_template("xml")
    short, long = xml.format("odd or even", row["answer"]), xml.format("word " * 30, row["answer"])
    reward = get_reward("example.brevity", max_words=40, task=task)
    scores = reward(
        prompts=[None] * 3,
        completions=[short, long, xml.format("x", "neither")],
        answer=[row["answer"]] * 3,
        task_index=[row["task_index"]] * 3,
    )
    assert scores[0] > scores[1] > 0 and scores[2] == 0.0
    assert scores[0] == pytest.approx(1 - len(short.split()) / 40)
    from r1lab.errors import UserError

    with pytest.raises(UserError, match="max_words"):
        get_reward("example.brevity", max_words="many")


def test_the_new_stage_runs_from_the_cli_and_in_a_pipeline(examples, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(
        COMMANDS, "lengths", Command("lengths_stage", "LengthsConfig", "token lengths of a chat dataset")
    )
    data = tmp_path / "data"
    assert cli_main(["cold-start-data", "--task", "example.parity", "--task_size", "12", "--output", str(data)]) == 0
    assert (
        cli_main(["lengths", "--train_file", str(data), "--model", tiny_model_dir, "--output_dir", str(tmp_path / "l")])
        == 0
    )
    figures = json.loads((tmp_path / "l" / "lengths.json").read_text())
    assert figures["samples"] == 12 and 0 < figures["mean_tokens"] <= figures["max_tokens"]
    assert cli_main(["lengths", "--train_file", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "m")]) == 2
    recipe = {
        "name": "lengths",
        "stages": [
            {
                "name": "cold-start-data",
                "command": "cold-start-data",
                "config": {"task": "example.parity", "task_size": 12},
            },
            {
                "name": "lengths",
                "command": "lengths",
                "config": {"model": tiny_model_dir},
                "inputs": {"train_file": "cold-start-data"},
            },
        ],
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(recipe))
    run_dir = tmp_path / "run"
    assert cli_main(["pipeline", "--config", str(tmp_path / "pipeline.yaml"), "--run_dir", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [stage["status"] for stage in manifest["stages"]] == ["finished", "finished"]
    assert manifest["stages"][1]["figures"]["samples"] == 12
    assert (
        cli_main(["pipeline", "--config", str(tmp_path / "pipeline.yaml"), "--run_dir", str(run_dir), "--resume"]) == 0
    )
