"""Hostile answers: the one checker bounds every comparison in time and size, in the main thread and in any
other, and a reward that raises costs its completion a 0, counted, never the run."""

from __future__ import annotations

import json
import threading
import time

import pytest

import r1lab.checking as checking
from r1lab.checking import MAX_ANSWER_CHARS, answers_match
from r1lab.cli import main as cli_main

# math-verify's parse and verify each stop at MATH_VERIFY_TIMEOUT_S (2 s): a comparison ends within a few.
BOUND_S = 8

HOSTILE = {
    "frac-bomb": "\\frac{1}{" * 50 + "2" + "}" * 50,
    "frac-of-towers": "\\frac{9^{9^{9^{9}}}}{7^{7^{7^{7}}}}",
    "nested-braces-240": "{" * 240 + "1" + "}" * 240,
    "sum-to-10^12": "\\sum_{k=1}^{10^{12}} k",
    "factorial-of-googol": "(10^{100})!",
    "nested-sqrt": "\\sqrt{" * 60 + "2" + "}" * 60,
    "long-sum": "1+" * 250 + "1",
    "huge-matrix": "\\begin{pmatrix}" + "\\\\".join(["1&" * 20 + "1"] * 10) + "\\end{pmatrix}",
    "control-characters": "\x00\x1b[2J\u202e1000\x00",
}


@pytest.mark.parametrize("answer", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_predicted_answer_is_wrong_and_bounded(answer):
    started = time.perf_counter()
    assert answers_match(answer, "1000") is False
    assert time.perf_counter() - started < BOUND_S


def test_hostile_gold_answer_is_bounded_too():
    started = time.perf_counter()
    assert answers_match("1000", HOSTILE["frac-bomb"]) is False
    assert time.perf_counter() - started < BOUND_S


def test_the_size_limit_stops_an_answer_before_any_parser(monkeypatch):
    parsed = []
    monkeypatch.setattr(checking, "_parse_math", lambda text: parsed.append(text) or [])
    started = time.perf_counter()
    for answer in ("9" * 10_000_000, "\\frac{1}{" * 100_000, "x" * (MAX_ANSWER_CHARS + 1)):
        assert answers_match(answer, "\\frac{1}{2}") is False
    assert parsed == [] and time.perf_counter() - started < 2
    assert answers_match("\\frac{2}{4}", "\\frac{1}{2}") is False and "\\frac{2}{4}" in parsed  # under it: parsed
    monkeypatch.undo()
    checking._parse_gold.cache_clear()  # it kept the patched parser's answer for the gold
    assert answers_match("\\frac{2}{4}", "\\frac{1}{2}") is True


def _in_a_thread(predicted: str, gold: str, wait_s: float):
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("match", answers_match(predicted, gold)), daemon=True)
    started = time.perf_counter()
    worker.start()
    worker.join(wait_s)
    return result.get("match"), time.perf_counter() - started, worker.is_alive()


def test_outside_the_main_thread_hostile_answers_are_bounded_and_right_ones_still_match():
    """math-verify's own timeouts need the main thread (SIGALRM); an async reward runs on another one."""
    for answer in (HOSTILE["frac-bomb"], HOSTILE["nested-braces-240"], "9^{9^{9^{9^{9}}}}"):
        match, seconds, alive = _in_a_thread(answer, "1000", 60)
        assert not alive and match is False
        assert seconds < BOUND_S + 5  # + starting the checking process the first time
    assert _in_a_thread("\\frac{2000}{2}", "1000", 60)[0] is True
    assert _in_a_thread("\\frac{1}{3}", "1000", 60)[0] is False


def test_a_checking_process_that_overruns_is_killed_and_replaced(monkeypatch):
    monkeypatch.setattr(checking, "WORKER_TIMEOUT_S", 0.5)
    match, seconds, alive = _in_a_thread(HOSTILE["nested-braces-240"], "1000", 30)
    assert not alive and match is False and seconds < 0.5 + checking.WORKER_START_TIMEOUT_S
    assert checking._WORKER.process is None  # killed
    monkeypatch.setattr(checking, "WORKER_TIMEOUT_S", 30)
    assert _in_a_thread("\\frac{3000}{3}", "1000", 60)[0] is True  # a new one answers


def test_a_raising_reward_is_isolated_and_counted_in_a_real_grpo_run(tiny_model_dir, tmp_path):
    output_dir = tmp_path / "grpo"
    code = cli_main(
        [
            "grpo",
            "--model",
            tiny_model_dir,
            "--task",
            "gym:chain_sum",
            "--task_size",
            "4",
            "--task_options",
            "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--rewards",
            "reward_helpers.always_raises,reward_helpers.distinct_characters,accuracy",
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "1",
            "--max_completion_length",
            "8",
            "--max_steps",
            "2",
            "--logging_steps",
            "1",
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
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [record for record in records if "reward" in record]
    assert len(steps) == 2
    for record in steps:
        assert record["reward_failures/reward_helpers.always_raises"] == 4.0  # every completion of the step
        assert record["reward_failures/accuracy"] == 0.0
        assert record["rewards/reward_helpers.always_raises/mean"] == 0.0
    marker = json.loads((output_dir / "r1lab_stage.json").read_text())
    assert marker["figures"]["reward_failures"] == {"reward_helpers.always_raises": 8}
    logged = [json.loads(line) for line in (output_dir / "completions.jsonl").read_text().splitlines()]
    assert all(record["rewards"]["reward_helpers.always_raises"] == 0.0 for record in logged)
