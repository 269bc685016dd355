"""Evaluation of general prompts (R1's stage 4 has no gold answer): ``task: prompts`` + ``judges`` scores every
completion with the same reward code GRPO uses, and ``eval --compare`` pairs two models' judge scores (mean
difference with a paired bootstrap interval, win rate with a sign test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1lab.cli import main as cli_main
from r1lab.significance import compare_records, format_p, format_significance, paired_bootstrap, sign_test

PROMPTS = [{"prompt": f"Tell me one thing about the number {number}."} for number in range(5)]
JUDGE = "reward_helpers.distinct_characters"  # a TRL-style reward: distinct characters / 10


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    return str(path)


def _eval(model_dir, dataset, output_dir, *extra):
    return [
        "eval",
        "--model",
        model_dir,
        "--task",
        "prompts",
        "--dataset",
        dataset,
        "--split",
        "test",
        "--k",
        "2",
        "--temperature",
        "1.0",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "8",
        "--progress",
        "false",
        "--judges",
        f"[{JUDGE}]",
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def test_an_eval_of_general_prompts_scores_every_completion_with_its_judges(
    tiny_model_dir, prompts_file, tmp_path, capsys
):
    from r1lab.run_files import read_samples, read_summary

    assert cli_main(_eval(tiny_model_dir, prompts_file, tmp_path / "out")) == 0
    records, summary = read_samples(str(tmp_path / "out")), read_summary(str(tmp_path / "out"))
    assert [record["question"] for record in records] == [row["prompt"] for row in PROMPTS]
    name = JUDGE  # a judge is named as the rewards list names it
    for record in records:
        for completion in [record["greedy"], *record["samples"]]:
            assert completion["judges"][name] == len(set(completion["completion"])) / 10.0
    greedy = [record["greedy"]["judges"][name] for record in records]
    sampled = [sample["judges"][name] for record in records for sample in record["samples"]]
    assert summary["judges"][name]["greedy"] == pytest.approx(sum(greedy) / len(greedy))
    assert summary["judges"][name]["sampled"] == pytest.approx(sum(sampled) / len(sampled))
    # no gold answer: no accuracy figures, the layout rate stays
    assert summary["greedy_accuracy"] is None and summary["pass_at_1"] is None and "pass_at" not in summary
    assert summary["format_rate"] is not None
    assert f"judge {name} (greedy / sampled)" in capsys.readouterr().out


def test_a_bad_judge_is_refused_before_the_model_loads(tiny_model_dir, prompts_file, tmp_path, capsys):
    argv = _eval(tiny_model_dir, prompts_file, tmp_path / "out")
    argv[argv.index("--judges") + 1] = "[no_such_judge]"
    assert cli_main(argv) == 2
    assert "unknown reward 'no_such_judge'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _record(index: int, greedy: float | None, samples: list[float], gold: str = "") -> dict:
    def completion(score):
        return {"completion": "x", "correct": False, "judges": {"helpfulness": score}}

    return {
        "question": f"q{index}",
        "task_index": index,
        "gold": gold,
        "greedy": None if greedy is None else completion(greedy),
        "samples": [completion(s) for s in samples],
    }


def test_judge_comparison_pairs_questions_on_hand_computed_values():
    before = [_record(i, score, [0.0]) for i, score in enumerate([0.2, 0.5, 0.5, 0.9])]
    after = [_record(i, score, [0.0]) for i, score in enumerate([0.4, 0.5, 0.7, 0.8])]
    result = compare_records(before, after, resamples=200, seed=1)
    judged = result.judges["helpfulness"]
    assert judged["delta"] == pytest.approx((0.2 + 0.0 + 0.2 - 0.1) / 4)
    assert (judged["wins"], judged["losses"], judged["questions"]) == (2, 1, 4)
    assert judged["win_rate"] == pytest.approx(2 / 3) and judged["p"] == sign_test(2, 1) == 1.0
    _, low, high = paired_bootstrap([0.2, 0.5, 0.5, 0.9], [0.4, 0.5, 0.7, 0.8], 200, 1)
    assert (judged["low"], judged["high"]) == (low, high)
    assert not result.gold and result.greedy_p is None  # general prompts: accuracy is not compared
    lines = format_significance(result)
    assert lines[0].strip() == "accuracy: not compared (general prompts, no gold answers)"
    assert "judge helpfulness (4 questions): B - A +0.0750" in lines[1] and "B better on 2, worse on 1" in lines[1]


def test_without_a_greedy_pass_a_question_scores_its_samples_mean_and_unscored_ones_drop_out():
    before = [_record(0, None, [0.2, 0.4]), _record(1, None, [0.5, 0.5]), _record(2, None, [0.0])]
    after = [_record(0, None, [0.6, 0.6]), _record(1, None, [0.1, 0.3]), _record(2, None, [0.0])]
    after[2]["samples"][0]["judges"]["helpfulness"] = None  # not scored: the question drops out of this judge
    judged = compare_records(before, after, resamples=50).judges["helpfulness"]
    assert judged["questions"] == 2 and judged["delta"] == pytest.approx(((0.6 - 0.3) + (0.2 - 0.5)) / 2)
    assert (judged["wins"], judged["losses"]) == (1, 1)


def test_eval_compare_prints_the_judge_line_for_two_evals_of_general_prompts(tmp_path, capsys):
    for folder, scores in (("a", [0.1, 0.2, 0.3, 0.4, 0.5, 0.1]), ("b", [0.6, 0.7, 0.8, 0.9, 1.0, 0.6])):
        (tmp_path / folder).mkdir()
        rows = [_record(i, score, [score]) for i, score in enumerate(scores)]
        (tmp_path / folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        (tmp_path / folder / "summary.json").write_text(
            json.dumps(
                {
                    "questions": 6,
                    "k": 1,
                    "format_rate": 1.0,
                    "judges": {"helpfulness": {"greedy": sum(scores) / 6, "sampled": sum(scores) / 6}},
                }
            )
        )
    assert cli_main(["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "judge helpfulness (6 questions): B - A +0.5000" in printed
    assert f"B better on 6, worse on 0 (win rate 1.000), sign test p = {format_p(sign_test(6, 0))}" in printed


def test_the_report_shows_each_judge_in_the_eval_and_significance_tables(tmp_path):
    from r1lab.report import ReportConfig, build_report

    run = tmp_path / "run"
    stages = []
    for number, (name, scores) in enumerate(
        (("rs-eval", [0.1, 0.2, 0.3, 0.4]), ("rl-eval", [0.5, 0.6, 0.7, 0.8])), start=1
    ):
        folder = run / f"{number:02d}-{name}"
        folder.mkdir(parents=True)
        rows = [_record(i, score, [score]) for i, score in enumerate(scores)]
        (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        mean = sum(scores) / 4
        (folder / "summary.json").write_text(
            json.dumps(
                {
                    "questions": 4,
                    "k": 1,
                    "format_rate": 1.0,
                    "judges": {"helpfulness": {"greedy": mean, "sampled": mean}},
                }
            )
        )
        stages.append({"name": name, "command": "eval", "status": "finished", "output": str(folder)})
    (run / "manifest.json").write_text(json.dumps({"name": "r", "stages": stages}))
    page = Path(build_report(ReportConfig(run_dir=str(run)))).read_text(encoding="utf-8")
    assert "<th>judge helpfulness</th>" in page and "<td>0.650" in page
    assert "helpfulness +0.400 [+0.400, +0.400], 1.00 (p 0.125)" in page
