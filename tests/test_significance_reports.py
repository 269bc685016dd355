"""Significance in the pipeline's closing eval table and in the run's report: each eval against the nearest
earlier eval on the same questions; evals on other questions (a checkpoint eval of fewer) are passed over."""

from __future__ import annotations

import json
from pathlib import Path

from test_compare_significance import write_eval

from r1lab.pipeline import print_eval_table
from r1lab.report import ReportConfig, build_report


def synthetic_run(root):
    """cold-start-eval (20 q) → checkpoint eval (4 other q) → grpo-eval (the same 20 q): 10 right, 3 wrong."""
    run = root / "run"
    before = [True] * 3 + [False] * 10 + [True] * 2 + [False] * 5
    after = [False] * 3 + [True] * 10 + [True] * 2 + [False] * 5
    write_eval(run / "01-cold-start-eval", before, [[g, False] for g in before])
    write_eval(run / "02-checkpoint-eval", [True, False, True, True], [[True]] * 4, questions=["a", "b", "c", "d"])
    write_eval(run / "03-grpo-eval", after, [[g, g] for g in after])
    stages = []
    for folder in ("01-cold-start-eval", "02-checkpoint-eval", "03-grpo-eval"):
        summary = json.loads((run / folder / "summary.json").read_text())
        stages.append(
            {
                "name": folder[3:],
                "command": "eval",
                "status": "finished",
                "output": str(run / folder),
                "figures": summary,
            }
        )
    manifest = {"name": "synthetic", "run_dir": str(run), "stages": stages}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run, manifest


def test_pipeline_eval_table_prints_significance(tmp_path, capsys):
    _, manifest = synthetic_run(tmp_path)
    print_eval_table(manifest)
    out = capsys.readouterr().out
    assert "cold-start-eval → checkpoint-eval: not compared (no earlier eval on the same questions)" in out
    block = out[out.index("cold-start-eval → grpo-eval (20 questions, paired):") :]
    assert "10 became right, 3 became wrong" in block and "p = 0.092" in block
    assert "pass@1 (k=2): B - A +0.4750" in block  # before 5 * 0.5 / 20; after 12 / 20


def test_report_has_a_significance_table(tmp_path):
    run, _ = synthetic_run(tmp_path)
    page = Path(build_report(ReportConfig(run_dir=str(run)))).read_text(encoding="utf-8")
    section = page[page.index("<h3>significance</h3>") :]
    rows = section.split("</table>")[0].split("<tr>")[2:]
    assert len(rows) == 2
    assert "not compared: no earlier eval on the same questions" in rows[0]
    cells = [cell.removeprefix("<td>") for cell in rows[1].split("</td>")[:-1]]
    assert cells[:7] == ["cold-start-eval", "grpo-eval", "20", "10", "3", "+0.350", "0.092"]
    assert cells[7] == "+0.475" and cells[8].startswith("[+")
