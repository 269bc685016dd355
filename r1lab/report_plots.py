"""The report's plots: training curves (reward components, accuracy, length, held-out accuracy, zero-variance
groups, KL and loss) and the reflection-word rate, each as PNG bytes. matplotlib is imported when a plot is drawn.
"""

from __future__ import annotations

import io
import math
from typing import Any

from r1lab.report_data import CompletionsSummary, finite_number


def _label(key: str) -> str:
    if key.startswith("rewards/") and key.endswith("/mean"):
        key = key[len("rewards/") : -len("/mean")]
    return key.replace("$", r"\$")  # matplotlib would read $…$ as math


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for position, record in enumerate(records, start=1):
        value = finite_number(record.get(key))
        if value is not None:
            step = finite_number(record.get("step"))
            steps.append(step if step is not None else float(position))
            values.append(value)
    return steps, values


def training_panels(records: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
    """(title, keys on the left axis, keys on a right axis) of each panel with at least one logged value."""
    keys = {key for record in records for key, value in record.items() if finite_number(value) is not None}
    components = sorted(k for k in keys if k.startswith("rewards/") and k.endswith("/mean"))
    p90 = sorted(k for k in keys if k.startswith("completions/") and "p90" in k)
    panels = [
        ("reward and accuracy", ["reward", *components, "accuracy", "mean_token_accuracy"], []),
        ("completion length", ["completions/mean_length"] + (p90 or ["completions/max_length"]), []),
        (
            "held-out accuracy",
            ["heldout/greedy_accuracy"] + (["heldout/pass_at_1"] if _sampled_heldout(records) else []),
            [],
        ),
        ("zero-std groups and clipped completions", ["frac_reward_zero_std", "completions/clipped_ratio"], []),
        (
            "dynamic sampling: groups per step",
            ["dynamic_sampling/effective_groups", "dynamic_sampling/groups_sampled", "dynamic_sampling/groups_dropped"],
            ["dynamic_sampling/rounds"],
        ),
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
        finite_number(record.get("heldout/pass_at_1"))
        not in (None, finite_number(record.get("heldout/greedy_accuracy")))
        for record in records
    )


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
                twin.plot(
                    *_series(records, key), marker=".", linestyle="--", color=f"C{len(left) + index}", label=_label(key)
                )
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
