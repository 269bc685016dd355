"""``r1lab bench grpo``: r1lab's GRPO against the seed's script (``benchmarks/seed_grpo.py``), in one run.

Each run is a fresh process (``python -m r1lab.bench --worker``), the two sides alternating (seed, r1lab, seed,
r1lab, …) with the same model, GSM8K prompts, number of optimizer steps, 16 generations per prompt and
200-token cap, and the same rewards (the seed's five, bit-faithful) and loss (TRL 1.x's defaults, which the
seed's script gets: beta 0, loss ``dapo``). A step is what the seed's step is: 4 completions of a 16-completion
group. Inside each worker a probe times every optimizer step and every generation, counts the generated tokens,
the groups whose rewards vary (the only ones GRPO learns from) and the prompts seen, and reads the peak RSS
(and peak GPU memory). The parent prints min / median of each figure, the r1lab/seed ratios, and writes them all
to a JSON file.

    r1lab bench grpo                                  # embedded model on the CPU (Qwen2.5-0.5B-Instruct on a GPU)
    r1lab bench grpo --model M --steps 4 --repeats 3 --dataset ../shared/data/gsm8k
    r1lab bench grpo --r1lab_overrides '{stop_at_answer: false}'   # one lever off
    r1lab bench grpo --precision bf16                 # both sides in bf16 on the CPU (the seed's own setting)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from r1lab.commands import configure_logging, run_command
from r1lab.errors import UserError
from r1lab.models import resolve_model
from r1lab.outputs import write_json_atomic
from r1lab.tasks import TaskSpec, get_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_SCRIPT = os.path.join(REPO, "benchmarks", "seed_grpo.py")
LOCAL_GSM8K = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "gsm8k"))
GPU_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
SIDES = ("seed", "r1lab")
PRECISIONS = ("fp32", "bf16")
SEED_REWARDS = "seed.xmlcount,seed.soft_format,seed.strict_format,seed.int_answer,seed.correctness"


@dataclass
class BenchConfig:
    target: str = "grpo"  # what to benchmark (only grpo so far)
    model: str | None = None  # default: embedded on the CPU, Qwen/Qwen2.5-0.5B-Instruct on a GPU
    steps: int = 4  # optimizer steps per run; the seed generates a 16-completion group every 4 steps
    repeats: int = 2  # runs per side
    dataset: str | None = None  # GSM8K folder or file; default: ../shared/data/gsm8k next to the repo, else the hub
    limit: int = 500  # the seed's first 500 training questions
    max_completion_length: int = 200  # the seed's cap (smaller only for smoke tests)
    output: str = "runs/bench/grpo.json"
    r1lab_overrides: dict[str, Any] = field(default_factory=dict)  # extra `r1lab grpo` fields, e.g. {stop_at_answer: false}
    keep_outputs: bool = False  # keep each run's output directory (trained weights) beside the logs
    sides: list[str] = field(default_factory=lambda: list(SIDES))  # [r1lab] alone: try a setting without rerunning the seed
    # Both sides' precision on a CPU: fp32, or bf16 (the seed's own setting: on a CPU both sides' weights in
    # bfloat16, as the seed loads them). On a GPU both sides run bf16 whatever this says.
    precision: str = "fp32"


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def check(config: BenchConfig) -> tuple[str, str | None, int]:
    """(model path, dataset, limit) after validation; every problem as a UserError before any run starts."""
    if config.target != "grpo":
        raise UserError(f"r1lab bench: unknown target {config.target!r}; choose grpo")
    if config.steps < 1:
        raise UserError(f"steps must be at least 1, got {config.steps}")
    if config.repeats < 1:
        raise UserError(f"repeats must be at least 1, got {config.repeats}")
    if not config.sides or any(side not in SIDES for side in config.sides):
        raise UserError(f"sides must be some of {', '.join(SIDES)}, got {config.sides}")
    if config.limit < 1:
        raise UserError(f"limit must be at least 1, got {config.limit}")
    if config.precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    if config.max_completion_length < 1:
        raise UserError(f"max_completion_length must be at least 1, got {config.max_completion_length}")
    if not os.path.isfile(SEED_SCRIPT):
        raise UserError(f"the seed's baseline script is missing: {SEED_SCRIPT} (run from a clone of the repository)")
    for key in ("model", "dataset", "limit", "max_steps", "max_completion_length", "output_dir"):
        if key in config.r1lab_overrides:
            raise UserError(f"r1lab_overrides: set {key} with the bench's own option, not as an override")
    model = resolve_model(config.model or (GPU_MODEL if _on_gpu() else "embedded"))
    dataset = config.dataset
    if dataset is None and os.path.isfile(os.path.join(LOCAL_GSM8K, "train.jsonl")):
        dataset = LOCAL_GSM8K
    if dataset is not None:
        dataset = os.path.abspath(os.path.expanduser(dataset))
    rows = get_task(TaskSpec(task="gsm8k", dataset=dataset, split="train")).load()
    return model, dataset, min(config.limit, len(rows))


def r1lab_arguments(model: str, dataset: str | None, limit: int, steps: int, length: int, output_dir: str, overrides: dict,
                    precision: str = "fp32") -> list[str]:
    """The ``r1lab grpo`` command line of r1lab's side: the seed's run (rewards, hyper-parameters, TRL 1.x
    objective) and its layout (one completion per micro-batch, 4 accumulation steps: its memory profile), and r1lab's
    speed settings. ``--r1lab_overrides '{per_device_train_batch_size: 4, gradient_accumulation_steps: 1,
    gradient_checkpointing: false}'`` trades memory for speed (the 4 rows share their prompt's forward)."""
    values: dict[str, Any] = {
        "model": model,
        "task": "gsm8k",
        "dataset": dataset if dataset is not None else "null",
        "split": "train",
        "limit": limit,
        "template": "xml",
        "rewards": SEED_REWARDS,
        "learning_rate": 5e-6,
        "adam_beta1": 0.9,
        "adam_beta2": 0.99,
        "weight_decay": 0.1,
        "warmup_steps": 0.1,
        "lr_scheduler_type": "cosine",
        "logging_steps": 1,
        "max_grad_norm": 0.1,
        "num_generations": 16,
        "generation_batch_size": 16,
        "max_prompt_length": 256,
        "max_completion_length": length,
        "per_device_train_batch_size": 1,  # the seed's: 1 completion x 4 accumulation steps per optimizer step
        "gradient_accumulation_steps": 4,
        "beta": 0.0,  # the seed's script on TRL 1.x gets TRL's defaults: no KL term, dapo loss
        "loss_type": "dapo",
        "scale_rewards": "group",
        "temperature": 1.0,
        "num_iterations": 1,
        "max_steps": steps,
        "save_strategy": "no",
        "report_to": "none",
        "output_dir": output_dir,
        "overwrite": "true",
        "generation_loop": "r1lab",
        "stop_at_answer": "true",
    }
    if precision == "bf16" and not _on_gpu():
        # The seed's bf16 on a CPU: its weights loaded in bfloat16 (no float32 master copy), as r1lab's here.
        values.update({"bf16": "true", "use_cpu": "true", "model_dtype": "bfloat16"})
    if _on_gpu():
        values.update({"bf16": "true", "vllm_gpu_memory_utilization": 0.3})
        if importlib.util.find_spec("vllm") is not None:
            values.update({"use_vllm": "true", "vllm_mode": "colocate"})
    values.update(overrides)
    arguments = ["grpo"]
    for key, value in values.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        arguments += [f"--{key}", str(value)]
    return arguments


def seed_arguments(model: str, dataset: str | None, limit: int, steps: int, length: int, output_dir: str,
                   precision: str = "fp32") -> list[str]:
    arguments = ["--model", model, "--limit", str(limit), "--max_steps", str(steps), "--max_completion_length", str(length)]
    arguments += ["--output_dir", output_dir] + (["--cpu_bf16"] if precision == "bf16" else [])
    return arguments + (["--dataset", dataset] if dataset is not None else [])


# --- the worker: one run in its own process, measured by a probe -------------------------------------------


def _install_probe(record: dict[str, Any]) -> None:
    """Time every optimizer step and generation of any GRPOTrainer in this process (the seed's and r1lab's)."""
    import torch
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    def gpu_used() -> None:
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            record["peak_gpu_used_mb"] = max(record.get("peak_gpu_used_mb", 0.0), (total - free) / 2**20)

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            record["step_seconds"].append(time.perf_counter() - self.started)
            gpu_used()

        def on_train_begin(self, args, state, control, **kwargs):
            record["completions_per_step"] = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
            record["num_generations"] = args.num_generations

    original_init, original_generate = GRPOTrainer.__init__, GRPOTrainer._generate
    original_score = GRPOTrainer._generate_and_score_completions

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(StepTimer())

    def generate(self, prompts):
        started = time.perf_counter()
        result = original_generate(self, prompts)
        completion_ids = result[1]
        record["generations"].append(
            {
                "seconds": time.perf_counter() - started,
                "completions": len(completion_ids),
                "tokens": sum(len(ids) for ids in completion_ids),
                "prompts": sorted({hashlib.sha1(str(p[-1]["content"]).encode()).hexdigest()[:10] for p in prompts}),
            }
        )
        gpu_used()
        return result

    def score(self, inputs):
        output = original_score(self, inputs)
        groups = output["advantages"].detach().reshape(-1, self.num_generations)
        record["groups"] += groups.shape[0]
        record["groups_with_signal"] += int((groups.abs() > 0).any(dim=1).sum())
        return output

    GRPOTrainer.__init__, GRPOTrainer._generate = init, generate
    GRPOTrainer._generate_and_score_completions = score


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_r1lab(arguments: list[str]) -> int:
    """``r1lab <arguments>`` in this process (the probe watches its trainer): 0, or 2 with one error line."""
    configure_logging()
    try:
        run_command(arguments[0], arguments[1:])
    except UserError as error:
        print(f"r1lab: error: {error}", file=sys.stderr)
        return 2
    return 0


def worker(side: str, arguments: list[str], result_path: str) -> int:
    import torch

    record: dict[str, Any] = {"side": side, "step_seconds": [], "generations": [], "groups": 0, "groups_with_signal": 0}
    _install_probe(record)
    started = time.perf_counter()
    if side == "seed":
        spec = importlib.util.spec_from_file_location("seed_grpo", SEED_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(arguments)
        code = 0
    else:
        code = _run_r1lab(arguments)
    record["wall_seconds"] = time.perf_counter() - started
    record["peak_rss_mb"] = _peak_rss_mb()
    record["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        record["peak_gpu_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20

    write_json_atomic(result_path, record)
    return code


# --- the parent: alternate the sides, summarise, compare -----------------------------------------------------


def _figures(record: dict[str, Any]) -> dict[str, Any]:
    steps = len(record["step_seconds"])
    train_seconds = sum(record["step_seconds"])
    generation_seconds = sum(g["seconds"] for g in record["generations"])
    tokens = sum(g["tokens"] for g in record["generations"])
    figures = {
        "steps": steps,
        "seconds_per_step": train_seconds / steps if steps else None,
        "generated_tokens": tokens,
        "generation_tokens_per_s": tokens / generation_seconds if generation_seconds else None,
        "generation_share": generation_seconds / train_seconds if train_seconds else None,
        "mean_completion_tokens": tokens / max(1, sum(g["completions"] for g in record["generations"])),
        "peak_rss_mb": record["peak_rss_mb"],
        "groups": record["groups"],
        "groups_with_signal": record["groups_with_signal"],
        "signal_groups_per_min": record["groups_with_signal"] / (train_seconds / 60) if train_seconds else None,
        "completions_per_step": record.get("completions_per_step"),
        "wall_seconds": record["wall_seconds"],
    }
    for key in ("peak_gpu_allocated_mb", "peak_gpu_used_mb"):
        if key in record:
            figures[key] = record[key]
    return figures


METRICS = (  # key, label, format, better
    ("seconds_per_step", "s / optimizer step", "{:.2f}", "lower"),
    ("generation_tokens_per_s", "generated tok/s (generation)", "{:.1f}", "higher"),
    ("mean_completion_tokens", "tokens / completion", "{:.1f}", None),
    ("generation_share", "share of step in generation", "{:.2f}", None),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}", "lower"),
    ("peak_gpu_used_mb", "peak GPU used MB", "{:.0f}", "lower"),
    ("signal_groups_per_min", "groups with reward variance / min", "{:.2f}", "higher"),
)


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for side, figures in runs.items():
        summary[side] = {}
        for key, *_ in METRICS:
            values = [f[key] for f in figures if f.get(key) is not None]
            if values:
                summary[side][key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    ratios = {}
    for key, *_ in METRICS:
        seed, ours = summary.get("seed", {}).get(key), summary.get("r1lab", {}).get(key)
        if seed and ours and seed["median"]:
            ratios[key] = {"r1lab/seed median": ours["median"] / seed["median"], "r1lab/seed min": ours["min"] / seed["min"] if seed["min"] else None}
    summary["ratios"] = ratios
    seed_step, our_step = summary.get("seed", {}).get("seconds_per_step"), summary.get("r1lab", {}).get("seconds_per_step")
    if seed_step and our_step:
        summary["step_throughput_speedup"] = {"median": seed_step["median"] / our_step["median"], "min": seed_step["min"] / our_step["min"]}
    return summary


def _format(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def report_lines(summary: dict[str, Any]) -> list[str]:
    lines = [f"{'':36} {'seed min':>10} {'seed med':>10} {'r1lab min':>10} {'r1lab med':>10} {'r1lab/seed':>11}"]
    for key, label, pattern, _ in METRICS:
        seed, ours = summary.get("seed", {}).get(key), summary.get("r1lab", {}).get(key)
        if not seed and not ours:
            continue
        ratio = summary["ratios"].get(key, {}).get("r1lab/seed median")
        lines.append(
            f"{label:36} {_format(seed and seed['min'], pattern):>10} {_format(seed and seed['median'], pattern):>10} "
            f"{_format(ours and ours['min'], pattern):>10} {_format(ours and ours['median'], pattern):>10} "
            f"{_format(ratio, '{:.2f}x'):>11}"
        )
    speedup = summary.get("step_throughput_speedup")
    if speedup:
        lines.append(f"step throughput r1lab/seed: {speedup['median']:.2f}x (medians), {speedup['min']:.2f}x (best runs); goal >= 4x")
    return lines


def main(config: BenchConfig) -> dict[str, Any]:
    model, dataset, limit = check(config)
    output = os.path.abspath(config.output)
    work = output[: -len(".json")] if output.endswith(".json") else output + ".d"
    os.makedirs(work, exist_ok=True)
    device = "GPU " + _gpu_name() if _on_gpu() else f"CPU, {os.cpu_count()} cores, {config.precision} on both sides"
    print(f"r1lab bench grpo: model {model}, dataset {dataset or 'openai/gsm8k (hub)'} (first {limit} questions), "
          f"{config.steps} steps x {config.repeats} repeats per side, 16 completions per prompt of <= {config.max_completion_length} tokens, "
          f"{device}", flush=True)
    sides = [side for side in SIDES if side in config.sides]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    records = []
    commands = {}
    for repeat in range(config.repeats):
        for side in sides:
            name = f"{side}-{repeat + 1}"
            out_dir = os.path.join(work, name)
            shutil.rmtree(out_dir, ignore_errors=True)
            if side == "seed":
                arguments = seed_arguments(model, dataset, limit, config.steps, config.max_completion_length, out_dir, config.precision)
                commands[side] = [sys.executable, SEED_SCRIPT, *arguments]
            else:
                arguments = r1lab_arguments(
                    model, dataset, limit, config.steps, config.max_completion_length, out_dir, config.r1lab_overrides,
                    config.precision,
                )
                commands[side] = ["r1lab", *arguments]
            record = _run_worker(side, arguments, os.path.join(work, f"{name}.json"), os.path.join(work, f"{name}.log"))
            if not config.keep_outputs:
                shutil.rmtree(out_dir, ignore_errors=True)
            record["figures"] = _figures(record)
            records.append(record)
            runs[side].append(record["figures"])
            f = record["figures"]
            print(f"  {name:8} {_format(f['seconds_per_step'], '{:.2f}')} s/step, "
                  f"{_format(f['generation_tokens_per_s'], '{:.1f}')} tok/s in generation, "
                  f"{f['mean_completion_tokens']:.0f} tokens/completion, peak RSS {f['peak_rss_mb']:.0f} MB, "
                  f"{f['groups_with_signal']}/{f['groups']} groups with reward variance", flush=True)
    summary = summarize(runs)
    prompts = [record["generations"] and record["generations"][0]["prompts"] for record in records]
    same_prompts = all(p == prompts[0] for p in prompts)
    for line in report_lines(summary):
        print(line)
    print(f"same prompts in every run: {'yes' if same_prompts else 'NO'}; results: {output}")
    result = {
        "benchmark": "r1lab bench grpo",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "device": device,
        "model": model,
        "dataset": dataset,
        "limit": limit,
        "steps": config.steps,
        "repeats": config.repeats,
        "r1lab_overrides": config.r1lab_overrides,
        "precision": config.precision,
        "max_completion_length": config.max_completion_length,
        "commands": {side: " ".join(command) for side, command in commands.items()},
        "same_prompts": same_prompts,
        "summary": summary,
        "runs": records,
    }

    write_json_atomic(output, result)
    return result


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def _run_worker(side: str, arguments: list[str], result_path: str, log_path: str) -> dict[str, Any]:
    if os.path.exists(result_path):
        os.unlink(result_path)
    spec_fd, spec_path = tempfile.mkstemp(prefix="r1lab-bench-", suffix=".json")
    with os.fdopen(spec_fd, "w") as handle:
        json.dump({"side": side, "arguments": arguments, "result": result_path}, handle)
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            code = subprocess.call([sys.executable, "-m", "r1lab.bench", "--worker", spec_path], stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
    finally:
        os.unlink(spec_path)
    if code != 0 or not os.path.isfile(result_path):
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            tail = [line.strip() for line in handle.read().splitlines() if line.strip()][-1:] or ["(no output)"]
        raise UserError(f"the {side} run failed (exit {code}): {tail[0][:300]} (log: {log_path})")
    with open(result_path, encoding="utf-8") as handle:
        return json.load(handle)


def _worker_main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as handle:
        spec = json.load(handle)
    return worker(spec["side"], spec["arguments"], spec["result"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2:]))
    sys.exit("usage: r1lab bench grpo [--model M] [--steps N] [--repeats R] [--dataset PATH]")
