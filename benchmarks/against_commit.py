"""r1lab's GRPO step before and after a change, measured in one invocation: ``r1lab bench grpo --sides [r1lab]``
run alternately in a checkout of the earlier commit and in this one (fresh processes, the same model, prompts and
settings), then the medians and the after/before ratio of each figure.

    git worktree add ../r1lab-before <commit>
    python benchmarks/against_commit.py ../r1lab-before [--repeats 2] [-- any r1lab bench grpo argument ...]

Each checkout runs its own code (``PYTHONPATH`` set to it) from its own root (so ``../shared`` next to it is the
data); the JSON of every run goes to ``runs/bench/against/`` here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

FIGURES = (  # key in bench's per-run figures, label
    ("seconds_per_step", "s / optimizer step"),
    ("generation_tokens_per_s", "generated tok/s"),
    ("mean_completion_tokens", "tokens / completion"),
    ("peak_rss_mb", "peak RSS MB"),
)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_side(root: str, output: str, bench_arguments: list[str]) -> list[dict]:
    command = [sys.executable, "-m", "r1lab", "bench", "grpo", "--sides", "[r1lab]", "--repeats", "1"]
    command += ["--output", output, *bench_arguments]
    environment = {**os.environ, "PYTHONPATH": os.path.abspath(root)}
    if subprocess.run(command, cwd=root, env=environment).returncode != 0:
        raise SystemExit(f"error: r1lab bench grpo failed in {root} (its own error line is above)")
    with open(output, encoding="utf-8") as handle:
        return [run["figures"] for run in json.load(handle)["runs"] if run.get("figures")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="a checkout of the earlier commit")
    parser.add_argument("--repeats", type=int, default=2)
    arguments, bench_arguments = parser.parse_known_args()
    bench_arguments = [argument for argument in bench_arguments if argument != "--"]
    if arguments.repeats < 1:
        return _error(f"--repeats must be at least 1, not {arguments.repeats}")
    if not os.path.isfile(os.path.join(arguments.before, "r1lab", "__init__.py")):
        return _error(f"{arguments.before} is not an r1lab checkout (no r1lab/__init__.py in it)")
    out_dir = os.path.abspath(os.path.join("runs", "bench", "against"))
    os.makedirs(out_dir, exist_ok=True)
    figures: dict[str, list[dict]] = {"before": [], "after": []}
    for repeat in range(arguments.repeats):
        for label, root in (("before", arguments.before), ("after", ".")):
            output = os.path.join(out_dir, f"{label}-{repeat}.json")
            figures[label] += run_side(root, output, bench_arguments)
    print(f"{'':32}{'before':>12}{'after':>12}{'after/before':>14}   (medians of {arguments.repeats} runs each)")
    for key, label in FIGURES:
        medians = {}
        for side in ("before", "after"):
            values = [run[key] for run in figures[side] if run.get(key) is not None]
            medians[side] = statistics.median(values) if values else None
        if medians["before"] and medians["after"]:
            ratio = medians["after"] / medians["before"]
            print(f"{label:32}{medians['before']:12.2f}{medians['after']:12.2f}{ratio:13.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
