"""``r1lab eval`` end to end on a tiny random model: files, fields, seeds, the task's checker, bad input."""

from __future__ import annotations

import json
import os

import pytest

from r1lab.cli import main as cli_main
from r1lab.tasks import TaskSpec, Verdict

QA_ROWS = [
    {"question": "What is 2 + 3?", "answer": "5"},
    {"question": "What is 10 - 4?", "answer": "6"},
    {"question": "How many legs do 3 cats have?", "answer": "12"},
]
MATH_ROWS = [
    {"problem": "What is one half as a fraction?", "answer": "\\frac{1}{2}"},
    {"problem": "Compute 3 * 4.", "answer": "12"},
    {"problem": "Which integer is 2^3?", "answer": "\\boxed{8}"},
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model gains nothing from threads, and on a busy shared CPU two threads stall each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def qa_file(tmp_path):
    return write_jsonl(tmp_path / "qa.jsonl", QA_ROWS)


def eval_args(model_dir, dataset, output_dir, *extra):
    return [
        "eval",
        "--model",
        model_dir,
        "--task",
        "jsonl",
        "--dataset",
        dataset,
        "--k",
        "3",
        "--temperature",
        "1.0",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "4",
        "--progress",
        "false",
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def read_outputs(output_dir):
    samples = [json.loads(line) for line in (output_dir / "samples.jsonl").read_text().splitlines()]
    summary = json.loads((output_dir / "summary.json").read_text())
    return samples, summary


def test_eval_writes_samples_and_summary(tiny_model_dir, qa_file, tmp_path, capsys):
    output_dir = tmp_path / "eval"
    assert cli_main(eval_args(tiny_model_dir, qa_file, output_dir)) == 0
    samples, summary = read_outputs(output_dir)
    assert len(samples) == len(QA_ROWS)
    first = samples[0]
    assert first["question"] == QA_ROWS[0]["question"] and first["gold"] == "5"
    assert set(first["greedy"]) == {"completion", "extracted", "correct", "formatted", "tokens", "truncated"}
    assert len(first["samples"]) == 3
    for sample in first["samples"]:
        assert set(sample) == {"completion", "extracted", "correct", "formatted", "tokens", "truncated"}
        assert 1 <= sample["tokens"] <= 6
    assert set(first["vote"]) == {"answer", "votes", "correct"}
    for key in (
        "greedy_accuracy",
        "pass_at_1",
        "cons_at_k",
        "pass_at_k",
        "format_rate",
        "greedy_format_rate",
        "mean_tokens",
        "p90_tokens",
        "truncation_rate",
        "tokens_per_second",
        "generated_tokens",
        "wall_seconds",
        "command",
        "settings",
        "versions",
        "passes",
    ):
        assert key in summary, key
    assert summary["k"] == 3 and summary["questions"] == 3 and summary["split"] == "test"
    assert summary["settings"]["temperature"] == 1.0 and summary["settings"]["seed"] == 0
    assert {"python", "torch", "transformers", "trl", "r1lab"} <= set(summary["versions"])
    assert summary["command"].startswith("r1lab eval ") and "--k 3" in summary["command"]
    assert summary["generated_tokens"] == sum(
        item["tokens"] for record in samples for item in [record["greedy"], *record["samples"]]
    )
    printed = capsys.readouterr().out
    assert "pass@1" in printed and "cons@3" in printed and "greedy accuracy" in printed


def test_same_seed_same_samples(tiny_model_dir, qa_file, tmp_path):
    runs = {}
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert cli_main(eval_args(tiny_model_dir, qa_file, tmp_path / name, "--seed", seed)) == 0
        runs[name] = [record["samples"] for record in read_outputs(tmp_path / name)[0]]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_correctness_comes_from_the_tasks_check(tiny_model_dir, qa_file, tmp_path, monkeypatch):
    from r1lab.tasks.local import QuestionAnswerTask

    calls = []

    def fake_check(self, completion, row, template):
        calls.append(row["answer"])
        return Verdict(extracted=row["answer"], correct=True, formatted=False)

    monkeypatch.setattr(QuestionAnswerTask, "check", fake_check)
    output_dir = tmp_path / "eval"
    assert cli_main(eval_args(tiny_model_dir, qa_file, output_dir)) == 0
    samples, summary = read_outputs(output_dir)
    assert len(calls) == len(QA_ROWS) * (3 + 1)  # k samples + the greedy one, each checked once
    assert summary["greedy_accuracy"] == summary["pass_at_1"] == summary["cons_at_k"] == 1.0
    assert summary["format_rate"] == 0.0
    assert samples[1]["vote"] == {"answer": "6", "votes": 3, "correct": True}


def test_math_task_with_think_template_and_latex_answers(tiny_model_dir, tmp_path, monkeypatch):
    """Scripted completions through the real math checker: 0.5 == \\frac{1}{2}, \\boxed{} golds, votes."""
    import r1lab.evaluate as evaluate
    from r1lab.generation import Completion

    def think(answer):
        return Completion(f"<think>\nworking\n</think>\nThe answer is \\boxed{{{answer}}}.", 12, False)

    scripted = {
        "greedy": [[think("0.5")], [think("13")], [think("8")]],
        "sampled": [
            [think("\\frac{1}{2}"), think("0.5"), think("2")],  # right, right, wrong → vote right
            [think("12"), think("13"), think("13")],  # majority wrong
            [Completion("<think>\nno end", 12, True), think("8"), think("9")],  # tie 8/9: 8 came first
        ],
    }

    def fake_generate(model, tokenizer, prompts, n=1, temperature=0.0, **settings):
        assert settings["stop_strings"] == ""  # think: no closing answer tag, stop at EOS
        assert all(prompt[0]["content"].startswith("A conversation between User and Assistant") for prompt in prompts)
        return scripted["greedy" if temperature == 0 else "sampled"]

    monkeypatch.setattr(evaluate, "generate", fake_generate)
    dataset = write_jsonl(tmp_path / "math.jsonl", MATH_ROWS)
    output_dir = tmp_path / "eval"
    code = cli_main(
        [
            "eval",
            "--model",
            tiny_model_dir,
            "--task",
            "math",
            "--dataset",
            dataset,
            "--template",
            "think",
            "--k",
            "3",
            "--progress",
            "false",
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    samples, summary = read_outputs(output_dir)
    assert [record["greedy"]["correct"] for record in samples] == [True, False, True]
    assert [[item["correct"] for item in record["samples"]] for record in samples] == [
        [True, True, False],
        [True, False, False],
        [False, True, False],
    ]
    assert summary["greedy_accuracy"] == pytest.approx(2 / 3)
    assert summary["pass_at_1"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 3) / 3)
    assert summary["cons_at_k"] == pytest.approx(2 / 3)
    assert summary["truncation_rate"] == pytest.approx(1 / 9)
    assert samples[2]["samples"][0]["extracted"] is None


def test_math_check_on_latex_answers(tmp_path):
    from r1lab.tasks import get_task
    from r1lab.templates import get_template

    task = get_task(TaskSpec(task="math", dataset=write_jsonl(tmp_path / "m.jsonl", MATH_ROWS), split="test"))
    rows = task.load()
    think = get_template("think")

    def correct(answer, row):
        return task.check(f"<think>\nx\n</think>\nSo \\boxed{{{answer}}}.", row, think).correct

    assert correct("0.5", rows[0]) and correct("\\frac12", rows[0]) and correct("\\dfrac{1}{2}", rows[0])
    assert not correct("\\frac{1}{3}", rows[0]) and not correct("2", rows[0])
    assert correct("12", rows[1]) and correct("12.0", rows[1])
    assert correct("8", rows[2]) and not correct("\\boxed{9}", rows[2])
    assert task.check("<think>\nno closing tag, \\boxed{0.5}", rows[0], think).extracted is None


def test_math_check_on_a_tuple_gold(tmp_path):
    from r1lab.tasks import get_task
    from r1lab.templates import get_template

    rows = [{"problem": "Convert (0,3) to polar.", "answer": "\\left( 3, \\frac{\\pi}{2} \\right)"}]
    task = get_task(TaskSpec(task="math", dataset=write_jsonl(tmp_path / "m.jsonl", rows), split="test"))
    row = task.load()[0]
    think = get_template("think")
    assert task.check("<think>\nx\n</think>\n\\boxed{(3, \\frac{\\pi}{2})}", row, think).correct
    assert not task.check("<think>\nx\n</think>\n\\boxed{3}", row, think).correct


def test_aime_2024_from_the_hub_reads_its_only_split(monkeypatch):
    import r1lab.tasks.local as local
    from r1lab.tasks import get_task

    asked = []

    def fake_hub(dataset_id, config_name, split):
        asked.append((dataset_id, split))
        return [{"problem": "Find x.", "answer": 204, "id": 60}]

    monkeypatch.setattr(local, "read_hub_rows", fake_hub)
    rows = get_task(TaskSpec(task="math", dataset="HuggingFaceH4/aime_2024", split="test")).load()
    assert rows[0]["answer"] == "204" and rows[0]["question"] == "Find x."
    get_task(TaskSpec(task="math", split="test")).load()
    get_task(TaskSpec(task="math", split="train")).load()
    assert asked == [
        ("HuggingFaceH4/aime_2024", "train"),
        ("HuggingFaceH4/MATH-500", "test"),
        ("HuggingFaceH4/MATH-500", "train"),
    ]


def test_run_eval_hook(tiny_model_dir, qa_file, tmp_path):
    from r1lab.evaluate import run_eval

    spec = TaskSpec(task="jsonl", dataset=qa_file, split="train", limit=1)
    output_dir = tmp_path / "hook"
    summary = run_eval(
        tiny_model_dir, spec, "xml", k=2, limit=2, max_new_tokens=4, progress=False, output_dir=str(output_dir)
    )
    assert summary["questions"] == 2 and summary["k"] == 2 and summary["split"] == "test"
    assert (output_dir / "summary.json").is_file()
    again = run_eval(
        tiny_model_dir, spec, "xml", k=2, limit=2, max_new_tokens=4, progress=False, output_dir=str(output_dir)
    )
    assert again["questions"] == 2  # the hook replaces its own earlier eval


def _model_dir_without_weights(tmp_path):
    folder = tmp_path / "no-weights"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return str(folder)


def _gsm8k_train_only(tmp_path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "2\n#### 2"}) + "\n")
    return str(folder)


BAD_INPUTS = [
    (["--k", "0"], "k must be at least 1"),
    (["--temperature", "-0.5"], "temperature must be at least 0.0"),
    (["--top_p", "0"], "top_p"),
    (["--task", "nonsense"], "unknown task 'nonsense'"),
    (["--task", "gym:no_such_task"], "unknown reasoning-gym task"),
    (["--template", "yaml"], "unknown template 'yaml'"),
    (["--limit", "99"], "limit 99 is beyond the data"),
    (["--kk", "3"], "unknown config key 'kk'"),
    (["--k", "many"], "k: expected an integer"),
    ("no-weights", "no weights"),
    ("no-split", "no 'test' split"),
]


@pytest.mark.parametrize("extra, message", BAD_INPUTS, ids=[message for _, message in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(extra, message, tiny_model_dir, qa_file, tmp_path, capsys):
    output_dir = tmp_path / "never"
    arguments = eval_args(tiny_model_dir, qa_file, output_dir)
    if extra == "no-weights":
        arguments[arguments.index("--model") + 1] = _model_dir_without_weights(tmp_path)
    elif extra == "no-split":
        arguments += ["--task", "gsm8k", "--dataset", _gsm8k_train_only(tmp_path)]
    else:
        arguments += extra
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("r1lab: error: ") and message in error[-1], error
    assert not output_dir.exists()


def test_existing_summary_needs_overwrite(tiny_model_dir, qa_file, tmp_path, capsys):
    output_dir = tmp_path / "eval"
    output_dir.mkdir()
    (output_dir / "summary.json").write_text('{"pass_at_1": 0.5}')
    assert cli_main(eval_args(tiny_model_dir, qa_file, output_dir)) == 2
    assert "--overwrite true" in capsys.readouterr().err
    assert sorted(os.listdir(output_dir)) == ["summary.json"]


def _summary(path, **values):
    base = {
        "model": "m",
        "k": 4,
        "greedy_accuracy": 0.25,
        "pass_at_1": 0.2,
        "cons_at_k": 0.3,
        "pass_at_k": 0.5,
        "format_rate": 0.9,
        "truncation_rate": 0.1,
        "mean_tokens": 100.0,
        "p90_tokens": 180,
        "tokens_per_second": 80.0,
        "settings": {"task": "gsm8k", "k": 4, "temperature": 0.6},
    }
    base.update(values)
    path.write_text(json.dumps(base))
    return str(path)


def test_compare_prints_deltas(tmp_path, capsys):
    before = _summary(tmp_path / "a.json")
    after = _summary(
        tmp_path / "b.json", pass_at_1=0.35, cons_at_k=0.3, settings={"task": "gsm8k", "k": 4, "temperature": 1.0}
    )
    assert cli_main(["eval", "--compare", before, after]) == 0
    printed = capsys.readouterr().out
    pass_line = next(line for line in printed.splitlines() if line.strip().startswith("pass@1"))
    assert "0.2000" in pass_line and "0.3500" in pass_line and "+0.1500" in pass_line
    assert "cons@4" in printed and "+0.0000" in printed
    assert "temperature: 0.6 vs 1.0" in printed


def test_compare_accepts_run_directories(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _summary(tmp_path / "a" / "summary.json")
    _summary(tmp_path / "b" / "summary.json", greedy_accuracy=0.5)
    assert cli_main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "+0.2500" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing", "garbled", "not-a-summary", "usage"])
def test_compare_bad_files_are_user_errors(problem, tmp_path, capsys):
    good = _summary(tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    if problem == "garbled":
        bad.write_text('{"pass_at_1": 0.')
    elif problem == "not-a-summary":
        bad.write_text('["a list"]')
    arguments = ["eval", "--compare", good, str(bad)] if problem != "usage" else ["eval", "--compare", good]
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("r1lab: error: ") and len(error.strip().splitlines()) == 1
