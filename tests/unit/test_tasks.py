"""Tasks (rows, gold answers, checking) and templates (extracting and splitting completions)."""

from __future__ import annotations

import json
import os
import re

import pytest

from r1lab.errors import UserError
from r1lab.tasks import TaskSpec, get_task
from r1lab.tasks.gsm8k import gold_from_solution, rationale_from_solution
from r1lab.templates import TEMPLATE_NAMES, get_template, last_boxed

XML = get_template("xml")
THINK = get_template("think")
CHAIN_OPTIONS = {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 2}


def gsm8k(dataset, **spec) -> object:
    return get_task(TaskSpec(task="gsm8k", dataset=str(dataset), **spec))


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------------
# GSM8K from the local fixture
# ---------------------------------------------------------------------------------------------------
def test_gsm8k_fixture_is_in_the_repository(gsm8k_fixture_dir):
    for name in ("train.jsonl", "test.jsonl", "LICENSE", "README.md"):
        assert os.path.isfile(os.path.join(gsm8k_fixture_dir, name)), name


def test_gsm8k_train_rows(gsm8k_fixture_dir):
    rows = gsm8k(gsm8k_fixture_dir).load()
    assert len(rows) == 31
    first = rows[0]
    assert first["question"].startswith("Natalia sold clips to 48 of her friends")
    assert first["answer"] == "72"
    assert first["solution"] == (
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May."
    )
    assert [row["task_index"] for row in rows] == list(range(31))
    for row in rows:
        assert "<<" not in row["solution"] and ">>" not in row["solution"]
        assert "####" not in row["solution"]
        assert re.fullmatch(r"-?\d+(\.\d+)?", row["answer"]), row["answer"]


def test_gsm8k_gold_drops_thousands_separators(gsm8k_fixture_dir):
    rows = gsm8k(gsm8k_fixture_dir).load()
    with open(os.path.join(gsm8k_fixture_dir, "train.jsonl"), encoding="utf-8") as handle:
        raw = [json.loads(line) for line in handle]
    comma_rows = [index for index, item in enumerate(raw) if re.search(r"#### \d{1,3},\d{3}", item["answer"])]
    assert comma_rows, "the fixture keeps a row whose gold has a thousands separator"
    assert rows[comma_rows[0]]["answer"] == "1080"  # "#### 1,080"


def test_gsm8k_test_split(gsm8k_fixture_dir):
    task = gsm8k(gsm8k_fixture_dir, split="test")
    rows = task.load()
    assert len(rows) == 31
    assert rows[-1]["answer"] == "2125"  # "#### 2,125"
    assert task.load(split="train")[0]["answer"] == "72"


def test_gsm8k_gold_and_rationale_helpers():
    solution = "He pays 2*$1,000=$<<2*1000=2000>>2,000.\nThen $<<2000+80=2080>>2,080.\n#### 2,080"
    assert gold_from_solution(solution) == "2080"
    assert rationale_from_solution(solution) == "He pays 2*$1,000=$2,000.\nThen $2,080."
    assert gold_from_solution("no final answer") is None


def test_gsm8k_limit(gsm8k_fixture_dir):
    assert len(gsm8k(gsm8k_fixture_dir, limit=5).load()) == 5
    assert len(gsm8k(gsm8k_fixture_dir).load(limit=3)) == 3
    assert len(gsm8k(gsm8k_fixture_dir, limit=31).load()) == 31


@pytest.mark.parametrize("limit, message", [(32, "beyond the data.*31 rows"), (0, "at least 1"), (-1, "at least 1")])
def test_gsm8k_bad_limit(gsm8k_fixture_dir, limit, message):
    with pytest.raises(UserError, match=message):
        gsm8k(gsm8k_fixture_dir, limit=limit).load()


def test_skip_leaves_out_the_first_rows_before_limit(gsm8k_fixture_dir):
    every_row = gsm8k(gsm8k_fixture_dir).load()
    skipped = gsm8k(gsm8k_fixture_dir, skip=10, limit=5).load()
    assert [row["question"] for row in skipped] == [row["question"] for row in every_row[10:15]]
    assert len(gsm8k(gsm8k_fixture_dir, skip=30).load()) == 1


@pytest.mark.parametrize(
    "skip, limit, message",
    [(31, None, "skip 31 leaves no rows.*31 rows"), (30, 2, "limit 2 is beyond the data.*1 rows after skipping 30")],
)
def test_gsm8k_bad_skip(gsm8k_fixture_dir, skip, limit, message):
    with pytest.raises(UserError, match=message):
        gsm8k(gsm8k_fixture_dir, skip=skip, limit=limit).load()


def test_gsm8k_checks_answers_by_value(gsm8k_fixture_dir):
    task = gsm8k(gsm8k_fixture_dir)
    rows = task.load()
    comma_row = next(row for row in rows if row["answer"] == "1080")
    for answer in ("1080", "1,080", "$1,080", "\\boxed{1080}", "1080.00"):
        verdict = task.check(XML.format("work", answer), comma_row, XML)
        assert verdict.correct and verdict.formatted, answer
    verdict = task.check(XML.format("work", "1081"), comma_row, XML)
    assert not verdict.correct and verdict.extracted == "1081"
    verdict = task.check("1080", comma_row, XML)
    assert verdict.extracted is None and not verdict.correct and not verdict.formatted


def test_gsm8k_prompt_uses_the_template_system_prompt(gsm8k_fixture_dir):
    task = gsm8k(gsm8k_fixture_dir)
    row = task.load(limit=1)[0]
    assert task.prompt(row["question"], XML) == [
        {"role": "system", "content": XML.system_prompt},
        {"role": "user", "content": row["question"]},
    ]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"question_key": "q"}, "unknown config key 'question_key'"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": "two"}, "max_steps"),
    ],
)
def test_gsm8k_bad_task_options(gsm8k_fixture_dir, options, message):
    with pytest.raises(UserError, match=message):
        get_task(TaskSpec(task="gsm8k", dataset=gsm8k_fixture_dir, task_options=options))


def test_gsm8k_max_steps_keeps_short_solutions_after_skip(gsm8k_fixture_dir):
    with open(os.path.join(gsm8k_fixture_dir, "train.jsonl"), encoding="utf-8") as handle:
        marks = [item["answer"].count("<<") for item in map(json.loads, handle)]
    everything = gsm8k(gsm8k_fixture_dir).load()
    assert [row["steps"] for row in everything] == marks
    short = gsm8k(gsm8k_fixture_dir, skip=5, task_options={"max_steps": 2}).load()
    assert [row["task_index"] for row in short] == [i for i, count in enumerate(marks) if i >= 5 and count <= 2]
    assert 0 < len(short) < len(marks) - 5
    first_two = gsm8k(gsm8k_fixture_dir, skip=5, limit=2, task_options={"max_steps": 2}).load()
    assert first_two == short[:2]
    with pytest.raises(UserError, match="limit 99 is beyond the data"):
        gsm8k(gsm8k_fixture_dir, limit=99, task_options={"max_steps": 2}).load()
    assert min(marks[-1:]) > 1  # the fixture's last row has more than one step
    with pytest.raises(UserError, match="max_steps 1 keeps none"):
        gsm8k(gsm8k_fixture_dir, skip=len(marks) - 1, task_options={"max_steps": 1}).load()


# ---------------------------------------------------------------------------------------------------
# Bad datasets
# ---------------------------------------------------------------------------------------------------
def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\n\n{"question": oops}\n', encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(f"{path}:3: malformed JSON")):
        gsm8k(path).load()


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(f"{path}:2: expected a JSON object")):
        gsm8k(path).load()


def test_missing_columns(tmp_path):
    path = write_jsonl(tmp_path / "cols.jsonl", [{"q": "What?", "a": "#### 1"}])
    with pytest.raises(UserError, match="lacks column\\(s\\) question, answer"):
        gsm8k(path).load()


def test_null_answer_counts_as_missing(tmp_path):
    path = write_jsonl(tmp_path / "null.jsonl", [{"question": "What?", "answer": None}])
    with pytest.raises(UserError, match="row 1 lacks column\\(s\\) answer"):
        get_task(TaskSpec(task="jsonl", dataset=path)).load()


def test_gsm8k_answer_without_final_marker(tmp_path):
    path = write_jsonl(
        tmp_path / "nohash.jsonl", [{"question": "q", "answer": "#### 1"}, {"question": "q", "answer": "2"}]
    )
    with pytest.raises(UserError, match="row 2: answer has no '####'"):
        gsm8k(path).load()


@pytest.mark.parametrize("name", ["missing.jsonl", "missing_dir", "a/b/c"])
def test_missing_path(tmp_path, name):
    with pytest.raises(UserError, match="dataset not found"):
        gsm8k(tmp_path / name).load()


def test_directory_without_the_split(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "q", "answer": "#### 1"}])
    with pytest.raises(UserError, match="no 'test' split"):
        gsm8k(tmp_path, split="test").load()


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError, match="empty"):
        gsm8k(path).load()


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(UserError, match="not UTF-8"):
        gsm8k(path).load()


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_text("not parquet at all", encoding="utf-8")
    with pytest.raises(UserError, match="cannot read parquet"):
        gsm8k(path).load()


# ---------------------------------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------------------------------
def write_parquet(path, rows) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), str(path))
    return str(path)


PARQUET_ROWS = [
    {"question": "How many?", "answer": "2 * 500 = <<2*500=1000>>1,000\n#### 1,000"},
    {"question": "And now?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
]


def test_parquet_file(tmp_path):
    path = write_parquet(tmp_path / "data.parquet", PARQUET_ROWS)
    rows = gsm8k(path).load()
    assert [row["answer"] for row in rows] == ["1000", "7"]
    assert rows[0]["solution"] == "2 * 500 = 1,000"


def test_parquet_directory_in_the_hub_layout(tmp_path):
    # The seed reads ./dataset/gsm8k/main/train-*.parquet
    write_parquet(tmp_path / "gsm8k" / "main" / "train-00000-of-00002.parquet", PARQUET_ROWS[:1])
    write_parquet(tmp_path / "gsm8k" / "main" / "train-00001-of-00002.parquet", PARQUET_ROWS[1:])
    write_parquet(tmp_path / "gsm8k" / "main" / "test-00000-of-00001.parquet", PARQUET_ROWS[1:])
    assert [row["answer"] for row in gsm8k(tmp_path / "gsm8k").load()] == ["1000", "7"]
    assert [row["answer"] for row in gsm8k(tmp_path / "gsm8k", split="test").load()] == ["7"]


def test_parquet_with_generic_task(tmp_path):
    path = write_parquet(tmp_path / "qa.parquet", [{"problem": "1+1?", "solution_text": "2"}])
    task = get_task(
        TaskSpec(task="jsonl", dataset=path, task_options={"question_key": "problem", "answer_key": "solution_text"})
    )
    assert task.load() == [{"question": "1+1?", "answer": "2", "task_index": 0}]


# ---------------------------------------------------------------------------------------------------
# Generic jsonl task
# ---------------------------------------------------------------------------------------------------
def test_jsonl_task_default_columns(tmp_path):
    path = write_jsonl(
        tmp_path / "qa.jsonl",
        [{"question": "2+2?", "answer": 4, "solution": "2+2=4"}, {"question": "x?", "answer": "\\frac{1}{2}"}],
    )
    rows = get_task(TaskSpec(task="jsonl", dataset=path)).load()
    assert rows == [
        {"question": "2+2?", "answer": "4", "task_index": 0, "solution": "2+2=4"},
        {"question": "x?", "answer": "\\frac{1}{2}", "task_index": 1},
    ]


def test_jsonl_task_with_question_and_answer_keys(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"prompt_text": "3*3?", "target": "9", "why": "3*3=9"}])
    task = get_task(
        TaskSpec(
            task="jsonl",
            dataset=path,
            task_options={"question_key": "prompt_text", "answer_key": "target", "solution_key": "why"},
        )
    )
    rows = task.load()
    assert rows == [{"question": "3*3?", "answer": "9", "task_index": 0, "solution": "3*3=9"}]
    assert task.check(XML.format("3*3", "9.0"), rows[0], XML).correct


def test_jsonl_task_keys_that_the_file_lacks(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"prompt_text": "3*3?", "target": "9"}])
    with pytest.raises(UserError, match="lacks column\\(s\\) question, answer"):
        get_task(TaskSpec(task="jsonl", dataset=path)).load()


def test_jsonl_task_unknown_option(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "1"}])
    with pytest.raises(UserError, match=r"unknown task_options.*questionkey"):
        get_task(TaskSpec(task="jsonl", dataset=path, task_options={"questionkey": "q"})).load()


def test_jsonl_task_needs_a_dataset():
    with pytest.raises(UserError, match="needs a dataset"):
        get_task(TaskSpec(task="jsonl")).load()


def test_jsonl_task_empty_answer(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "  "}])
    with pytest.raises(UserError, match="row 1: empty answer"):
        get_task(TaskSpec(task="jsonl", dataset=path)).load()


def test_unknown_task():
    with pytest.raises(UserError, match="unknown task 'gsm9k'"):
        get_task(TaskSpec(task="gsm9k"))


# ---------------------------------------------------------------------------------------------------
# reasoning-gym
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain_sum():
    task = get_task(TaskSpec(task="gym:chain_sum", task_size=40, task_seed=7, task_options=dict(CHAIN_OPTIONS)))
    return task, task.load(), task.load(split="test")


def test_gym_chain_sum_rows_follow_task_options(chain_sum):
    task, train, _ = chain_sum
    assert task.name == "gym:chain_sum"
    assert len(train) == 40
    for row in train:
        expression = row["question"].rsplit(":", 1)[-1].strip().rstrip("=").strip()
        numbers = re.findall(r"\d+", expression)
        assert 3 <= len(numbers) <= 4, row["question"]
        assert all(1 <= len(number) <= 2 for number in numbers), row["question"]
        assert row["split"] == "train"
        assert row["solution"].endswith(f"So the result is {row['answer']}.")


def test_gym_train_and_test_are_disjoint(chain_sum):
    _, train, test = chain_sum
    assert test and all(row["split"] == "test" for row in test)
    assert not {row["question"] for row in train} & {row["question"] for row in test}


def test_gym_splits_leave_out_the_questions_of_earlier_splits():
    # 2 terms of 1 digit: a few hundred distinct questions, so 300-question draws overlap unless left out
    spec = {"task": "gym:chain_sum", "task_size": 300, "task_seed": 3}
    options = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
    task = get_task(TaskSpec(**spec, task_options=options))
    train, validation, test = (
        {row["question"] for row in task.load(split=split)} for split in ("train", "validation", "test")
    )
    assert train and validation and test
    assert not train & validation
    assert not (train | validation) & test


def test_gym_generation_is_deterministic(chain_sum):
    _, train, _ = chain_sum
    again = get_task(TaskSpec(task="gym:chain_sum", task_size=40, task_seed=7, task_options=dict(CHAIN_OPTIONS))).load()
    assert again == train
    other = get_task(TaskSpec(task="gym:chain_sum", task_size=40, task_seed=8, task_options=dict(CHAIN_OPTIONS))).load()
    assert [row["question"] for row in other] != [row["question"] for row in train]


def test_gym_skip_keeps_task_indices_for_checking(chain_sum):
    _, train, _ = chain_sum
    skipping = get_task(
        TaskSpec(task="gym:chain_sum", task_size=40, task_seed=7, task_options=dict(CHAIN_OPTIONS), skip=3)
    )
    rows = skipping.load(limit=2)
    assert [row["task_index"] for row in rows] == [row["task_index"] for row in train[3:5]]
    assert skipping.is_correct(rows[0]["answer"], rows[0])


def test_gym_limit(chain_sum):
    task, _, _ = chain_sum
    assert len(task.load(limit=5)) == 5
    with pytest.raises(UserError, match="beyond the data"):
        task.load(limit=41)


def test_gym_check(chain_sum):
    task, train, test = chain_sum
    for row in (train[0], test[0]):
        assert task.check(XML.format("work", row["answer"]), row, XML).correct
        assert not task.check(XML.format("work", str(int(row["answer"]) + 1)), row, XML).correct
        assert not task.check("no answer", row, XML).correct
        assert not task.check(XML.format("work", "9^{9^{9^{9}}}"), row, XML).correct


def test_gym_correctness_comes_from_reasoning_gyms_score_answer(chain_sum, monkeypatch):
    task, train, _ = chain_sum
    row = train[0]
    calls = []

    def spy(self, answer, entry):
        calls.append((answer, entry["question"]))
        return 1.0 if answer == "forty-two" else 0.0

    dataset_class = type(task._entries[("train", row["task_index"])]["dataset"])
    monkeypatch.setattr(dataset_class, "score_answer", spy)
    assert task.check(XML.format("work", "forty-two"), row, XML).correct
    assert not task.check(XML.format("work", row["answer"]), row, XML).correct
    assert calls == [("forty-two", row["question"]), (row["answer"], row["question"])]


def test_gym_scorer_that_raises_is_a_wrong_answer(chain_sum, monkeypatch):
    task, train, _ = chain_sum
    dataset_class = type(task._entries[("train", train[0]["task_index"])]["dataset"])

    def explode(self, answer, entry):
        raise ValueError("hostile")

    monkeypatch.setattr(dataset_class, "score_answer", explode)
    assert not task.check(XML.format("work", train[0]["answer"]), train[0], XML).correct


def test_gym_check_on_a_fresh_task_object_loads_the_entry(chain_sum):
    _, _, test = chain_sum
    fresh = get_task(TaskSpec(task="gym:chain_sum", task_size=40, task_seed=7, task_options=dict(CHAIN_OPTIONS)))
    assert fresh.check(XML.format("work", test[3]["answer"]), test[3], XML).correct


def test_accuracy_reward_uses_the_gym_task(chain_sum):
    from r1lab.rewards import build_rewards

    task, train, _ = chain_sum
    (reward,), _ = build_rewards(["accuracy"], {"task": task, "template": "xml"})
    rows = train[:2]
    scores = reward(
        prompts=[task.prompt(row["question"], XML) for row in rows],
        completions=[XML.format("w", rows[0]["answer"]), XML.format("w", "-999")],
        answer=[row["answer"] for row in rows],
        task_index=[row["task_index"] for row in rows],
        split=[row["split"] for row in rows],
    )
    assert scores == [1.0, 0.0]


def test_unknown_gym_task():
    with pytest.raises(UserError, match="unknown reasoning-gym task 'chain_summ'"):
        get_task(TaskSpec(task="gym:chain_summ"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"bogus": 1}, "unexpected keyword argument 'bogus'"),
        ({"min_terms": 5, "max_terms": 2}, "max_terms must be >= min_terms"),
        ({"min_digits": 0}, "min_digits must be positive"),
        ({"min_terms": "three"}, "cannot create reasoning-gym task"),
    ],
)
def test_gym_bad_option(options, message):
    with pytest.raises(UserError, match=message):
        get_task(TaskSpec(task="gym:chain_sum", task_size=5, task_options=options)).load()


def test_gym_bad_split_and_size():
    with pytest.raises(UserError, match="unknown split 'dev'"):
        get_task(TaskSpec(task="gym:chain_sum", task_size=5, split="dev")).load()
    with pytest.raises(UserError, match="task_size must be at least 1"):
        get_task(TaskSpec(task="gym:chain_sum", task_size=0)).load()


# ---------------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------------
def test_template_names():
    assert set(TEMPLATE_NAMES) == {"xml", "think"}
    with pytest.raises(UserError, match="unknown template 'json'"):
        get_template("json")


def test_xml_system_prompt_is_the_seeds():
    assert (
        XML.system_prompt
        == "\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n"
    )


@pytest.mark.parametrize(
    "text, answer",
    [
        ("<reasoning>\nx\n</reasoning>\n<answer>\n72\n</answer>\n", "72"),
        ("<reasoning>\nx\n</reasoning>\n<answer>\n 1,080 \n</answer>\ntrailing", "1,080"),
        ("<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{72}\n</answer>\n", "72"),
        ("<reasoning>\nx\n</reasoning>\n<answer>\nso \\boxed{1} no \\boxed{\\frac{1}{2}}\n</answer>\n", "\\frac{1}{2}"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),  # the last answer, like the seed
        ("<reasoning>\nx\n</reasoning>\n<answer>\n72", "72"),  # cut off before </answer>
        ("<answer>72</answer>", "72"),
        ("no tags at all: 72", None),
        ("<reasoning>\nthe answer is 72\n</reasoning>\n", None),
        ("<reasoning>\nx\n</reasoning>\n<answer>\n\n</answer>\n", None),  # empty answer
        ("<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{}\n</answer>\n", None),
    ],
)
def test_xml_extract_answer(text, answer):
    assert XML.extract_answer(text) == answer


@pytest.mark.parametrize(
    "text, answer",
    [
        ("<think>\nwork\n</think>\nThe answer is \\boxed{72}.", "72"),
        ("<think>\nwork\n</think>\n72", "72"),
        ("<think>\nwork \\boxed{5}\n</think>\nSo 72.", "So 72."),  # a box in the reasoning does not count
        ("<think>\nwork\n</think>\n\\boxed{\\frac{a}{b}} or \\boxed{x^{2}}", "x^{2}"),
        ("<think>\nwork\n</think>\n", None),
        ("<think>\nwork\n</think>\n\\boxed{}", None),
        ("no reasoning tags \\boxed{72}", None),
        ("<think>\nnever closes \\boxed{72}", None),
    ],
)
def test_think_extract_answer(text, answer):
    assert THINK.extract_answer(text) == answer


@pytest.mark.parametrize(
    "template, text, expected",
    [
        (
            XML,
            "<reasoning>\nline 1\nline 2\n</reasoning>\n<answer>\n72\n</answer>\n",
            ("line 1\nline 2", "<answer>\n72\n</answer>"),
        ),
        (XML, "<reasoning>\nunfinished", ("unfinished", "")),
        (XML, "plain text", ("plain text", "")),
        (
            THINK,
            "<think>\nstep 1\nstep 2\n</think>\nThe answer is \\boxed{3}.",
            ("step 1\nstep 2", "The answer is \\boxed{3}."),
        ),
        (THINK, "preamble <think>\nx\n</think> y", ("x", "y")),
        (THINK, "<think>\nnever closes", ("never closes", "")),
    ],
)
def test_split_reasoning_from_summary(template, text, expected):
    assert template.split(text) == expected


@pytest.mark.parametrize(
    "template, text, formatted",
    [
        (XML, "<reasoning>\na\nb\n</reasoning>\n<answer>\n72\n</answer>\n", True),
        (XML, "<reasoning>\na\n</reasoning>\n<answer>\n72\n</answer>", True),
        (XML, "\n<reasoning>\na\n</reasoning>\n<answer>\n72\n</answer>\n\n", True),
        (XML, "<reasoning>\na\n</reasoning>\n<answer>\n72\n</answer>\nmore", False),
        (XML, "<reasoning>a</reasoning><answer>72</answer>", False),
        (XML, "<reasoning>\na\n</reasoning>\n<answer>\n72\n</answer>\n<answer>\n73\n</answer>\n", False),
        (XML, "<reasoning>\na\n</reasoning>\n<answer>\n72", False),
        (XML, "<think>\na\n</think>\n72", False),
        (THINK, "<think>\na\nb\n</think>\n\\boxed{72}", True),
        (THINK, "<think>a</think>72", True),
        (THINK, "<think>\na\n</think>\n", False),
        (THINK, "<think>\n\n</think>\n72", False),
        (THINK, "<think>\na\n</think>\n72\n<think>\nb\n</think>\n73", False),
        (THINK, "<reasoning>\na\n</reasoning>\n<answer>\n72\n</answer>\n", False),
    ],
)
def test_is_formatted(template, text, formatted):
    assert template.is_formatted(text) is formatted


@pytest.mark.parametrize("template", [XML, THINK])
def test_format_round_trips(template):
    text = template.format("  step one\nstep two  ", " 1,080 ")
    assert template.is_formatted(text)
    assert template.extract_answer(text) == "1,080"
    assert template.split(text)[0] == "step one\nstep two"


def test_last_boxed():
    assert last_boxed("\\boxed{1} and \\boxed{a{b}c}") == "a{b}c"
    assert last_boxed("\\boxed{ 7 }") == "7"
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("\\boxed") is None
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{" + "{" * 10_000 + "}" * 10_000 + "}") == "{" * 10_000 + "}" * 10_000
