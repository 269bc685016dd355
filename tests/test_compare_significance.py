"""``r1lab eval --compare A B`` with significance, on hand-written samples.jsonl / summary.json pairs."""

from __future__ import annotations

import json

import pytest

from r1lab.cli import main as cli_main


def write_eval(folder, greedy, samples, questions=None, k=None):
    """An eval directory: one record per question (greedy verdict, sampled verdicts) and its summary."""
    folder.mkdir(parents=True)
    questions = questions or [f"What is {i} + 1?" for i in range(len(greedy))]
    records = []
    for index, (question, right, sampled) in enumerate(zip(questions, greedy, samples)):
        records.append(
            {
                "index": index,
                "task_index": index,
                "question": question,
                "gold": str(index + 1),
                "greedy": {
                    "completion": "…",
                    "extracted": "x",
                    "correct": right,
                    "formatted": True,
                    "tokens": 5,
                    "truncated": False,
                },
                "samples": [
                    {
                        "completion": "…",
                        "extracted": "x",
                        "correct": s,
                        "formatted": True,
                        "tokens": 5,
                        "truncated": False,
                    }
                    for s in sampled
                ],
                "pass_at_1": sum(sampled) / len(sampled),
            }
        )
    (folder / "samples.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    summary = {
        "model": folder.name,
        "questions": len(records),
        "k": k or len(samples[0]),
        "greedy_accuracy": sum(greedy) / len(greedy),
        "pass_at_1": sum(r["pass_at_1"] for r in records) / len(records),
        "settings": {"task": "gym:chain_sum", "k": k or len(samples[0]), "temperature": 0.6},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def thirteen_discordant(tmp_path):
    """20 questions: 3 right only before, 10 right only after, 2 right in both, 5 wrong in both."""
    before_greedy = [True] * 3 + [False] * 10 + [True] * 2 + [False] * 5
    after_greedy = [False] * 3 + [True] * 10 + [True] * 2 + [False] * 5
    before_samples = [[g, False, False, False] for g in before_greedy]
    after_samples = [[g, g, False, True] for g in after_greedy]
    a = write_eval(tmp_path / "cold-start-eval", before_greedy, before_samples)
    b = write_eval(tmp_path / "grpo-eval", after_greedy, after_samples)
    return a, b


def test_compare_prints_significance(tmp_path, capsys):
    a, b = thirteen_discordant(tmp_path)
    assert cli_main(["eval", "--compare", str(a / "summary.json"), str(b / "summary.json")]) == 0
    out = capsys.readouterr().out
    assert "greedy accuracy" in out and "+0.3500" in out  # the existing delta table is kept: 0.25 → 0.60
    assert "paired over the same 20 questions" in out
    assert "10 became right, 3 became wrong" in out
    assert "p = 0.092" in out  # 2 * 378 / 8192 = 0.0923
    # pass@1: before 5 * 0.25 / 20 = 0.0625; after 12 * 0.75 + 8 * 0.25 = 11 / 20 = 0.55
    line = next(line for line in out.splitlines() if "paired bootstrap" in line)
    assert "B - A +0.4875" in line and "k=4" in line
    low, high = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
    assert 0 < low < 0.4875 < high < 1


def test_compare_significance_is_reproducible(tmp_path, capsys):
    a, b = thirteen_discordant(tmp_path)
    cli_main(["eval", "--compare", str(a), str(b)])
    first = capsys.readouterr().out
    cli_main(["eval", "--compare", str(a), str(b)])
    assert capsys.readouterr().out == first


def test_compare_no_change(tmp_path, capsys):
    greedy = [True, False, True, False]
    samples = [[True, False], [False, False], [True, True], [False, True]]
    a = write_eval(tmp_path / "a", greedy, samples)
    b = write_eval(tmp_path / "b", greedy, samples)
    assert cli_main(["eval", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "0 became right, 0 became wrong" in out and "p = 1.000" in out
    assert "[+0.0000, +0.0000]" in out


@pytest.mark.parametrize("change", ["other-question", "fewer-questions"])
def test_compare_refuses_different_questions(tmp_path, capsys, change):
    greedy = [True, False, True]
    samples = [[True], [False], [True]]
    a = write_eval(tmp_path / "a", greedy, samples)
    if change == "other-question":
        b = write_eval(
            tmp_path / "b", greedy, samples, questions=["What is 0 + 1?", "What is 1 + 1?", "What is 7 + 7?"]
        )
    else:
        b = write_eval(tmp_path / "b", greedy[:2], samples[:2])
    assert cli_main(["eval", "--compare", str(a / "summary.json"), str(b / "summary.json")]) == 2
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("r1lab: error: ") and "different questions" in error[0]
    assert captured.out == ""  # nothing half-printed before the refusal


def test_compare_without_samples_keeps_the_delta_table(tmp_path, capsys):
    a, b = thirteen_discordant(tmp_path)
    (b / "samples.jsonl").unlink()
    assert cli_main(["eval", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "+0.3500" in out and "significance: not computed" in out


def test_compare_malformed_samples_is_one_error_line(tmp_path, capsys):
    a, b = thirteen_discordant(tmp_path)
    (b / "samples.jsonl").write_text('{"samples": [}\n')
    assert cli_main(["eval", "--compare", str(a), str(b)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "samples.jsonl: line 1: not valid JSON" in error[0]
