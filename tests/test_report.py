"""The report builds from synthetic metrics, completions and eval files (a stage directory or a pipeline run);
the reflection-word rate on hand-written cases; odd input is reported leniently, bad input is one error line."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

import pytest

from r1lab.errors import UserError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _synthetic_stage(folder) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.jsonl"), "w", encoding="utf-8") as handle:
        for step in range(1, 6):
            record = {
                "step": step,
                "reward": 0.1 * step,
                "rewards/accuracy/mean": 0.05 * step,
                "loss": 0.01,
                "completions/mean_length": 50 + step,
                "frac_reward_zero_std": 0.5,
            }
            handle.write(json.dumps(record) + "\n")
        handle.write('{"step": 6, "rew')  # a line cut by a crash
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump({"questions": 3, "k": 4, "greedy_accuracy": 0.5, "pass_at_1": 0.375, "format_rate": 1.0}, handle)
    return str(folder)


def test_report_embeds_plots_and_eval_table(tmp_path):
    from r1lab.report import ReportConfig, main

    stage = _synthetic_stage(tmp_path / "stage")
    result = main(ReportConfig(run_dir=stage))
    page = Path(result["report"]).read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "<td>0.375</td>" in page and "pass_at_1" in page
    assert os.path.getsize(os.path.join(stage, "training.png")) > 1000
    assert os.stat(result["report"]).st_mode & 0o044  # readable by others, like any file we write


def test_report_refuses_an_empty_directory(tmp_path):
    from r1lab.report import ReportConfig, main

    with pytest.raises(UserError, match="nothing to report"):
        main(ReportConfig(run_dir=str(tmp_path)))
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------ synthetic runs


def _write_jsonl(path, rows, tail: str = "") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.write(tail)


def grpo_stage(folder, steps: int = 9, completions: bool = True) -> str:
    """A GRPO stage as the trainer leaves it: metrics.jsonl with TRL's keys and completions.jsonl, in which
    "Wait" first shows up at step 4 and "等等" at step 7; both files end in a line cut by a crash."""
    folder = str(folder)
    metrics = []
    for step in range(1, steps + 1):
        metrics.append(
            {
                "step": step,
                "epoch": step / steps,
                "reward": 0.1 * step,
                "reward_std": 0.2,
                "rewards/accuracy/mean": 0.08 * step,
                "rewards/xml.soft_format/mean": 0.5,
                "rewards/xml.soft_format/std": 0.1,
                "completions/mean_length": 40 + step,
                "completions/max_length": 60 + 2 * step,
                "frac_reward_zero_std": 0.5 - 0.04 * step,
                "completions/clipped_ratio": 0.1,
                "kl": 0.001 * step,
                "loss": 0.02,
                "learning_rate": 1e-5,
                "step_seconds": 1.5,
            }
        )
    metrics.append({"train_runtime": 12.0, "train_loss": 0.02, "step": steps})
    _write_jsonl(os.path.join(folder, "metrics.jsonl"), metrics, tail='{"step": 99, "rew')
    if completions:
        rows = []
        for step in range(1, steps + 1):
            for index in range(4):
                text = f"<reasoning>2 + {index} = {2 + index}</reasoning><answer>{2 + index}</answer>"
                if step >= 4 and index == 0:
                    text = f"<reasoning>2 + 2 = 5. Wait, let me check: 2 + 2 = 4.</reasoning><answer>4</answer> s{step}"
                if step >= 7 and index == 3:
                    text = f"<reasoning>等等，我重新算一下。</reasoning><answer>4</answer> s{step}"
                rows.append(
                    {
                        "step": step,
                        "question": f"What is 2 + {index}?",
                        "completion": text,
                        "reward": float(index) / 3,
                        "rewards": {"accuracy": 1.0},
                    }
                )
        _write_jsonl(os.path.join(folder, "completions.jsonl"), rows, tail='{"step": 9, "compl')
    return folder


def eval_stage(folder, accuracy: float, texts: list[str]) -> str:
    """An eval output: summary.json and samples.jsonl with one question per text (greedy + 1 sample)."""
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    summary = {
        "questions": len(texts),
        "k": 1,
        "greedy_accuracy": accuracy,
        "greedy_format_rate": 1.0,
        "pass_at_1": accuracy,
        "cons_at_k": accuracy,
        "pass_at_k": accuracy,
        "format_rate": 0.75,
        "truncation_rate": 0.0,
        "mean_tokens": 31.25,
        "p90_tokens": 40,
        "task": "gym:chain_sum",
    }
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle)
    records = []
    for index, text in enumerate(texts):
        sample = {
            "completion": text,
            "extracted": "4",
            "correct": True,
            "formatted": True,
            "tokens": 30,
            "truncated": False,
        }
        records.append({"index": index, "question": "q", "gold": "4", "greedy": dict(sample), "samples": [sample]})
    _write_jsonl(os.path.join(folder, "samples.jsonl"), records)
    return folder


def pipeline_run(root) -> str:
    """A pipeline run dir: base eval → SFT → GRPO (with a final eval) → eval → a failed GRPO → report.
    The manifest's output paths are relative to a working directory that is not the current one."""
    run = os.path.join(str(root), "run")
    eval_stage(os.path.join(run, "01-base-eval"), 0.25, ["the answer is 4", "I await the answer"])
    _write_jsonl(
        os.path.join(run, "02-sft", "metrics.jsonl"),
        [{"step": s, "loss": 1.0 / s, "mean_token_accuracy": 0.5 + 0.1 * s, "learning_rate": 1e-5} for s in (1, 2, 3)],
    )
    grpo_stage(os.path.join(run, "03-grpo"))
    eval_stage(os.path.join(run, "03-grpo", "eval"), 0.5, ["Wait, 4", "4"])
    eval_stage(os.path.join(run, "04-grpo-eval"), 0.75, ["Wait, let me check. 4", "4", "等等 4", "4"])
    _write_jsonl(
        os.path.join(run, "05-grpo-again", "metrics.jsonl"), [{"step": 1, "reward": 0.3, "loss": 0.1}], tail='{"st'
    )
    stages = [
        ("base-eval", "eval", "finished", {}),
        ("sft", "sft", "finished", {}),
        ("grpo", "grpo", "finished", {"model": "sft"}),
        ("grpo-eval", "eval", "finished", {"model": "grpo"}),
        ("grpo-again", "grpo", "failed", {"model": "grpo"}),
        ("report", "report", "running", {}),
    ]
    manifest = {
        "name": "synthetic",
        "run_dir": "elsewhere/run",
        "stages": [
            {
                "name": name,
                "command": command,
                "status": status,
                "inputs": inputs,
                "output": f"elsewhere/run/{i + 1:02d}-{name}",
                "seconds": 12.5,
                "error": "RuntimeError: out of memory" if status == "failed" else None,
            }
            for i, (name, command, status, inputs) in enumerate(stages)
        ],
    }
    with open(os.path.join(run, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    return run


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


# ------------------------------------------------------------------------------------ reflection words


def test_reflection_rate_counts_texts_with_any_word_case_insensitively_on_word_boundaries():
    from r1lab.report_data import DEFAULT_REFLECTION_WORDS, has_reflection, reflection_rate

    words = ["wait", "let me check", "re-check", "recheck", "verify", "等等", "重新"]
    assert reflection_rate(["Wait, that is wrong.", "The answer is 4."], words) == 0.5
    assert (
        reflection_rate(["WAIT.", "Let Me Check", "let me\n  check it", "(re-check)", "ReCheck:", "verify!"], words)
        == 1.0
    )
    # whole words only: none of these is a reflection word
    for text in ("he awaits", "waiting", "a waiter", "unverify", "verifying", "prerecheck", "let me checkout"):
        assert not has_reflection(text, words), text
    # CJK words match inside running text (no spaces between words), and next to Latin letters
    assert reflection_rate(["等等，我算错了", "我们重新计算一下", "ok等等ok", "答案是四"], words) == 0.75
    assert reflection_rate(["Wait 等等", "wait"], ["等等"]) == 0.5
    # degenerate input
    assert reflection_rate([], words) == 0.0
    assert reflection_rate(["wait"], []) == 0.0
    assert reflection_rate(["wait", None], ["", "  ", "wait"]) == 0.5
    assert (
        reflection_rate(["is c++ (really) fine?"], ["c++", "(really)", "fine?"]) == 1.0
    )  # regex characters are literal
    assert reflection_rate((text for text in ["wait", "no"]), ("wait",)) == 0.5  # any iterable
    assert {"wait", "let me check", "re-check", "recheck", "verify", "等等", "重新"} <= set(DEFAULT_REFLECTION_WORDS)


def test_read_completions_skips_only_a_cut_last_line(tmp_path):
    from r1lab.report_data import read_completions

    path = str(tmp_path / "completions.jsonl")
    rows = [
        {"step": 1, "completion": "a", "reward": 0.5, "question": "q"},
        {"step": 2, "completion": "b", "reward": float("nan")},  # a reward that is not a finite number → None
        {"step": 4, "completion": "d", "reward": None},
    ]
    _write_jsonl(path, rows, tail='{"step": 5, "completion": "cut')
    assert read_completions(path) == [
        {"step": 1, "completion": "a", "reward": 0.5, "question": "q"},
        {"step": 2, "completion": "b", "reward": None, "question": None},
        {"step": 4, "completion": "d", "reward": None, "question": None},
    ]


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"step": 2.5, "completion": "b"}', "line 2: step: expected an integer, got 2.5"),
        ('{"step": "3", "completion": "c"}', 'line 2: step: expected an integer, got "3"'),
        ('{"step": 3, "completion": ["not", "text"]}', 'line 2: completion: expected text, got ["not", "text"]'),
        ('{"step": 3, "completion": "c", "reward": "high"}', 'line 2: reward: expected a number or null, got "high"'),
        ("[1, 2, 3]", "line 2: expected a completion (an object), got [1, 2, 3]"),
        ('{"step": 3, "compl', "line 2: not valid JSON"),  # cut off, but not the last line: not a crash's trace
    ],
)
def test_a_completions_line_of_the_wrong_shape_names_file_line_and_field(tmp_path, line, problem):
    from r1lab.report_data import read_completions
    from r1lab.run_files import RunFileError

    path = tmp_path / "completions.jsonl"
    path.write_text('{"step": 1, "completion": "a"}\n' + line + '\n{"step": 4, "completion": "d"}\n', encoding="utf-8")
    with pytest.raises(RunFileError) as caught:
        read_completions(str(path))
    assert str(caught.value) == f"{path}: {problem}" or str(caught.value).startswith(f"{path}: {problem}")


# ------------------------------------------------------------------------------------ whole reports


def test_stage_report_has_every_plot_reflection_and_samples_per_phase(tmp_path):
    from r1lab.report import ReportConfig, main

    stage = grpo_stage(tmp_path / "grpo")
    eval_stage(os.path.join(stage, "eval"), 0.5, ["Wait, 4", "4", "等等 4", "4"])
    result = main(ReportConfig(run_dir=stage, samples_per_phase=2))
    page = Path(result["report"]).read_text(encoding="utf-8")
    assert result["report"] == os.path.join(stage, "report.html")
    # two PNGs beside the page, the same bytes embedded in it
    for name in ("training.png", "reflection.png"):
        with open(os.path.join(stage, name), "rb") as handle:
            data = handle.read()
        assert data.startswith(PNG_SIGNATURE) and data in _images(page)
    assert len(_images(page)) == 2
    assert not [name for name in os.listdir(stage) if name.startswith(".")]  # no temporary file left behind
    # reflection: rate over steps, then the first completions with a word, in file order, words marked
    assert "36 completions over 9 steps" in page
    first = page.index("first completions with a reflection word")
    assert page.index("step 4, reward 0.000", first) < page.index("step 5, reward 0.000", first)
    assert "<mark>Wait</mark>" in page and "<mark>let me check</mark>" in page
    # samples early / middle / late: first, median and last step, best and worst reward of each
    assert "early (step 1)" in page and "middle (step 5)" in page and "late (step 9)" in page
    late = page[page.index("late (step 9)") :]
    assert late.count('class="sample"') == 2 and "reward 1.000" in late and "reward 0.000" in late
    assert "<mark>等等</mark>" in page  # Chinese text survives as UTF-8
    # the final eval's row, with the reflection rate of its samples.jsonl (4 of 8 completions)
    assert "grpo (final eval)" in page and "reflection_rate" in page
    row = page[page.index("grpo (final eval)") :].split("</tr>")[0]
    assert "<td>0.500</td>" in row and "<td>31.2</td>" in row
    assert "no completions.jsonl" not in page


def test_pipeline_report_orders_evals_and_shows_failed_stages(tmp_path):
    from r1lab.report import ReportConfig, main

    run = pipeline_run(tmp_path)
    result = main(ReportConfig(run_dir=run, reflection_words=["wait"]))
    page = Path(result["report"]).read_text(encoding="utf-8")
    # one eval row per summary.json, in pipeline order, with the model each evaluated and the change
    table = page[page.index("<h2>evaluations</h2>") : page.index("</table>", page.index("<h2>evaluations</h2>"))]
    rows = table.split("<tr>")[2:]
    assert [row.split("</td>")[0].removeprefix("<td>") for row in rows] == [
        "base-eval",
        "grpo (final eval)",
        "grpo-eval",
    ]
    assert "<td>grpo</td>" in rows[2] and '<small class="delta">(+0.250)</small>' in rows[2]
    # reflection rate with the configured words only: "wait" in 2 of 8, "等等" not counted, "await" not "wait"
    assert rows[2].split("</td>")[-2].startswith("<td>0.250") and rows[0].split("</td>")[-2].startswith("<td>0.000")
    # the stage table shows the failure; the failed stage's one good metrics line is still plotted
    stages = page[page.index("<h2>stages</h2>") :]
    assert "failed" in stages and "RuntimeError: out of memory" in stages
    assert "grpo-again (failed) — training" in page
    assert "grpo-again: no completions.jsonl; reflection-word rate and sample completions omitted" in page
    assert ">report<" not in stages.split("</table>")[0]  # the report stage is this page
    # PNGs beside run/report.html, named after their stage directory; nothing written into stage dirs
    pngs = sorted(name for name in os.listdir(run) if name.endswith(".png"))
    assert pngs == [
        "02-sft-training.png",
        "03-grpo-reflection.png",
        "03-grpo-training.png",
        "05-grpo-again-training.png",
    ]
    assert len(_images(page)) == 4
    assert not [name for name in os.listdir(os.path.join(run, "03-grpo")) if name.endswith((".png", ".html"))]
    # the output can go anywhere; its PNGs go with it
    elsewhere = main(ReportConfig(run_dir=run, output=str(tmp_path / "out" / "page.html")))["report"]
    assert sorted(os.listdir(tmp_path / "out")) == [
        "02-sft-training.png",
        "03-grpo-reflection.png",
        "03-grpo-training.png",
        "05-grpo-again-training.png",
        "page.html",
    ]
    assert elsewhere == str(tmp_path / "out" / "page.html")


@pytest.mark.parametrize(
    "lines",
    [
        ['{"step": 1, "reward": 0.5, "loss": 0.1}'],  # one line
        [
            '{"step": 1, "reward": "n/a", "kl": null, "loss": NaN, "completions/mean_length": true}',
            '{"step": 2, "reward": 0.2, "loss": 0.3, "completions/mean_length": {"x": 1}}',
            '{"step": 3, "reward": 0.4, "loss": Infinity, "frac_reward_zero_std": 0.5}',
            '{"step": 4, "rew',
        ],
    ],
    ids=["one-line", "odd-values"],
)
def test_report_survives_odd_metrics(tmp_path, lines):
    """Values a trainer may log (text, null, NaN, infinity, an object) are plotted where numeric; a cut last line
    is a live run's, skipped."""
    from r1lab.report import ReportConfig, main

    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "metrics.jsonl").write_text("\n".join(lines), encoding="utf-8")
    page = Path(main(ReportConfig(run_dir=str(stage)))["report"]).read_text(encoding="utf-8")
    assert len(_images(page)) == 1 and (stage / "training.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "stage: no completions.jsonl; reflection-word rate and sample completions omitted" in page


@pytest.mark.parametrize(
    "bad_file, line, problem",
    [
        (
            "metrics.jsonl",
            "[1, 2]",
            "training curves left out: {path}: line 2: expected a metrics record (an object), got [1, 2]",
        ),
        (
            "metrics.jsonl",
            '{"reward": 0.2}',
            "training curves left out: {path}: line 2: step: missing (an integer expected)",
        ),
        (
            "completions.jsonl",
            '{"step": 1, "completion": 7}',
            "completions left out: {path}: line 2: completion: expected text, got 7",
        ),
        (
            "heldout.jsonl",
            '{"step": 0, "questions": "ten", "k": 1}',
            "held-out start left out: {path}: line 2: questions: expected an integer",
        ),
        (
            "summary.json",
            '{"questions": 3, "k": 1, "greedy_accuracy": "high"}',
            "eval left out: {path}: greedy_accuracy: expected a number or null",
        ),
        (
            "samples.jsonl",
            '{"question": "q", "greedy": "yes", "samples": []}',
            "reflection-word rate left out: {path}: line 2: greedy: expected a checked completion or null",
        ),
    ],
)
def test_a_stage_file_of_the_wrong_shape_is_left_out_with_a_note(tmp_path, bad_file, line, problem):
    """The report shows what it can of a run: the file that does not hold what r1lab writes is left out, the
    note names file, line and field; the rest of the page is built."""
    from r1lab.report import ReportConfig, main

    stage = grpo_stage(tmp_path / "grpo")
    eval_stage(stage, 0.5, ["4", "4"])
    _write_jsonl(os.path.join(stage, "heldout.jsonl"), [{"step": 0, "questions": 2, "k": 1, "greedy_accuracy": 0.5}])
    path = os.path.join(stage, bad_file)
    if bad_file.endswith(".jsonl"):
        first = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)[0]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(first + line + "\n" + first)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(line)
    page = Path(main(ReportConfig(run_dir=stage))["report"]).read_text(encoding="utf-8")
    assert html.escape(f"grpo: {problem.format(path=path)}") in page
    assert "data:image/png;base64," in page


def test_training_panels_pick_p90_over_max_and_skip_what_was_not_logged():
    from r1lab.report_plots import training_panels

    records = [
        {"step": 1, "completions/mean_length": 3, "completions/max_length": 9, "completions/p90_length": 7, "kl": 0.1}
    ]
    assert training_panels(records) == [
        ("completion length", ["completions/mean_length", "completions/p90_length"], []),
        ("loss and KL", ["kl"], []),
    ]
    records = [{"step": 1, "completions/max_length": 9, "loss": 1.0, "kl": 0.1, "reward": "x"}]
    assert training_panels(records) == [
        ("completion length", ["completions/max_length"], []),
        ("loss and KL", ["loss"], ["kl"]),
    ]


def test_an_empty_completions_file_is_one_note(tmp_path):
    from r1lab.report import ReportConfig, main

    stage = grpo_stage(tmp_path / "grpo", completions=False)
    with open(os.path.join(stage, "completions.jsonl"), "w", encoding="utf-8") as handle:
        handle.write('{"step": 1, "compl')
    page = Path(main(ReportConfig(run_dir=stage))["report"]).read_text(encoding="utf-8")
    assert "grpo: completions.jsonl holds no completions; reflection-word rate and sample completions omitted" in page
    assert len(_images(page)) == 1 and not os.path.exists(os.path.join(stage, "reflection.png"))


def test_bad_input_is_one_user_error_and_writes_nothing(tmp_path):
    from r1lab.report import ReportConfig, main

    a_file = tmp_path / "metrics.jsonl"
    a_file.write_text("{}\n")
    with pytest.raises(UserError, match="not a directory"):
        main(ReportConfig(run_dir=str(a_file)))
    with pytest.raises(UserError, match="not a directory"):
        main(ReportConfig(run_dir=str(tmp_path / "missing")))
    # a run whose stages have written nothing yet
    run = tmp_path / "run"
    (run / "01-grpo").mkdir(parents=True)
    (run / "manifest.json").write_text(
        json.dumps(
            {
                "name": "r",
                "stages": [{"name": "grpo", "command": "grpo", "status": "pending", "output": str(run / "01-grpo")}],
            }
        )
    )
    with pytest.raises(
        UserError, match=r"nothing to report in .*\(1 stage\(s\) in manifest.json, none has written one yet\)"
    ):
        main(ReportConfig(run_dir=str(run)))
    (run / "manifest.json").write_text('{"stages": [')
    with pytest.raises(UserError, match=r"manifest.json: line 1: not valid JSON"):
        main(ReportConfig(run_dir=str(run)))
    (run / "manifest.json").write_text('[{"name": "grpo"}]')
    with pytest.raises(UserError, match=r"manifest.json: expected a manifest \(an object\), got \[\{"):
        main(ReportConfig(run_dir=str(run)))
    assert sorted(os.listdir(run)) == ["01-grpo", "manifest.json"]
    with pytest.raises(UserError, match="samples_per_phase must be 0 or more"):
        ReportConfig(samples_per_phase=-1)


def test_cli_report_takes_reflection_words_and_turns_errors_into_one_line(tmp_path, capsys):
    from r1lab.cli import main as cli_main

    stage = grpo_stage(tmp_path / "grpo", steps=3)
    assert cli_main(["report", stage, "--reflection_words", "等等,hmm", "--samples_per_phase", "1"]) == 0
    out = capsys.readouterr().out
    assert f"r1lab report: {os.path.join(stage, 'report.html')}" in out
    page = Path(os.path.join(stage, "report.html")).read_text(encoding="utf-8")
    assert "“等等”, “hmm”" in page and "no completion uses a reflection word." in page  # "Wait" is not a word now
    assert cli_main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"r1lab: error: not a directory: {tmp_path / 'nowhere'}"]


def test_write_bytes_atomic_replaces_whole_files(tmp_path):
    from r1lab.outputs import write_bytes_atomic

    path = tmp_path / "sub" / "plot.png"
    write_bytes_atomic(str(path), b"one")
    write_bytes_atomic(str(path), PNG_SIGNATURE)
    assert path.read_bytes() == PNG_SIGNATURE and os.listdir(path.parent) == ["plot.png"]
    assert path.stat().st_mode & 0o044


@pytest.mark.parametrize(
    "steps, phases",
    [
        ([1], [("early", 1)]),
        ([1, 2], [("early", 1), ("late", 2)]),
        ([1, 2, 3, 4], [("early", 1), ("middle", 2), ("late", 4)]),
    ],
)
def test_sample_phases_of_short_runs(tmp_path, steps, phases):
    from r1lab.report_data import summarize_completions

    path = str(tmp_path / "completions.jsonl")
    _write_jsonl(path, [{"step": s, "completion": f"c{s}-{i}", "reward": i} for s in steps for i in range(3)])
    summary = summarize_completions(path, ["wait"], examples=3, per_phase=3)
    assert [(name, step) for name, step, _ in summary.phases] == phases
    assert all([r["reward"] for r in shown] == [2.0, 1.0, 0.0] for _, _, shown in summary.phases)
    assert summary.rates == [0.0] * len(steps) and summary.first_reflections == []
    assert summarize_completions(path, ["wait"], per_phase=0).phases[0][2] == []
