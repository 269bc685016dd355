"""``r1lab report RUN_OR_STAGE_DIR``: metrics.jsonl and eval summaries → PNG plots + one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass
from typing import Any

from r1lab.errors import UserError

REPORT_FILE = "report.html"
# Plot panels: title → metric keys (a key that a run did not log is left out).
PANELS = {
    "rewards": ("reward",),  # + every rewards/<name>/mean, added per run
    "completion length": ("completions/mean_length", "completions/max_length", "completions/mean_terminated_length"),
    "learning signal": ("frac_reward_zero_std", "completions/clipped_ratio", "clip_ratio/region_mean"),
    "loss and KL": ("loss", "kl", "entropy"),
}
EVAL_COLUMNS = ("format_rate", "greedy_accuracy", "pass_at_1", "cons_at_k", "truncation_rate", "mean_tokens")


@dataclass
class ReportConfig:
    run_dir: str = "runs/quickstart"
    output: str | None = None  # default: <run_dir>/report.html


def read_metrics(path: str) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a line cut by a crash: the rest of the file still plots
    return [record for record in records if "train_runtime" not in record]


def _stages(run_dir: str) -> list[dict[str, Any]]:
    """(name, command, output dir) of each stage: the manifest's, or the directory itself as one stage."""
    manifest_path = os.path.join(run_dir, "manifest.json")
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        return [
            {"name": stage["name"], "command": stage["command"], "dir": stage["output"], "status": stage.get("status")}
            for stage in manifest.get("stages", [])
        ]
    return [{"name": os.path.basename(os.path.normpath(run_dir)), "command": "", "dir": run_dir, "status": ""}]


def _label(key: str) -> str:
    if key.startswith("rewards/") and key.endswith("/mean"):
        return key[len("rewards/") : -len("/mean")]
    return key


def plot_training(records: list[dict[str, Any]], title: str, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reward_keys = sorted(key for record in records for key in record if key.startswith("rewards/") and key.endswith("/mean"))
    panels = {name: tuple(dict.fromkeys(keys + (tuple(reward_keys) if name == "rewards" else ()))) for name, keys in PANELS.items()}
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for axis, (panel, keys) in zip(axes, panels.items()):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if points:
                axis.plot(*zip(*points), marker=".", label=_label(key))
        axis.set_title(panel)
        axis.set_xlabel("step")
        if axis.lines:
            axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _eval_row(summary: dict[str, Any]) -> list[str]:
    cells = []
    for column in EVAL_COLUMNS:
        value = summary.get(column)
        cells.append(f"{value:.3f}" if isinstance(value, float) else ("" if value is None else str(value)))
    return cells


def build_report(config: ReportConfig) -> str:
    from r1lab.outputs import write_text_atomic

    if not os.path.isdir(config.run_dir):
        raise UserError(f"not a directory: {config.run_dir}")
    output = config.output or os.path.join(config.run_dir, REPORT_FILE)
    parts = [f"<h1>r1lab report: {html.escape(config.run_dir)}</h1>"]
    eval_rows = []
    for stage in _stages(config.run_dir):
        metrics_path = os.path.join(stage["dir"], "metrics.jsonl")
        if os.path.isfile(metrics_path):
            records = read_metrics(metrics_path)
            if records:
                png = plot_training(records, stage["name"], os.path.join(stage["dir"], "training.png"))
                with open(png, "rb") as handle:
                    encoded = base64.b64encode(handle.read()).decode()
                parts.append(f"<h2>{html.escape(stage['name'])} — training</h2>")
                parts.append(f'<img alt="{html.escape(stage["name"])} training curves" src="data:image/png;base64,{encoded}">')
        summary_path = os.path.join(stage["dir"], "summary.json")
        if os.path.isfile(summary_path):
            with open(summary_path, encoding="utf-8") as handle:
                eval_rows.append((stage["name"], json.load(handle)))
    if eval_rows:
        header = "".join(f"<th>{html.escape(column)}</th>" for column in ("stage",) + EVAL_COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in [name] + _eval_row(summary)) + "</tr>"
            for name, summary in eval_rows
        )
        parts.insert(1, f"<h2>evaluations</h2><table><tr>{header}</tr>{body}</table>")
    if len(parts) == 1:
        raise UserError(f"nothing to report in {config.run_dir}: no metrics.jsonl or summary.json")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>r1lab report</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}"
        "</style></head><body>" + "\n".join(parts) + "</body></html>\n"
    )
    write_text_atomic(output, page)
    return output


def main(config: ReportConfig) -> dict[str, Any]:
    output = build_report(config)
    print(f"r1lab report: {output}")
    return {"report": output}
