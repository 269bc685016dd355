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
import io
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

from r1lab.config import setting
from r1lab.errors import UserError
from r1lab.outputs import (
    check_writable_dir,
    write_bytes_atomic,
    write_text_atomic,
)
from r1lab.run_files import (
    COMPLETIONS,
    HELDOUT,
    MANIFEST,
    METRICS,
    SAMPLES,
    SUMMARY,
    RunFileError,
    iter_records,
    read_manifest,
    read_records,
    read_summary,
)
from r1lab.significance import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    format_p,
    transitions,
)

REPORT_FILE = "report.html"
FINAL_EVAL_DIR = "eval"  # a training stage's ``final_eval`` lands in output_dir/eval
EVAL_DIR_KEY = "_eval_dir"  # set on an eval row's summary when its samples.jsonl is there (for the significance table)

# Words and phrases that mark a model re-examining its own reasoning (R1's "aha moment").
DEFAULT_REFLECTION_WORDS = ("wait", "let me check", "re-check", "recheck", "double-check", "verify", "等等", "重新", "检查")

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
    output: str | None = setting(None, 'Default: <run_dir>/report.html; the PNGs are written beside it.')
    reflection_words: list[str] = setting(
        default_factory=lambda: list(DEFAULT_REFLECTION_WORDS),
        help='Words counted as reflection, case-insensitively; ASCII words and phrases match whole words only ("awaits" is not "wait").')
    samples_per_phase: int = setting(2, 'Sample completions shown early / middle / late in training (spread by reward).')
    reflection_examples: int = setting(3, 'The first completions that use a reflection word.')
    max_sample_chars: int = setting(1500, 'Longer completions are cut in the page (the files keep them whole).')

    def __post_init__(self):
        for name in ("samples_per_phase", "reflection_examples", "max_sample_chars"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be 0 or more, got {getattr(self, name)}")


def check(config: ReportConfig) -> None:
    """The stage contract's check (commands.Command.check): a report's settings are checked when its config is built
    (``__post_init__``); what it reads is the run itself, checked as it is read."""


# ---------------------------------------------------------------------------------------------- reading


def _number(value: Any) -> float | None:
    """A finite int or float as float; anything else (None, bool, text, NaN, inf) is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_metrics(path: str) -> list[dict[str, Any]]:
    """metrics.jsonl's step records (the trainer's final summary line left out)."""
    return [record for record in read_records(path, METRICS) if "train_runtime" not in record]


def iter_completions(path: str) -> Iterator[dict[str, Any]]:
    """completions.jsonl records as ``{"step": int, "completion": str, "reward": float | None, "question": str | None}``
    (a reward that is not a finite number is None)."""
    for record in iter_records(path, COMPLETIONS):
        yield {
            "step": record["step"],
            "completion": record["completion"],
            "reward": _number(record.get("reward")),
            "question": record.get("question"),
        }


def read_completions(path: str) -> list[dict[str, Any]]:
    return list(iter_completions(path))


# ---------------------------------------------------------------------------------------------- reflection

_LATIN_WORD_CHAR = r"0-9A-Za-z_\u00C0-\u024F"


@lru_cache(maxsize=64)
def _reflection_pattern(words: tuple[str, ...]) -> re.Pattern | None:
    """One case-insensitive regex for all words: whitespace inside a phrase matches any whitespace; a word
    that starts (ends) with a Latin letter or digit must not be preceded (followed) by one. CJK words match
    anywhere, as CJK text has no spaces between words."""
    parts = []
    for word in sorted({w.strip() for w in words if isinstance(w, str) and w.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(piece) for piece in word.split())
        before = f"(?<![{_LATIN_WORD_CHAR}])" if re.match(f"[{_LATIN_WORD_CHAR}]", word[0]) else ""
        after = f"(?![{_LATIN_WORD_CHAR}])" if re.match(f"[{_LATIN_WORD_CHAR}]", word[-1]) else ""
        parts.append(before + body + after)
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def has_reflection(text: str | None, words: Iterable[str]) -> bool:
    pattern = _reflection_pattern(tuple(words))
    return bool(pattern and text and pattern.search(text))


def reflection_rate(texts: Iterable[str | None], words: Iterable[str]) -> float:
    """The fraction of ``texts`` that contain at least one of ``words`` (0.0 for no texts)."""
    pattern = _reflection_pattern(tuple(words))
    total = hits = 0
    for text in texts:
        total += 1
        if pattern is not None and isinstance(text, str) and pattern.search(text):
            hits += 1
    return hits / total if total else 0.0


def _highlight(text: str, words: tuple[str, ...]) -> str:
    """``text`` as HTML with every reflection word in <mark>."""
    pattern = _reflection_pattern(words)
    if pattern is None:
        return html.escape(text)
    pieces, last = [], 0
    for match in pattern.finditer(text):
        pieces.append(html.escape(text[last : match.start()]))
        pieces.append(f"<mark>{html.escape(match.group(0))}</mark>")
        last = match.end()
    pieces.append(html.escape(text[last:]))
    return "".join(pieces)


@dataclass
class CompletionsSummary:
    steps: list[int]  # every logged step, ascending
    counts: list[int]  # completions per step
    rates: list[float]  # reflection-word rate per step
    first_reflections: list[dict[str, Any]]  # the first completions (file order) with a reflection word
    phases: list[tuple[str, int, list[dict[str, Any]]]]  # (early/middle/late, step, completions shown)
    total: int


def _spread(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` records spread over the reward ranking, best first (best and worst for two)."""
    ranked = sorted(records, key=lambda r: (r["reward"] is None, -(r["reward"] or 0.0)))
    if count <= 0 or not ranked:
        return []
    if count >= len(ranked):
        return ranked
    if count == 1:
        return ranked[:1]
    indices = sorted({round(i * (len(ranked) - 1) / (count - 1)) for i in range(count)})
    return [ranked[i] for i in indices]


def summarize_completions(path: str, words: Iterable[str], examples: int = 3, per_phase: int = 2) -> CompletionsSummary | None:
    """Reflection-word rate per step, the first reflective completions and a few completions per phase;
    None when the file holds no usable record. Two streaming passes: the file can be large."""
    words = tuple(words)
    per_step: dict[int, list[int]] = {}
    firsts: list[dict[str, Any]] = []
    for record in iter_completions(path):
        counts = per_step.setdefault(record["step"], [0, 0])
        counts[0] += 1
        if has_reflection(record["completion"], words):
            counts[1] += 1
            if len(firsts) < examples:
                firsts.append(record)
    if not per_step:
        return None
    steps = sorted(per_step)
    chosen = {"early": steps[0], "middle": steps[(len(steps) - 1) // 2], "late": steps[-1]}
    if chosen["late"] == chosen["early"]:
        del chosen["late"]
    if chosen["middle"] in (chosen["early"], chosen.get("late")):
        del chosen["middle"]
    wanted = set(chosen.values())
    by_step: dict[int, list[dict[str, Any]]] = {step: [] for step in wanted}
    if per_phase > 0:
        for record in iter_completions(path):
            if record["step"] in wanted:
                by_step[record["step"]].append(record)
    phases = [(name, step, _spread(by_step[step], per_phase)) for name, step in chosen.items()]
    return CompletionsSummary(
        steps=steps,
        counts=[per_step[s][0] for s in steps],
        rates=[per_step[s][1] / per_step[s][0] for s in steps],
        first_reflections=firsts,
        phases=phases,
        total=sum(per_step[s][0] for s in steps),
    )


def eval_reflection_rate(samples_path: str, words: Iterable[str]) -> float | None:
    """Reflection-word rate over every completion (greedy and sampled) in an eval's samples.jsonl."""
    words = tuple(words)
    total = hits = 0
    for record in iter_records(samples_path, SAMPLES):
        for item in [record.get("greedy"), *record["samples"]]:
            if item is not None:
                total += 1
                hits += has_reflection(item["completion"], words)
    return hits / total if total else None


# ---------------------------------------------------------------------------------------------- stages


def _stage_dir(run_dir: str, output: Any, index: int, name: str) -> str:
    """A stage's directory: the manifest's path, else the same ``NN-name`` under ``run_dir`` (a run moved,
    or a relative path recorded from another working directory)."""
    candidates = []
    if isinstance(output, str) and output:
        candidates += [output, os.path.join(run_dir, os.path.basename(os.path.normpath(output)))]
    candidates.append(os.path.join(run_dir, f"{index + 1:02d}-{name}"))
    return next((path for path in candidates if os.path.isdir(path)), candidates[0])


def _stages(run_dir: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Each stage's name, command, status, inputs, error and directory: the manifest's, or the directory
    itself as one stage. Report stages are left out (this is their output)."""
    if not os.path.isfile(os.path.join(run_dir, MANIFEST.name)):
        name = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
        return [{"name": name, "command": "", "dir": run_dir, "status": "", "inputs": {}, "error": None, "seconds": None}], None
    manifest = read_manifest(run_dir)
    stages = []
    for index, entry in enumerate(manifest["stages"]):
        if entry["command"] == "report":
            continue
        stages.append(
            {
                "name": entry["name"],
                "command": entry["command"],
                "dir": _stage_dir(run_dir, entry.get("output"), index, entry["name"]),
                "status": entry["status"],
                "inputs": entry.get("inputs", {}),
                "error": entry.get("error"),
                "seconds": _number(entry.get("seconds")),
            }
        )
    return stages, manifest


# ---------------------------------------------------------------------------------------------- plots


def _label(key: str) -> str:
    if key.startswith("rewards/") and key.endswith("/mean"):
        key = key[len("rewards/") : -len("/mean")]
    return key.replace("$", r"\$")  # matplotlib would read $…$ as math


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for position, record in enumerate(records, start=1):
        value = _number(record.get(key))
        if value is not None:
            step = _number(record.get("step"))
            steps.append(step if step is not None else float(position))
            values.append(value)
    return steps, values


def training_panels(records: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
    """(title, keys on the left axis, keys on a right axis) of each panel with at least one logged value."""
    keys = {key for record in records for key, value in record.items() if _number(value) is not None}
    components = sorted(k for k in keys if k.startswith("rewards/") and k.endswith("/mean"))
    p90 = sorted(k for k in keys if k.startswith("completions/") and "p90" in k)
    panels = [
        ("reward and accuracy", ["reward"] + components + ["accuracy", "mean_token_accuracy"], []),
        ("completion length", ["completions/mean_length"] + (p90 or ["completions/max_length"]), []),
        ("held-out accuracy", ["heldout/greedy_accuracy"] + (["heldout/pass_at_1"] if _sampled_heldout(records) else []), []),
        ("zero-std groups and clipped completions", ["frac_reward_zero_std", "completions/clipped_ratio"], []),
        ("dynamic sampling: groups per step", ["dynamic_sampling/effective_groups", "dynamic_sampling/groups_sampled",
                                               "dynamic_sampling/groups_dropped"], ["dynamic_sampling/rounds"]),
        ("loss and KL", ["loss"], ["kl"]),
    ]
    kept = []
    for title, left, right in panels:
        left, right = [k for k in left if k in keys], [k for k in right if k in keys]
        if not left and right:
            left, right = right, []
        if left:
            kept.append((title, left, right))
    return kept


def _sampled_heldout(records: list[dict[str, Any]]) -> bool:
    """Whether a held-out eval's pass@1 differs from its greedy accuracy (sampled, not greedy copies)."""
    return any(
        _number(record.get("heldout/pass_at_1")) not in (None, _number(record.get("heldout/greedy_accuracy"))) for record in records
    )


def with_heldout_start(records: list[dict[str, Any]], stage_dir: str) -> list[dict[str, Any]]:
    """The metrics records with the held-out eval before the first step (``heldout.jsonl``'s step 0) put first,
    so that the held-out curve starts where training started; the later points are in the metrics already."""
    path = os.path.join(stage_dir, HELDOUT.name)
    if not os.path.isfile(path):
        return records
    start = [
        {"step": 0, **{f"heldout/{key}": value for key, value in record.items() if key not in ("step", "questions", "k", "seconds")}}
        for record in read_records(path, HELDOUT)
        if record["step"] == 0
    ]
    return start[:1] + records


def _figure(panels: int, width: float = 6.0, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(panels, 2)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(width * columns, height * rows))
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for spare in axes[panels:]:
        spare.set_visible(False)
    return figure, axes[:panels]


def _png(figure) -> bytes:
    from matplotlib.ticker import MaxNLocator

    for axis in figure.axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps
        low, high = axis.get_xlim()
        if axis.has_data() and high - low < 2:  # one logged step: show a step either side, not ±0.05
            middle = (low + high) / 2
            axis.set_xlim(middle - 1, middle + 1)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def plot_training(records: list[dict[str, Any]], title: str) -> bytes | None:
    """The training curves of one stage as PNG bytes (None when nothing numeric was logged)."""
    panels = training_panels(records)
    if not panels:
        return None
    figure, axes = _figure(len(panels))
    for axis, (panel, left, right) in zip(axes, panels):
        for key in left:
            axis.plot(*_series(records, key), marker=".", label=_label(key))
        handles, labels = axis.get_legend_handles_labels()
        if right:
            twin = axis.twinx()
            for index, key in enumerate(right):
                twin.plot(*_series(records, key), marker=".", linestyle="--", color=f"C{len(left) + index}", label=_label(key))
                twin.set_ylabel(", ".join(_label(k) for k in right))
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        axis.set_title(panel)
        axis.set_xlabel("step")
        (twin if right else axis).legend(handles, labels, fontsize=7)  # on the top axis, so no line crosses it
    figure.suptitle(title)
    return _png(figure)


def plot_reflection(summary: CompletionsSummary, title: str) -> bytes:
    figure, (axis,) = _figure(1, width=8.0)
    axis.plot(summary.steps, summary.rates, marker=".", label="completions with a reflection word")
    first = next((step for step, rate in zip(summary.steps, summary.rates) if rate > 0), None)
    if first is not None:
        axis.axvline(first, color="C3", linestyle=":", label=f"first at step {first}")
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("step")
    axis.set_ylabel("rate")
    axis.set_title(f"{title}: reflection-word rate")
    axis.legend(fontsize=7)
    return _png(figure)


# ---------------------------------------------------------------------------------------------- writing


# ---------------------------------------------------------------------------------------------- page


def _cell(value: Any, kind: str) -> str:
    number = _number(value)
    if number is None:
        return "" if value is None else html.escape(str(value))
    if kind == "int" and number.is_integer():
        return str(int(number))
    return f"{number:.1f}" if kind == "tokens" else f"{number:.3f}"


def _eval_table(rows: list[tuple[str, str, str, dict[str, Any]]]) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ("stage", "model", "status") + tuple(c for c, _ in EVAL_COLUMNS))
    body, previous = [], None
    for name, model, status, summary in rows:
        cells = [html.escape(name), html.escape(model), html.escape(status)]
        for column, kind in EVAL_COLUMNS:
            text = _cell(summary.get(column), kind)
            now, before = _number(summary.get(column)), _number((previous or {}).get(column))
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
        for h in ("A", "B", "questions", "became right", "became wrong", "greedy B − A", "sign test p", "pass@1 B − A", "95% interval")
    )
    body = []
    for item in found:
        cells = [html.escape(item.before), html.escape(item.after)]
        result = item.result
        if result is None:
            note = html.escape(f"not compared: {item.note}")
            body.append(f'<tr><td>{cells[0]}</td><td>{cells[1]}</td><td colspan="7">{note}</td></tr>')
            continue
        greedy = [] if result.greedy_p is None else [str(result.became_right), str(result.became_wrong), f"{result.greedy_delta:+.3f}", format_p(result.greedy_p)]
        sampled = [] if result.pass_delta is None else [f"{result.pass_delta:+.3f}", f"[{result.pass_low:+.3f}, {result.pass_high:+.3f}]"]
        cells += [str(result.questions)] + (greedy or ["–"] * 4) + (sampled or ["–"] * 2)
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


def _left_out(notes: list[str], label: str, what: str, read: Callable[[], Any]) -> Any:
    """``read()``, or None with a note when a file of the stage does not hold what r1lab declares for it
    (:mod:`r1lab.run_files`): the report shows what it can of a run, the note names file, line and field."""
    try:
        return read()
    except RunFileError as error:
        notes.append(f"{label}: {what} left out: {error}")
        return None


def _collect(config: ReportConfig, words: tuple[str, ...]):
    """Read every stage (no writing): the stages, the manifest, notes, training data and eval rows."""
    stages, manifest = _stages(config.run_dir)
    notes: list[str] = []
    training, eval_rows = [], []
    omitted = "reflection-word rate and sample completions omitted"
    for stage in stages:
        name, folder = stage["name"], stage["dir"]
        metrics_path = os.path.join(folder, METRICS.name)
        records: list[dict[str, Any]] = []
        if os.path.isfile(metrics_path):
            logged = _left_out(notes, name, "training curves", lambda: read_metrics(metrics_path))
            if logged == []:
                notes.append(f"{name}: {METRICS.name} holds no step records")
            elif logged:
                records = _left_out(notes, name, "held-out start", lambda: with_heldout_start(logged, folder)) or logged
        completions_path = os.path.join(folder, COMPLETIONS.name)
        completions = None
        if os.path.isfile(completions_path):
            noted = len(notes)
            completions = _left_out(notes, name, "completions", lambda: summarize_completions(
                completions_path, words, config.reflection_examples, config.samples_per_phase))
            if completions is None and len(notes) == noted:
                notes.append(f"{name}: {COMPLETIONS.name} holds no completions; {omitted}")
        elif stage["command"] == "grpo" or any("reward" in record for record in records):
            notes.append(f"{name}: no {COMPLETIONS.name}; {omitted}")
        if records or completions:
            training.append((stage, records, completions))
        model = str(stage["inputs"].get("model", ""))
        for eval_dir, label in ((folder, name), (os.path.join(folder, FINAL_EVAL_DIR), f"{name} (final eval)")):
            if not os.path.isfile(os.path.join(eval_dir, SUMMARY.name)):
                continue
            summary = _left_out(notes, label, "eval", lambda: read_summary(eval_dir))
            if summary is None:
                continue
            if os.path.isfile(os.path.join(eval_dir, SAMPLES.name)):
                rate = _left_out(notes, label, "reflection-word rate", lambda: eval_reflection_rate(os.path.join(eval_dir, SAMPLES.name), words))
                summary = {**summary, "reflection_rate": rate, EVAL_DIR_KEY: eval_dir}
            eval_rows.append((label, model if eval_dir == folder else name, stage["status"], summary))
    return stages, manifest, notes, training, eval_rows


def _training_section(stage, records, completions, out_dir: str, config: ReportConfig, words: tuple[str, ...]) -> list[str]:
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
    stages, manifest, notes, training, eval_rows = _collect(config, words)
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
