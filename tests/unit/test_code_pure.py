"""Pure functions of task code: extraction, layouts, output comparison, the wire format, verdict reading, test
counting, mount planning and the pass@k estimator."""

from __future__ import annotations

import math
import re

import pytest

from r1lab.code import _testcode, _wire
from r1lab.code.problems import (
    answer_part,
    extract_code,
    humaneval_preamble,
    last_code_block,
    outputs_match,
    problem_from_row,
    question_from_row,
)
from r1lab.code.sandbox import plan_masks, read_verdicts
from r1lab.errors import UserError
from r1lab.eval_metrics import aggregate, pass_at_k_estimate, pass_at_k_values


def test_last_python_block_of_the_answer_part():
    xml = "<reasoning>\n```python\nwrong()\n```\n</reasoning>\n<answer>\n```python\nfirst()\n```\ntext\n```py\nlast()\n```\n</answer>"
    assert extract_code(xml, "xml") == "last()\n"
    think = "<think>```python\nnot_this()\n```</think>\nSo:\n```python\ndef f():\n    return 1\n```"
    assert extract_code(think, "think") == "def f():\n    return 1\n"
    assert extract_code("```python\nx = 1\n```", "xml") is None  # no <answer>: no answer
    assert extract_code("<answer>\n```javascript\nx\n```\n</answer>", "xml") is None
    assert extract_code("<answer>\n```python\nx = 1\n", "xml") is None  # never closed (cut at the length cap)
    assert last_code_block("```\nbare()\n```") == "bare()\n"
    assert answer_part("<answer>a</answer>", "xml") == "a" and answer_part("no tags", "think") == ""


def test_outputs_match_tokens_and_numbers():
    assert outputs_match("3\n", "3") and outputs_match("1 2  \n3\n\n", "1 2 3")
    assert outputs_match("0.3333333", "0.33333333") and not outputs_match("0.34", "0.33")
    assert not outputs_match("3 4", "3") and not outputs_match("yes", "YES") and not outputs_match("nan", "nan0")


def test_outputs_match_compares_integers_exactly():
    """Issue 31: a relative 1e-6 on integers let 1000000000 pass for 1000000007. Expected integers need the exact
    integer; a tolerance applies only where the expected token is a float."""
    assert not outputs_match("1000000000", "1000000007") and not outputs_match("1000001", "1000000")
    assert not outputs_match("3.0", "3") and not outputs_match("3.0000001", "3")
    assert outputs_match("+5 007", "5 7") and outputs_match("2", "2.000000") and outputs_match("1e3", "1000.0")
    assert outputs_match("0.1000001", "0.1") and not outputs_match("0.1000001", "0.1", tolerance=0.0)
    assert outputs_match("0.11", "0.1", tolerance=0.1)


def test_float_tolerance_per_problem():
    row = {"inputs": ["1\n"], "outputs": ["0.5\n"]}
    assert problem_from_row(row, "row 1").float_tolerance == 1e-6
    assert problem_from_row({**row, "float_tolerance": 1e-3}, "row 1").float_tolerance == 1e-3
    assert (
        problem_from_row({"tests": [{"input": "", "output": "1"}], "float_tolerance": 0}, "row 2").float_tolerance
        == 0.0
    )
    for bad, message in (
        (5, "at most 0.1"),
        (-1e-3, "at least 0.0"),
        ("x", "must be a number"),
        (float("nan"), "finite"),
    ):
        with pytest.raises(UserError, match=message):
            problem_from_row({**row, "float_tolerance": bad}, "row 1")


HUMANEVAL_ROW = {
    "task_id": "X/0",
    "entry_point": "inc",
    "prompt": 'import math\n\ndef helper(x):\n    return x\n\n\ndef inc(x):\n    """Add one."""\n',
    "canonical_solution": "    return x + 1\n",
    "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert True\n    for i in range(3):\n        assert candidate(i) == i + 1\n",
}


def test_humaneval_layout():
    problem = problem_from_row(HUMANEVAL_ROW, "row 1")
    assert problem.kind == "assert" and problem.style == "check" and problem.entry_point == "inc"
    assert problem.preamble == "import math\n\ndef helper(x):\n    return x\n\n\n"
    assert problem.test_count == 2  # `assert True` runs but does not count; the loop is one test
    assert "```python\nimport math" in question_from_row(HUMANEVAL_ROW, problem, "row 1")
    assert humaneval_preamble("def other():\n    pass\ndef inc(x):\n", "inc") == "def other():\n    pass\n"


@pytest.mark.parametrize(
    "row, kind, count",
    [
        ({"text": "Add.", "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}, "assert", 2),
        ({"question": "Sum.", "inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]}, "stdio", 2),
        ({"question": "Sum.", "input_output": '{"inputs": ["1 2"], "outputs": ["3"]}'}, "stdio", 1),
        (
            {
                "description": "Sum.",
                "public_tests": {"input": ["1 2"], "output": ["3"]},
                "private_tests": {"input": ["2 2"], "output": ["4"]},
            },
            "stdio",
            2,
        ),
        (
            {
                "problem": "Sum.",
                "verification_info": {
                    "language": "python",
                    "test_cases": [{"input": "1 2", "output": "3", "type": "stdin_stdout"}],
                },
            },
            "stdio",
            1,
        ),
        ({"question": "Sum.", "tests": [{"input": "1 2", "output": "3"}]}, "stdio", 1),
        ({"question": "Add.", "tests": ["assert add(1, 2) == 3"]}, "assert", 1),
        ({"question": "Add.", "tests": "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"}, "assert", 2),
    ],
)
def test_layouts(row, kind, count):
    problem = problem_from_row(row, "row 1")
    assert (problem.kind, problem.test_count) == (kind, count)
    assert question_from_row(row, problem, "row 1")


@pytest.mark.parametrize(
    "row, message",
    [
        ({"question": "q", "answer": "4"}, "unknown layout: no test columns"),
        ({"prompt": "def f():\n", "test": "def check(candidate):\n    assert candidate() == 1\n"}, "no entry_point"),
        ({"prompt": "def f():\n", "test": "", "entry_point": "f"}, "no tests"),
        ({"question": "q", "test_list": []}, "no tests"),
        ({"question": "q", "inputs": ["1"], "outputs": []}, "1 inputs but 0 outputs"),
        ({"question": "q", "tests": ["assert f(("]}, "does not parse"),
        ({"question": "q", "input_output": '{"fn_name": "f", "inputs": [[1]], "outputs": [[1]]}'}, "call-based APPS"),
        ({"question": "q", "verification_info": {"language": "cpp", "test_cases": []}}, "only Python"),
    ],
)
def test_bad_rows_are_one_clear_error(row, message):
    with pytest.raises(UserError, match=message):
        problem_from_row(row, "row 1")


def test_wire_roundtrip_and_only_builtin_types():
    value = [1, 2.5, float("inf"), "x", None, True, (1, (2,)), {1, 2}, frozenset({3}), {"a": [1], (1, 2): b"\x00"}, 1j]
    back = _wire.decode(_wire.encode(value))
    assert back == value and type(back[6]) is tuple and type(back[9]) is dict
    assert math.isnan(_wire.decode(_wire.encode(float("nan"))))

    class Sneaky(int):
        def __eq__(self, other):
            return True

    for bad in (Sneaky(1), object(), [Sneaky(2)], iter([1])):
        with pytest.raises(TypeError):
            _wire.encode(bad)
    for forged in ({"t": [1], "s": [2]}, {"zz": []}, {"d": [[1]]}, {"c": ["1", 2]}):
        with pytest.raises(ValueError):
            _wire.decode(forged)


def test_only_token_lines_count_and_unreported_tests_fail():
    token = "abc"
    output = "\n".join(
        [
            'abc {"total": 3}',
            '{"test": 1, "passed": true}',
            'xyz {"test": 2, "passed": true}',
            'abc {"test": 0, "passed": true, "error": null}',
            'abc {"test": 7, "passed": true}',
            'abc {"done": true}',
        ]
    )
    assert read_verdicts(output, token, 3)[:2] == ([True, False, False], "done")
    assert read_verdicts('abc {"test": 0, "passed": true}\nabc {"fatal": "x"}\nabc {"done": true}', token, 1)[:2] == (
        [False],
        "fatal",
    )
    assert read_verdicts("", token, 2)[:2] == ([False, False], "judge_error")


def test_counting_tests():
    assert _testcode.count_tests("assert f(1) == 1\nx = 2\nassert f(x) == 2\n", False) == 2
    assert (
        _testcode.count_tests("def check(candidate):\n    y = candidate(1)\n    if y:\n        assert y\n", True) == 1
    )
    assert (
        _testcode.count_tests("def check(candidate):\n    candidate(1)\n", True) == 1
    )  # no assert: the call is the test
    assert _testcode.count_tests("def helper():\n    assert 1\nassert 2 == 2\n", False) == 1


def test_mask_plan():
    plan = plan_masks(
        ["/root/.pyenv/versions/3.11", "/opt/venv"], ["/tmp", "/var/tmp", "/root"], ["/root", "/root/.pyenv"]
    )
    assert plan == [["/root", ["/root/.pyenv/versions/3.11"]], ["/tmp", []], ["/var/tmp", []]]
    assert plan_masks(["/tmp/venv/bin"], ["/tmp"], []) == [["/tmp", ["/tmp/venv/bin"]]]
    assert plan_masks(["/home/u"], ["/home/u/.cache", "/"], []) == []  # never inside a needed path, never /


def test_pass_at_k_estimator():
    assert pass_at_k_estimate(10, 0, 1) == 0.0 and pass_at_k_estimate(10, 10, 1) == 1.0
    assert pass_at_k_estimate(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k_estimate(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k_estimate(4, 1, 4) == 1.0 and pass_at_k_estimate(5, 1, 5) == 1.0
    with pytest.raises(ValueError):
        pass_at_k_estimate(3, 4, 1)
    assert pass_at_k_values(10) == [1, 2, 5, 10] and pass_at_k_values(1) == [1]
    sample = lambda ok: {"extracted": "x", "correct": ok, "formatted": True, "tokens": 3, "truncated": False}  # noqa: E731
    summary = aggregate(
        [
            {"samples": [sample(True), sample(False), sample(False), sample(False)], "greedy": None},
            {"samples": [sample(False)] * 4, "greedy": None},
        ]
    )
    assert (
        summary["pass_at"]["1"] == pytest.approx(summary["pass_at_1"])
        and summary["pass_at"]["4"] == summary["pass_at_k"] == 0.5
    )
    assert summary["pass_at"]["2"] == pytest.approx((0.5 + 0.0) / 2)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"limits": {"cpu_seconds": float("inf")}},
            "sandbox limit cpu_seconds must be a positive finite number, got inf",
        ),
        (
            {"limits": {"wall_seconds": float("nan")}},
            "sandbox limit wall_seconds must be a positive finite number, got nan",
        ),
        ({"limits": {"memory_bytes": 1 << 60}}, "sandbox limit memory_bytes must be at most"),
        ({"workers": 1_000_000}, "task_options.workers must be an integer from 1 to 256"),
        (
            {"sandbox": {"url": "http://127.0.0.1:2000/api/v2/execute", "headers": "Bearer x"}},
            "headers must map header names",
        ),
    ],
)
def test_code_sandbox_settings_outside_what_runs_are_one_line(options, message):
    from r1lab.tasks.code import sandbox_settings

    with pytest.raises(UserError, match=re.escape(message)):
        sandbox_settings(options)


def test_test_code_nested_too_deeply_to_parse_is_named():
    row = {
        "task_id": "deep",
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "test": "def check(candidate):\n    assert candidate(1) == " + "1+" * 100_000 + "1\n",
    }  # RecursionError in ast.parse
    with pytest.raises(UserError, match="row 1: test code is nested too deeply to parse"):
        problem_from_row(row, "row 1")
