"""task code end to end: HumanEval's references pass and `pass` bodies fail (the harness, checked whole), the
accuracy reward (all-or-nothing and partial), eval's per-sample test reports and pass@k, bad input, and a real
GRPO run on code with a tiny random model (the embedded model's run is in the slow tier)."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from types import SimpleNamespace

import pytest
from test_bad_inputs import assert_one_error_line, snapshot

from r1lab.cli import main as cli_main
from r1lab.code import simple
from r1lab.errors import UserError
from r1lab.filters import filter_settings
from r1lab.rewards import build_rewards
from r1lab.stages.rejection import RejectionSamplingConfig, judge
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template

XML = get_template("xml")


def answer(code: str) -> str:
    return f"<reasoning>\nThe function follows.\n</reasoning>\n<answer>\n```python\n{code}\n```\n</answer>\n"


def pass_body(row) -> str:
    """The reference program with the entry point's body replaced by ``pass``."""
    entry_point = row["problem"].entry_point
    head = re.split(rf"(?m)^def {re.escape(entry_point)}\s*\(", row["answer"])[0]
    return f"{head}def {entry_point}(*args, **kwargs):\n    pass\n"


@pytest.fixture(scope="module")
def humaneval():
    task = get_task(TaskSpec(task="code", dataset="humaneval", split="test"))
    return task, task.load()


def test_every_humaneval_reference_passes(humaneval):
    task, rows = humaneval
    assert len(rows) == 164
    verdicts = task.check_batch([answer(row["answer"]) for row in rows], rows, XML)
    failed = [(row["id"], verdict.report) for row, verdict in zip(rows, verdicts) if not verdict.correct]
    assert not failed, failed
    assert all(verdict.fraction == 1.0 and verdict.formatted for verdict in verdicts)


def test_every_humaneval_pass_body_fails(humaneval):
    task, rows = humaneval
    verdicts = task.check_batch([answer(pass_body(row)) for row in rows], rows, XML)
    assert sum(verdict.correct for verdict in verdicts) == 0


def test_accuracy_reward_all_or_nothing_and_partial():
    task = get_task(TaskSpec(task="code", dataset="simple", split="test", limit=2))
    rows = task.load()
    row = rows[0]
    entry_point = row["problem"].entry_point
    half_right = (
        f"def {entry_point}(x):\n    return {row['answer'].split('return ', 1)[1].strip()} if x == 0 else None\n"
    )
    texts = [answer(row["answer"]), answer(half_right), "no code at all", answer("import os\nos._exit(0)\n")]
    columns = {"answer": [row["answer"]] * 4, "task_index": [row["task_index"]] * 4, "split": [row["split"]] * 4}
    (strict,), _ = build_rewards(["accuracy"], {"task": task, "template": "xml"})
    (partial,), _ = build_rewards([{"name": "accuracy", "partial": True}], {"task": task, "template": "xml"})
    assert strict(prompts=None, completions=texts, **columns) == [1.0, 0.0, 0.0, 0.0]
    total = row["problem"].test_count
    assert partial(prompts=None, completions=texts, **columns) == [1.0, pytest.approx(1 / total), 0.0, 0.0]


def test_simple_problems_have_working_references():
    names = {}
    for split in ("train", "test"):
        task = get_task(TaskSpec(task="code", dataset="simple", split=split))
        rows = task.load()
        names[split] = {row["problem"].entry_point for row in rows}
        rows = rows[:: len(rows) // 10]  # every family of each split (they cycle), ten programs
        assert all(verdict.correct for verdict in task.check_batch([answer(row["answer"]) for row in rows], rows, XML))
    assert len(names["train"]) == 60 and len(names["test"]) == 20 and not names["train"] & names["test"]
    assert len(get_task(TaskSpec(task="code", dataset="simple", split="validation")).load()) > 20


CHAINS = {"kind": "chains", "min_steps": 1, "max_steps": 3}


@pytest.mark.parametrize("options", [None, CHAINS, {**CHAINS, "domains": ["int"], "max_steps": 1}])
def test_simple_splits_partition_the_problems_by_identity(options):
    """A problem's split follows from its identity alone: the splits never share a problem, whatever their sizes
    and seeds (a larger train split, a test split drawn with another seed)."""
    seeds = {"train": 42, "validation": 42, "test": 7}
    sizes = {"train": 2000, "validation": 400, "test": 400}
    if options is None:  # basic: a small problem space, each split as many as it holds
        sizes = dict.fromkeys(sizes, 1000)
    elif options.get("domains") == ["int"]:  # 1-step integer chains: a few dozen problems in all
        sizes = dict.fromkeys(sizes, 10)
    identities = {}
    for split in simple.SPLITS:
        rows = simple.simple_rows(split, seeds[split], sizes[split], options)
        identities[split] = {row["identity"] for row in rows}
        assert len(identities[split]) == len(rows) and all(simple.split_of(key) == split for key in identities[split])
        assert [row["task_id"] for row in rows] == [f"simple/{split}/{index}" for index in range(len(rows))]
    assert not identities["train"] & identities["test"]
    assert not identities["validation"] & (identities["train"] | identities["test"])
    other_seed = {row["identity"] for row in simple.simple_rows("train", 1, sizes["train"], options)}
    assert not other_seed & identities["test"]


def test_simple_chains_give_hundreds_of_held_out_problems_with_working_references():
    rows = simple.simple_rows("test", options={**CHAINS, "size": 400})
    assert len(rows) == 400 and len({row["prompt"] for row in rows}) == 400
    steps = Counter(row["identity"].count("|") - 1 for row in rows)
    assert set(steps) == {1, 2, 3} and all(row["identity"].split("|")[1] in ("int", "str", "list") for row in rows)
    with pytest.raises(UserError, match=r"only \d+ distinct problems"):
        simple.simple_rows("test", options={**CHAINS, "domains": ["int"], "max_steps": 1, "size": 100})
    task = get_task(TaskSpec(task="code", dataset="simple", split="test", task_options={"simple": CHAINS}))
    rows = task.load()[:12]
    for row in rows:  # the reasoning builds the answer's expression step by step
        assert row["solution"].startswith("Start with ") and row["answer"].startswith("```python\ndef transform_")
        assert row["answer"].split("return ", 1)[1].removesuffix("\n```") == row["solution"].rsplit(": ", 1)[1]
    verdicts = task.check_batch([XML.format(row["solution"], row["answer"]) for row in rows], rows, XML)
    assert all(verdict.correct for verdict in verdicts), [verdict.report for verdict in verdicts]
    wrong = [XML.format(row["solution"], row["answer"].replace("return ", "return None and ")) for row in rows]
    assert not any(verdict.correct for verdict in task.check_batch(wrong, rows, XML))


def test_cold_start_data_from_simple_chains_is_every_verified_reference(tmp_path):
    output = tmp_path / "data"
    options = "{simple: {kind: chains, size: 24}}"
    arguments = ["--task", "code", "--dataset", "simple", "--task_options", options, "--template", "xml"]
    filters = ["--filters", "{max_repeated_ngram_share: null}", "--output", str(output)]
    assert cli_main(["cold-start-data", *arguments, "--source", "solutions", *filters]) == 0
    samples = [json.loads(line) for line in (output / "train.jsonl").read_text().splitlines()]
    rows = simple.simple_rows("train", options={"kind": "chains", "size": 24})
    assert len(samples) == 24 and [sample["task_index"] for sample in samples] == list(range(24))
    for sample, row in zip(samples, rows):
        completion = sample["completion"][0]["content"]
        assert row["explanation"] in completion and f"```python\n{row['reference_solution']}```" in completion


def test_eval_writes_test_reports_and_pass_at_k(tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "eval"
    code = cli_main(
        [
            "eval",
            "--model",
            tiny_model_dir,
            "--task",
            "code",
            "--dataset",
            "simple",
            "--limit",
            "2",
            "--k",
            "3",
            "--max_new_tokens",
            "8",
            "--output_dir",
            str(output),
            "--progress",
            "false",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in (output / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(len(record["samples"]) == 3 for record in records)
    sample = records[0]["samples"][0]
    assert sample["tests"]["total"] == 4 and sample["tests"]["status"] in ("no_code", "failed", "passed")
    assert "correct_samples" in records[0] and records[0]["gold"].startswith("def ")
    summary = json.loads((output / "summary.json").read_text())
    assert set(summary["pass_at"]) == {"1", "2", "3"} and summary["task"] == "code"


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


BAD_ROWS = {
    "no tests": ([{"prompt": "def f():\n", "test": "", "entry_point": "f"}], "row 1: no tests"),
    "unknown layout": ([{"question": "What is 2 + 2?", "answer": "4"}], "row 1: unknown layout"),
    "missing entry point": (
        [{"prompt": "def f():\n", "test": "def check(candidate):\n    assert candidate() == 1\n"}],
        "no entry_point",
    ),
    "tests that do not parse": ([{"question": "q", "test_list": ["assert f(("]}], "does not parse"),
}


@pytest.mark.parametrize("command", ["eval", "grpo"])
@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_are_one_line_exit_2_and_nothing_written(case, command, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows, expected = BAD_ROWS[case]
    dataset = _write(tmp_path / "bad.jsonl", rows)
    before = snapshot(tmp_path)
    code = cli_main(
        [
            command,
            "--model",
            tiny_model_dir,
            "--task",
            "code",
            "--dataset",
            dataset,
            "--split",
            "train",
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, expected)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "options, expected",
    [
        ("{limits: {cpu_seconds: 0}}", "cpu_seconds must be a positive finite number"),
        ("{limits: {gpu: 1}}", "unknown sandbox limit(s) gpu"),
        ('{sandbox: {url: "ftp://x"}}', "url must start with http"),
        ("{layout: xml}", "unknown code layout 'xml'"),
        ("{colour: red}", "unknown task_options for task 'code': colour"),
        ("{limits: {memory_bytes: 1000000}}", "code sandbox: a trivial program failed"),  # Python cannot start in 1 MB
        ("{simple: {kind: hard}}", "task_options.simple.kind must be one of basic, chains"),
        ("{simple: {steps: 2}}", "unknown task_options.simple key(s) steps"),
        ("{simple: {kind: chains, min_steps: 3, max_steps: 2}}", "min_steps 3 is more than max_steps 2"),
        ("{simple: {max_steps: 2}}", "max_steps apply to kind chains, not basic"),
        ("{simple: {kind: chains, domains: [float]}}", "domains must be a list of distinct int, str, list"),
    ],
)
def test_bad_task_options(options, expected, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = cli_main(
        [
            "eval",
            "--model",
            tiny_model_dir,
            "--task",
            "code",
            "--task_options",
            options,
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, expected)
    assert snapshot(tmp_path) == before


def test_humaneval_has_only_a_test_split(tiny_model_dir, tmp_path, capsys):
    code = cli_main(["grpo", "--model", tiny_model_dir, "--task", "code", "--output_dir", str(tmp_path / "g")])
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, "humaneval has only a test split")


def test_two_grpo_steps_on_code_log_the_code_reward(tiny_model_dir, tmp_path):
    output_dir = tmp_path / "grpo"
    code = cli_main(
        [
            "grpo",
            "--model",
            tiny_model_dir,
            "--task",
            "code",
            "--dataset",
            "simple",
            "--limit",
            "8",
            "--rewards",
            "xml.soft_format,accuracy",
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "1",
            "--max_completion_length",
            "16",
            "--max_prompt_length",
            "512",
            "--max_steps",
            "2",
            "--learning_rate",
            "1e-2",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert "rewards/accuracy/mean" in records[0] and records[0]["reward_failures/accuracy"] == 0.0
    logged = [json.loads(line) for line in (output_dir / "completions.jsonl").read_text().splitlines()]
    assert len(logged) == 8 and all("accuracy" in record["rewards"] for record in logged)


@pytest.mark.slow
def test_grpo_on_code_with_the_embedded_model(tmp_path):
    """A few real GRPO steps of SmolLM2-135M on the simple code problems: trains and logs the code reward."""
    output_dir = tmp_path / "grpo-code"
    code = cli_main(
        [
            "grpo",
            "--config",
            os.path.join(
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "quickstart", "grpo_code.yaml"
            ),
            "--max_steps",
            "2",
            "--output_dir",
            str(output_dir),
            "--report_to",
            "none",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert len([record for record in records if "rewards/accuracy/mean" in record]) == 2


def test_rejection_sampling_keeps_only_programs_that_pass():
    task = get_task(TaskSpec(task="code", dataset="simple", split="test", limit=2))
    rows = task.load()
    good = answer(rows[0]["answer"]).replace(
        "The function follows.", "The function adds the constant to x and returns it."
    )
    wrong = good.replace("return x +", "return x -")
    outputs = [
        [
            SimpleNamespace(text=good, truncated=False, tokens=40),
            SimpleNamespace(text=wrong, truncated=False, tokens=40),
        ],
        [SimpleNamespace(text=good, truncated=False, tokens=40)],
    ]  # the first problem's program on the second
    samples, stats = judge(
        rows, outputs, task, XML, filter_settings({}), RejectionSamplingConfig(task="code", max_per_question=None)
    )
    assert len(samples) == 1 and stats["removed"]["checker"] == 2
