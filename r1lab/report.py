"""``r1lab report RUN_OR_STAGE_DIR``: metrics, completions and eval results → PNG plots + one self-contained HTML page.

The page (``report.html`` by default, in the run or stage directory) embeds every plot as base64 and needs
nothing else to open, offline; the same plots are written as PNG files beside it. It shows, per training
stage: reward components, total reward and accuracy; completion length (mean and p90, or max); held-out
accuracy during training (a stage's ``heldout_eval``: ``heldout/*`` in its metrics, its start in
``heldout.jsonl``); the fraction of zero-variance groups and of clipped completions; KL and loss; and, when
the stage logged its completions
(``completions.jsonl``), the reflection-word rate over steps with the first completions that use such a
word and a few completions early / middle / late in training. Eval stages form one table in pipeline order
(one row per ``summary.json``), with the reflection-word rate of their ``samples.jsonl``, and a significance
table: each eval against the nearest earlier eval on the same questions (:mod:`r1lab.significance`).

Every file is read through :mod:`r1lab.run_files`, which validates it against its declaration: a file that does
not hold what r1lab writes there is left out with a note naming file, line and field, and the rest of the run is
reported (a failed stage, a stage still running: what is there is shown). A manifest that is not r1lab's, a path
that is not a directory, or one that holds nothing to report is a UserError.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from typing import Any

from r1lab.config import setting
from r1lab.errors import UserError
from r1lab.outputs import (
    check_writable_dir,
    write_bytes_atomic,
    write_text_atomic,
)
from r1lab.report_data import (
    DEFAULT_REFLECTION_WORDS,
    EVAL_DIR_KEY,
    collect,
    finite_number,
    reflection_pattern,
)
from r1lab.report_plots import plot_reflection, plot_training
from r1lab.run_files import COMPLETIONS, METRICS, SUMMARY
from r1lab.significance import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    format_p,
    transitions,
)

REPORT_FILE = "report.html"

# Eval table columns: summary.json key → number format ("rate", "tokens" or "int").
EVAL_COLUMNS = (
    ("questions", "int"),
    ("k", "int"),
    ("greedy_accuracy", "rate"),
    ("greedy_format_rate", "rate"),
    ("pass_at_1", "rate"),
    ("cons_at_k", "rate"),
    ("pass_at_k", "rate"),
    ("format_rate", "rate"),
    ("truncation_rate", "rate"),
    ("mean_tokens", "tokens"),
    ("p90_tokens", "tokens"),
    ("reflection_rate", "rate"),  # computed here from samples.jsonl
)


@dataclass
class ReportConfig:
    run_dir: str = setting("runs/quickstart", "A pipeline run (with manifest.json) or one stage's output directory.")
    output: str | None = setting(None, "Default: <run_dir>/report.html; the PNGs are written beside it.")
    reflection_words: list[str] = setting(
        default_factory=lambda: list(DEFAULT_REFLECTION_WORDS),
        help='Words counted as reflection, case-insensitively; ASCII words and phrases match whole words only ("awaits" is not "wait").',
    )
    samples_per_phase: int = setting(
        2, "Sample completions shown early / middle / late in training (spread by reward)."
    )
    reflection_examples: int = setting(3, "The first completions that use a reflection word.")
    max_sample_chars: int = setting(1500, "Longer completions are cut in the page (the files keep them whole).")

    def __post_init__(self):
        for name in ("samples_per_phase", "reflection_examples", "max_sample_chars"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be 0 or more, got {getattr(self, name)}")


def check(config: ReportConfig) -> None:
    """The stage contract's check (commands.Command.check): a report's settings are checked when its config is built
    (``__post_init__``); what it reads is the run itself, checked as it is read."""


# ---------------------------------------------------------------------------------------------- page


def _highlight(text: str, words: tuple[str, ...]) -> str:
    """``text`` as HTML with every reflection word in <mark>."""
    pattern = reflection_pattern(words)
    if pattern is None:
        return html.escape(text)
    pieces, last = [], 0
    for match in pattern.finditer(text):
        pieces.append(html.escape(text[last : match.start()]))
        pieces.append(f"<mark>{html.escape(match.group(0))}</mark>")
        last = match.end()
    pieces.append(html.escape(text[last:]))
    return "".join(pieces)


def _cell(value: Any, kind: str) -> str:
    number = finite_number(value)
    if number is None:
        return "" if value is None else html.escape(str(value))
    if kind == "int" and number.is_integer():
        return str(int(number))
    return f"{number:.1f}" if kind == "tokens" else f"{number:.3f}"


def _with_judges(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with each judge's greedy mean (else its sampled mean) as ``judge <name>``."""
    judged = {
        f"judge {name}": means.get("greedy") if means.get("greedy") is not None else means.get("sampled")
        for name, means in (summary.get("judges") or {}).items()
        if isinstance(means, dict)
    }
    return {**summary, **judged}


def _eval_table(rows: list[tuple[str, str, str, dict[str, Any]]]) -> str:
    rows = [(name, model, status, _with_judges(summary)) for name, model, status, summary in rows]
    judge_columns = sorted({key for *_, summary in rows for key in summary if key.startswith("judge ")})
    columns = EVAL_COLUMNS + tuple((key, "rate") for key in judge_columns)
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ("stage", "model", "status", *tuple(c for c, _ in columns)))
    body: list[str] = []
    previous: dict[str, Any] | None = None
    for name, model, status, summary in rows:
        cells = [html.escape(name), html.escape(model), html.escape(status)]
        for column, kind in columns:
            text = _cell(summary.get(column), kind)
            now, before = finite_number(summary.get(column)), finite_number((previous or {}).get(column))
            if kind == "rate" and now is not None and before is not None:
                text += f' <small class="delta">({now - before:+.3f})</small>'
            cells.append(text)
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        previous = summary
    caption = "one row per eval, in pipeline order; (±) is the change from the row above"
    table = f"<table><caption>{caption}</caption><tr>{header}</tr>{''.join(body)}</table>"
    return f'<h2>evaluations</h2><div class="wide">{table}</div>'


def _significance_table(rows: list[tuple[str, str, str, dict[str, Any]]]) -> str:
    """Each eval against the nearest earlier eval on the same questions (r1lab.significance); '' when fewer than two."""
    evals = [(name, summary[EVAL_DIR_KEY]) for name, _, _, summary in rows if summary.get(EVAL_DIR_KEY)]
    found = transitions(evals)
    if not found:
        return ""
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "A",
            "B",
            "questions",
            "became right",
            "became wrong",
            "greedy B − A",
            "sign test p",
            "pass@1 B − A",
            "95% interval",
            "judges B − A [95% interval], win rate (sign test p)",
        )
    )
    body = []
    for item in found:
        cells = [html.escape(item.before), html.escape(item.after)]
        result = item.result
        if result is None:
            note = html.escape(f"not compared: {item.note}")
            body.append(f'<tr><td>{cells[0]}</td><td>{cells[1]}</td><td colspan="8">{note}</td></tr>')
            continue
        greedy = (
            []
            if result.greedy_p is None
            else [
                str(result.became_right),
                str(result.became_wrong),
                f"{result.greedy_delta:+.3f}",
                format_p(result.greedy_p),
            ]
        )
        sampled = (
            []
            if result.pass_delta is None
            else [f"{result.pass_delta:+.3f}", f"[{result.pass_low:+.3f}, {result.pass_high:+.3f}]"]
        )
        judged = "<br>".join(
            html.escape(
                f"{name} {j['delta']:+.3f} [{j['low']:+.3f}, {j['high']:+.3f}], "
                f"{'–' if j['win_rate'] is None else format(j['win_rate'], '.2f')} (p {format_p(j['p'])})"
            )
            for name, j in result.judges.items()
        )
        cells += [str(result.questions)] + (greedy or ["–"] * 4) + (sampled or ["–"] * 2) + [judged or "–"]
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    caption = (
        "each eval against the nearest earlier eval on the same questions: greedy answers that became right / wrong "
        "with an exact two-sided sign test (McNemar); pass@1 over the k samples with a paired bootstrap 95% interval "
        f"({BOOTSTRAP_RESAMPLES} resamples of the questions, seed {BOOTSTRAP_SEED})"
    )
    return f'<h3>significance</h3><div class="wide"><table><caption>{caption}</caption><tr>{header}</tr>{"".join(body)}</table></div>'


def _stage_table(stages: list[dict[str, Any]]) -> str:
    rows = []
    for number, stage in enumerate(stages, start=1):
        error = stage["error"] if isinstance(stage["error"], str) else ""
        seconds = "" if stage["seconds"] is None else f"{stage['seconds']:.0f}"
        css = "" if stage["status"] == "finished" else ' class="unfinished"'
        cells = [str(number), stage["name"], stage["command"], stage["status"], seconds, error[:300]]
        rows.append(f"<tr{css}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in ("#", "stage", "command", "status", "seconds", "error"))
    return f"<h2>stages</h2><table><tr>{header}</tr>{''.join(rows)}</table>"


def _completion_block(record: dict[str, Any], words: tuple[str, ...], limit: int) -> str:
    text = record["completion"]
    cut = len(text) > limit
    shown = _highlight(text[:limit], words) + (f"\n… ({len(text) - limit} more characters)" if cut else "")
    reward = record["reward"]
    head = f"step {record['step']}, reward {'n/a' if reward is None else f'{reward:.3f}'}"
    question = record.get("question")
    if question:
        head += " — " + (question if len(question) <= 200 else question[:200] + "…")
    return f'<div class="sample"><div class="head">{html.escape(head)}</div><pre>{shown}</pre></div>'


def _img(data: bytes, alt: str, filename: str) -> str:
    encoded = base64.b64encode(data).decode()
    return f'<img alt="{html.escape(alt)}" title="{html.escape(filename)}" src="data:image/png;base64,{encoded}">'


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin-bottom:1em}"
    "caption{caption-side:bottom;font-size:80%;color:#666;text-align:left}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+3){text-align:left}"
    ".wide{overflow-x:auto}tr.unfinished td{background:#fff3f0}small.delta{color:#666}img{max-width:100%}"
    ".sample{border:1px solid #ddd;margin:.5em 0;padding:.4em}.head{font-size:85%;color:#444}"
    "pre{white-space:pre-wrap;word-break:break-word;margin:.3em 0}mark{background:#ffe066}ul.notes{color:#a40}"
)


def _training_section(
    stage, records, completions, out_dir: str, config: ReportConfig, words: tuple[str, ...]
) -> list[str]:
    """One training stage's part of the page; its PNGs are written to ``out_dir`` on the way."""
    name = stage["name"]
    shown = name if stage["status"] in ("", "finished") else f"{name} ({stage['status']})"
    prefix = "" if os.path.abspath(stage["dir"]) == out_dir else os.path.basename(os.path.normpath(stage["dir"])) + "-"
    parts = [f"<h2>{html.escape(shown)} — training</h2>"]
    png = plot_training(records, shown) if records else None
    if png is not None:
        write_bytes_atomic(os.path.join(out_dir, f"{prefix}training.png"), png)
        parts.append(_img(png, f"{name} training curves", f"{prefix}training.png"))
    elif records:
        parts.append("<p>no numeric training metric was logged.</p>")
    if completions is None:
        return parts
    png = plot_reflection(completions, shown)
    write_bytes_atomic(os.path.join(out_dir, f"{prefix}reflection.png"), png)
    listed = ", ".join(f"“{word.strip()}”" for word in words if word.strip())
    counted = f"{completions.total} completions over {len(completions.steps)} steps"
    parts.append(f"<h3>reflection words</h3><p>{html.escape(listed)} — {counted}</p>")
    parts.append(_img(png, f"{name} reflection-word rate", f"{prefix}reflection.png"))
    if completions.first_reflections:
        parts.append("<h4>first completions with a reflection word</h4>")
        parts.extend(_completion_block(r, words, config.max_sample_chars) for r in completions.first_reflections)
    else:
        parts.append("<p>no completion uses a reflection word.</p>")
    if any(samples for _, _, samples in completions.phases):
        parts.append("<h3>sample completions</h3>")
        for phase, step, samples in completions.phases:
            parts.append(f"<h4>{phase} (step {step})</h4>")
            parts.extend(_completion_block(r, words, config.max_sample_chars) for r in samples)
    return parts


def build_report(config: ReportConfig) -> str:
    if not os.path.isdir(config.run_dir):
        raise UserError(f"not a directory: {config.run_dir}")
    words = tuple(word for word in config.reflection_words if isinstance(word, str))
    stages, manifest, notes, training, eval_rows = collect(
        config.run_dir, words, config.reflection_examples, config.samples_per_phase
    )
    if not training and not eval_rows:
        where = f" ({len(stages)} stage(s) in manifest.json, none has written one yet)" if manifest is not None else ""
        files = f"{METRICS.name}, {COMPLETIONS.name} or {SUMMARY.name}"
        raise UserError(f"nothing to report in {config.run_dir}: no {files}{where}")

    output = config.output or os.path.join(config.run_dir, REPORT_FILE)
    out_dir = os.path.dirname(os.path.abspath(output))
    if os.path.isdir(output):
        raise UserError(f"output {output} is a directory; name the HTML file to write")
    check_writable_dir(out_dir, "output")
    title = str(manifest.get("name") or config.run_dir) if isinstance(manifest, dict) else config.run_dir
    parts = [f"<h1>r1lab report: {html.escape(title)}</h1>", f"<p>{html.escape(os.path.abspath(config.run_dir))}</p>"]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    if manifest is not None:
        parts.append(_stage_table(stages))
    if eval_rows:
        parts.append(_eval_table(eval_rows))
        parts.append(_significance_table(eval_rows))
    for stage, records, completions in training:
        parts.extend(_training_section(stage, records, completions, out_dir, config, words))
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>r1lab report: {html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    write_text_atomic(output, page.encode("utf-8", "replace").decode("utf-8"))  # lone surrogates from JSON → "?"
    return output


def main(config: ReportConfig) -> dict[str, Any]:
    output = build_report(config)
    print(f"r1lab report: {output}")
    return {"report": output}
