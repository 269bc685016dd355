"""``r1lab bench grpo``: r1lab's GRPO against the seed's script (``benchmarks/seed_grpo.py``), in one run.

Each run is a fresh process (``python -m r1lab.bench --worker``), the sides alternating (seed, r1lab, seed,
r1lab, …; under ``--precision auto`` seed fp32, seed bf16, r1lab, …) with the same model, GSM8K prompts, number of optimizer steps, 16 generations per prompt and
200-token cap, and the same rewards (the seed's five, bit-faithful) and loss (TRL 1.x's defaults, which the
seed's script gets: beta 0, loss ``dapo``). A step is what the seed's step is: 4 completions of a 16-completion
group. Inside each worker a probe times every optimizer step and every generation, counts the generated tokens,
the groups whose rewards vary (the only ones GRPO learns from) and the prompts seen, reads the peak RSS
(and peak GPU memory), and counts what a roofline needs: the model's parameters and weight bytes, the dtype it
trained in, the tokens that went through the training forward and backward, the sequential decoding steps.

The parent names the CPU (:func:`r1lab.hardware.cpu_kind`), measures the machine's peak before the runs (matmul
GFLOP/s in fp32 and bf16, memory GB/s), and gives each run a roofline: 6 x parameters x trained tokens over the peak
GFLOP/s of the dtype the step trains in, plus weight bytes x decoding steps over the bandwidth (each decoding step
reads every weight of the model it decodes from once: r1lab's bf16 sampler copy where it samples from one), per
optimizer step; the measured s/step is printed as a multiple of it. It prints min / median of each figure, the
r1lab/seed ratios, and writes them all to a JSON file.

``--precision auto`` (the default): r1lab runs at its own choice (``model_dtype: auto``), the seed in fp32 and in
bf16 on a CPU, and r1lab is compared with the seed at its faster precision (median s/step). ``fp32`` / ``bf16``:
both sides in that precision.

    r1lab bench grpo                                  # embedded model on the CPU (Qwen2.5-0.5B-Instruct on a GPU)
    r1lab bench grpo --model M --steps 4 --repeats 3 --dataset ../shared/data/gsm8k
    r1lab bench grpo --r1lab_overrides '{stop_at_answer: false}'   # one lever off
    r1lab bench grpo --precision bf16                 # both sides in bf16 on the CPU (the seed's own setting)
    r1lab bench grpo --precision fp32                 # both sides in float32
"""

from __future__ import annotations

import functools
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
from dataclasses import dataclass
from typing import Any, Literal

from r1lab.commands import COMMANDS, command_config, configure_logging, load_command, run_command
from r1lab.config import check_declared, setting
from r1lab.errors import UserError
from r1lab.hardware import CpuKind, cpu_kind
from r1lab.models import resolve_model
from r1lab.outputs import check_writable_dir, write_json_atomic
from r1lab.tasks import TaskSpec, get_task
from r1lab.training.trl_compat import wrap_grpo_trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_SCRIPT = os.path.join(REPO, "benchmarks", "seed_grpo.py")
LOCAL_GSM8K = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "gsm8k"))
GPU_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
SIDES = ("seed", "r1lab")
SEED_PRECISIONS_AUTO = ("fp32", "bf16")  # the seed's precisions under --precision auto on a CPU (a GPU: bf16 only)
SEED_REWARDS = "seed.xmlcount,seed.soft_format,seed.strict_format,seed.int_answer,seed.correctness"


@dataclass
class BenchConfig:
    target: str = setting("grpo", "What to benchmark (only grpo so far).")
    model: str | None = setting(None, "Default: embedded on the CPU, Qwen/Qwen2.5-0.5B-Instruct on a GPU.")
    steps: int = setting(4, "Optimizer steps per run; the seed generates a 16-completion group every 4 steps.")
    repeats: int = setting(2, "Runs per side.")
    dataset: str | None = setting(
        None, "GSM8K folder or file; default: ../shared/data/gsm8k next to the repo, else the hub."
    )
    limit: int = setting(500, "The seed's first 500 training questions.")
    max_completion_length: int = setting(200, "The seed's cap (smaller only for smoke tests).")
    output: str = setting("runs/bench/grpo.json", "The JSON file every run and ratio is written to (logs beside it).")
    r1lab_overrides: dict[str, Any] = setting(
        default_factory=dict, help="Extra `r1lab grpo` fields, e.g. {stop_at_answer: false}."
    )
    keep_outputs: bool = setting(False, "Keep each run's output directory (trained weights) beside the logs.")
    sides: list[str] = setting(
        default_factory=lambda: list(SIDES), help="[r1lab] alone: try a setting without rerunning the seed."
    )
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto",
        "auto: r1lab at its own choice (model_dtype auto), the seed in fp32 and in bf16, r1lab compared with the "
        "seed's faster one. fp32 or bf16: both sides in that precision on a CPU (bf16 is the seed's own setting: its "
        "weights in bfloat16). On a GPU both sides run bf16 whatever this says.",
    )


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
    check_declared(config)
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
    check_writable_dir(os.path.dirname(os.path.abspath(config.output)), "output")
    if os.path.isdir(config.output):
        raise UserError(f"output {config.output} is a directory: name the JSON file to write")
    limit = min(config.limit, len(rows))
    if "r1lab" in config.sides:
        _check_r1lab_side(model, dataset, limit, config)
    return model, dataset, limit


def _check_r1lab_side(model: str, dataset: str | None, limit: int, config: BenchConfig) -> None:
    """r1lab's side built and checked as its worker will run it (``r1lab_overrides`` included: an unknown key, a
    wrong type, a setting GRPO refuses), before any worker starts."""
    command, *arguments = r1lab_arguments(
        model,
        dataset,
        limit,
        config.steps,
        config.max_completion_length,
        os.path.join(os.path.dirname(os.path.abspath(config.output)), "r1lab-check"),
        config.r1lab_overrides,
        "fp32" if config.precision == "auto" else config.precision,
    )
    try:
        side = command_config(command, arguments)
        getattr(load_command(command)[0], COMMANDS[command].check)(side)
    except UserError as error:
        raise UserError(f"r1lab_overrides: r1lab's side would fail: {error}") from None


def r1lab_arguments(
    model: str,
    dataset: str | None,
    limit: int,
    steps: int,
    length: int,
    output_dir: str,
    overrides: dict,
    precision: str = "auto",
) -> list[str]:
    """The ``r1lab grpo`` command line of r1lab's side: the seed's run (rewards, hyper-parameters, TRL 1.x
    objective) and its layout (one completion per micro-batch, 4 accumulation steps: its memory profile), and r1lab's
    speed settings. ``--r1lab_overrides '{per_device_train_batch_size: 4, gradient_accumulation_steps: 1,
    gradient_checkpointing: false}'`` trades memory for speed (the 4 rows share their prompt's forward).
    ``precision`` on a CPU: auto leaves it to r1lab (``model_dtype: auto``), fp32 and bf16 force it."""
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
    if precision == "fp32" and not _on_gpu():
        # Explicit: r1lab's own auto computes in bf16 on a CPU with bf16 units.
        values.update({"bf16": "false", "model_dtype": "float32"})
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


def seed_arguments(
    model: str, dataset: str | None, limit: int, steps: int, length: int, output_dir: str, precision: str = "fp32"
) -> list[str]:
    """The seed script's command line; ``precision`` fp32 or bf16 (``--cpu_bf16``; a GPU runs bf16 anyway)."""
    arguments = [
        "--model",
        model,
        "--limit",
        str(limit),
        "--max_steps",
        str(steps),
        "--max_completion_length",
        str(length),
    ]
    arguments += ["--output_dir", output_dir] + (["--cpu_bf16"] if precision == "bf16" else [])
    return arguments + (["--dataset", dataset] if dataset is not None else [])


# --- the worker: one run in its own process, measured by a probe -------------------------------------------


def _install_probe(record: dict[str, Any]) -> None:
    """Time every optimizer step and generation of any GRPOTrainer in this process (the seed's and r1lab's)."""
    import torch
    from transformers import TrainerCallback

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
            record["completions_per_step"] = (
                args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
            )
            record["num_generations"] = args.num_generations

    def init(original_init, self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(StepTimer())
        record.update(model_figures(self.model, self.args.bf16, self.args.fp16))

    def generate(original_generate, self, prompts):
        started = time.perf_counter()
        result = original_generate(self, prompts)
        completion_ids = result[1]
        # r1lab's sampler may decode from a bf16 copy of the float32 policy (sampling_dtype): that copy's bytes are
        # what each decoding step reads
        sampler = getattr(self, "r1lab_sampler", None)
        if sampler is not None and "decoding_weight_bytes" not in record:  # the copy's size never changes
            record["decoding_weight_bytes"] = model_figures(sampler, False, False)["weight_bytes"]
        record["generations"].append(
            {
                "seconds": time.perf_counter() - started,
                "completions": len(completion_ids),
                "tokens": sum(len(ids) for ids in completion_ids),
                # The rows are decoded as one batch: one sequential step per token of the longest.
                "decoding_steps": max((len(ids) for ids in completion_ids), default=0),
                "prompts": sorted({hashlib.sha1(str(p[-1]["content"]).encode()).hexdigest()[:10] for p in prompts}),
            }
        )
        gpu_used()
        return result

    def compute_loss(original_loss, self, model, inputs):
        # The rows that go through the training forward and backward (r1lab's zero-advantage skip passes fewer, or
        # none); their prompt and completion tokens, padding left out.
        if torch.is_grad_enabled():
            record["trained_tokens"] += int(inputs["prompt_mask"].sum()) + int(inputs["completion_mask"].sum())
        return original_loss(self, model, inputs)

    def score(original_score, self, inputs):
        output = original_score(self, inputs)
        advantages = output["advantages"].detach()
        if advantages.dim() == 2:  # per-token advantages (r1lab's rollout correction): a row has signal anywhere
            advantages = advantages.abs().amax(dim=1)
        groups = advantages.reshape(-1, self.num_generations)
        record["groups"] += groups.shape[0]
        record["groups_with_signal"] += int((groups.abs() > 0).any(dim=1).sum())
        return output

    wrap_grpo_trainer(init=init, generate=generate, generate_and_score=score, loss=compute_loss)


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def training_dtype(weights_dtype: str, bf16: bool, fp16: bool) -> str:
    """The precision a step's matmuls run in: the weights' own, or the autocast's over float32 weights."""
    if weights_dtype == "bfloat16" or (weights_dtype == "float32" and bf16):
        return "bf16"
    if weights_dtype == "float16" or (weights_dtype == "float32" and fp16):
        return "fp16"
    return "fp32"


def model_figures(model, bf16: bool, fp16: bool) -> dict[str, Any]:
    """The trained model as a roofline needs it: parameters (shared ones once), weight bytes, the dtype holding most
    of them, the autocast over them and the precision the step trains in."""
    bytes_by_dtype: dict[str, int] = {}
    parameters = 0
    for parameter in model.parameters():
        parameters += parameter.numel()
        name = _dtype_name(parameter.dtype)
        bytes_by_dtype[name] = bytes_by_dtype.get(name, 0) + parameter.numel() * parameter.element_size()
    weights_dtype = max(bytes_by_dtype, key=bytes_by_dtype.__getitem__) if bytes_by_dtype else "float32"
    return {
        "parameters": parameters,
        "weight_bytes": sum(bytes_by_dtype.values()),
        "weights_dtype": weights_dtype,
        "autocast": "bf16" if bf16 else ("fp16" if fp16 else None),
        "train_dtype": training_dtype(weights_dtype, bool(bf16), bool(fp16)),
    }


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

    record: dict[str, Any] = {
        "side": side,
        "step_seconds": [],
        "generations": [],
        "groups": 0,
        "groups_with_signal": 0,
        "trained_tokens": 0,
    }
    _install_probe(record)
    started = time.perf_counter()
    if side == "seed":
        spec = importlib.util.spec_from_file_location("seed_grpo", SEED_SCRIPT)
        assert spec is not None and spec.loader is not None  # a .py file's: the source loader
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


# --- the machine's peak, measured by the parent before the runs ----------------------------------------------

PEAK_MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
PEAK_COPY_MB = {"cpu": 256, "cuda": 2048}
PEAK_BUDGET_S = 1.0  # per timed kernel: repeats until this much time is spent (one at least)


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def best_seconds(run, device: str = "cpu", budget_s: float = PEAK_BUDGET_S, repeats: int = 5) -> float:
    """The fastest of up to ``repeats`` timed calls of ``run``, stopping once ``budget_s`` is spent."""
    times: list[float] = []
    while len(times) < repeats and sum(times) < budget_s:
        _synchronize(device)
        started = time.perf_counter()
        run()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return min(times)


def matmul_gflops(
    dtype_name: str, device: str = "cpu", size: int | None = None, budget_s: float = PEAK_BUDGET_S
) -> dict[str, float]:
    """GFLOP/s of a size x size matmul in fp32 or bf16, in the two layouts nn.Linear runs fast (``a @ b.T``: the
    forward; ``a.T @ b``: the weight gradient), each the best of its timed repeats; ``best``: the faster."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    size = size or PEAK_MATMUL_SIZE[device]
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    small = a[:256, :256].contiguous()
    layouts = {"a@b.T": lambda x, y: x @ y.t(), "a.T@b": lambda x, y: x.t() @ y}
    figures = {}
    for name, layout in layouts.items():
        layout(small, small)  # warm-up: kernels chosen, threads started
        figures[name] = 2 * size**3 / best_seconds(functools.partial(layout, a, b), device, budget_s) / 1e9
    figures["best"] = max(figures.values())
    return figures


def memory_gb_per_s(
    device: str = "cpu", megabytes: int | None = None, budget_s: float = PEAK_BUDGET_S
) -> dict[str, float]:
    """Memory bandwidth in GB/s: a copy (read + write counted) and a sum (read) of a float32 tensor far larger than
    the caches; ``best``: the higher."""
    import torch

    count = (megabytes or PEAK_COPY_MB[device]) * 2**20 // 4
    source = torch.ones(count, device=device)
    target = torch.empty_like(source)
    target.copy_(source)  # the pages touched before timing
    copy = 2 * count * 4 / best_seconds(lambda: target.copy_(source), device, budget_s) / 1e9
    read = count * 4 / best_seconds(lambda: source.sum(), device, budget_s) / 1e9
    return {"copy": copy, "read": read, "best": max(copy, read)}


def measure_peak(device: str = "cpu") -> dict[str, Any]:
    """The machine's peak as the roofline uses it: matmul GFLOP/s in fp32 and bf16, memory GB/s (~10 s on a CPU)."""
    import torch

    started = time.perf_counter()
    matmul = {dtype: matmul_gflops(dtype, device) for dtype in ("fp32", "bf16")}
    memory = memory_gb_per_s(device)
    return {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "matmul_size": PEAK_MATMUL_SIZE[device],
        "matmul_gflops": {dtype: figures["best"] for dtype, figures in matmul.items()},
        "matmul_layouts_gflops": matmul,
        "memory_mb": PEAK_COPY_MB[device],
        "memory_gb_per_s": memory["best"],
        "memory_layouts_gb_per_s": memory,
        "seconds": time.perf_counter() - started,
    }


def peak_line(peak: dict[str, Any]) -> str:
    gflops = peak["matmul_gflops"]
    return (
        f"peak measured here ({peak['seconds']:.1f} s, {peak['torch_threads']} threads): matmul {gflops['fp32']:.1f} "
        f"GFLOP/s fp32, {gflops['bf16']:.1f} GFLOP/s bf16 ({peak['matmul_size']}x{peak['matmul_size']}, best of "
        f"a@b.T and a.T@b); memory {peak['memory_gb_per_s']:.1f} GB/s ({peak['memory_mb']} MB copy and sum)"
    )


def peak_dtype(train_dtype: str) -> str:
    """The measured peak a step's precision is held to: fp32, or bf16 for half precision (fp16 is not measured)."""
    return "fp32" if train_dtype == "fp32" else "bf16"


def roofline(
    parameters: int,
    trained_tokens: float,
    weight_bytes: int,
    decoding_steps: float,
    steps: int,
    gflops: float,
    gb_per_s: float,
) -> dict[str, float]:
    """Seconds per optimizer step a run could take at the machine's peak: training 6 x parameters x trained tokens
    FLOPs (forward 2, backward 4 per parameter and token) at ``gflops``, plus decoding ``decoding_steps``
    sequential steps that each read all ``weight_bytes`` at ``gb_per_s``. Totals over the run, per step."""
    training = 6 * parameters * trained_tokens / (gflops * 1e9)
    decoding = weight_bytes * decoding_steps / (gb_per_s * 1e9)
    return {
        "training_flops_per_step": 6 * parameters * trained_tokens / steps,
        "training_seconds_per_step": training / steps,
        "decoding_seconds_per_step": decoding / steps,
        "seconds_per_step": (training + decoding) / steps,
    }


# --- the parent: alternate the sides, summarise, compare -----------------------------------------------------


def _figures(record: dict[str, Any], peak: dict[str, Any] | None = None) -> dict[str, Any]:
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
    if peak is not None and steps and "parameters" in record:
        figures.update(_roofline_figures(record, peak, steps, figures["seconds_per_step"]))
    return figures


def _roofline_figures(
    record: dict[str, Any], peak: dict[str, Any], steps: int, seconds_per_step: float
) -> dict[str, Any]:
    """A run's roofline (:func:`roofline`) from what its worker counted, and its s/step as a multiple of it."""
    dtype = peak_dtype(record["train_dtype"])
    decoding_steps = sum(g.get("decoding_steps", 0) for g in record["generations"])
    decoding_bytes = record.get("decoding_weight_bytes") or record["weight_bytes"]
    bound = roofline(
        record["parameters"],
        record["trained_tokens"],
        decoding_bytes,
        decoding_steps,
        steps,
        peak["matmul_gflops"][dtype],
        peak["memory_gb_per_s"],
    )
    return {
        "parameters": record["parameters"],
        "weight_bytes": record["weight_bytes"],
        "decoding_weight_bytes": decoding_bytes,
        "weights_dtype": record["weights_dtype"],
        "autocast": record["autocast"],
        "train_dtype": record["train_dtype"],
        "trained_tokens_per_step": record["trained_tokens"] / steps,
        "decoding_steps_per_step": decoding_steps / steps,
        "peak_gflops": peak["matmul_gflops"][dtype],
        "peak_gb_per_s": peak["memory_gb_per_s"],
        "roofline_training_flops_per_step": bound["training_flops_per_step"],
        "roofline_training_seconds_per_step": bound["training_seconds_per_step"],
        "roofline_decoding_seconds_per_step": bound["decoding_seconds_per_step"],
        "roofline_seconds_per_step": bound["seconds_per_step"],
        "roofline_multiple": seconds_per_step / bound["seconds_per_step"] if bound["seconds_per_step"] else None,
    }


METRICS = (  # key, label, format, better
    ("seconds_per_step", "s / optimizer step", "{:.2f}", "lower"),
    ("roofline_seconds_per_step", "roofline s / step", "{:.2f}", None),
    ("roofline_multiple", "s / step over its roofline", "{:.1f}x", "lower"),
    ("generation_tokens_per_s", "generated tok/s (generation)", "{:.1f}", "higher"),
    ("mean_completion_tokens", "tokens / completion", "{:.1f}", None),
    ("trained_tokens_per_step", "trained tokens / step", "{:.0f}", None),
    ("generation_share", "share of step in generation", "{:.2f}", None),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}", "lower"),
    ("peak_gpu_used_mb", "peak GPU used MB", "{:.0f}", "lower"),
    ("signal_groups_per_min", "groups with reward variance / min", "{:.2f}", "higher"),
)


def planned_runs(sides: list[str], precision: str, on_gpu: bool) -> list[tuple[str, str, str]]:
    """(label, side, precision) of each run of one repeat, in the order they alternate. Under ``auto`` the seed runs
    in each of its precisions (labels ``seed fp32``, ``seed bf16``) and r1lab at its own choice."""
    runs = []
    for side in SIDES:
        if side not in sides:
            continue
        if side == "seed" and precision == "auto":
            runs += [(f"seed {each}", "seed", each) for each in (("bf16",) if on_gpu else SEED_PRECISIONS_AUTO)]
        else:
            runs.append((side, side, precision))
    return runs


def faster_seed(summary: dict[str, Any], labels: list[str]) -> str | None:
    """The seed's label with the lowest median s/step: the seed at its best precision on this machine."""
    timed = [label for label in labels if label.split()[0] == "seed" and summary.get(label, {}).get("seconds_per_step")]
    return min(timed, key=lambda label: summary[label]["seconds_per_step"]["median"]) if timed else None


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """min / median / max of each figure per label, and r1lab against the seed at its faster precision."""
    labels = list(runs)
    summary: dict[str, Any] = {"labels": labels}
    for label, figures in runs.items():
        summary[label] = {}
        for key, *_ in METRICS:
            values = [f[key] for f in figures if f.get(key) is not None]
            if values:
                summary[label][key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    baseline = faster_seed(summary, labels)
    summary["seed_baseline"] = baseline
    ratios = {}
    for key, *_ in METRICS:
        seed, ours = summary.get(baseline, {}).get(key) if baseline else None, summary.get("r1lab", {}).get(key)
        if seed and ours and seed["median"]:
            ratios[key] = {
                "r1lab/seed median": ours["median"] / seed["median"],
                "r1lab/seed min": ours["min"] / seed["min"] if seed["min"] else None,
            }
    summary["ratios"] = ratios
    seed_step = summary.get(baseline, {}).get("seconds_per_step") if baseline else None
    our_step = summary.get("r1lab", {}).get("seconds_per_step")
    if seed_step and our_step:
        summary["step_throughput_speedup"] = {
            "median": seed_step["median"] / our_step["median"],
            "min": seed_step["min"] / our_step["min"],
        }
    return summary


def _format(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The table (min and median per label; r1lab / the seed at its faster precision) and the throughput line."""
    labels = summary.get("labels") or [label for label in SIDES if label in summary]
    baseline = summary.get("seed_baseline") or "seed"
    columns = [(label, which) for label in labels for which in ("min", "med")]
    widths = [max(10, len(label) + 4) for label, _ in columns]
    lines = [
        f"{'':36} "
        + " ".join(f"{f'{label} {which}':>{width}}" for (label, which), width in zip(columns, widths))
        + f" {'r1lab/seed':>11}"
    ]
    for key, name, pattern, _ in METRICS:
        if not any(summary.get(label, {}).get(key) for label in labels):
            continue
        cells = []
        for (label, which), width in zip(columns, widths):
            figure = summary.get(label, {}).get(key)
            cells.append(f"{_format(figure and figure['min' if which == 'min' else 'median'], pattern):>{width}}")
        ratio = summary["ratios"].get(key, {}).get("r1lab/seed median")
        lines.append(f"{name:36} " + " ".join(cells) + f" {_format(ratio, '{:.2f}x'):>11}")
    if baseline != "seed" and "r1lab" in labels:
        others = [label for label in labels if label.split()[0] == "seed" and label != baseline]
        lines.append(
            f"r1lab/seed: against {baseline}, the seed's faster precision here by median s/step"
            + (f" (not {', '.join(others)})" if others else "")
        )
    speedup = summary.get("step_throughput_speedup")
    if speedup:
        lines.append(
            f"step throughput r1lab/{baseline}: {speedup['median']:.2f}x (medians), {speedup['min']:.2f}x (best runs)"
        )
    return lines


def roofline_lines(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Each label's roofline from its runs' medians: what it is made of, and the measured s/step as a multiple."""
    lines = [
        "roofline per step = 6 x parameters x trained tokens / peak GFLOP/s of the step's precision "
        "+ the decoding model's weight bytes x decoding steps / GB/s (medians):"
    ]
    for label, figures in runs.items():
        measured = [f for f in figures if f.get("roofline_seconds_per_step")]
        if not measured:
            continue
        median = {
            key: statistics.median(f[key] for f in measured)
            for key in (
                "roofline_seconds_per_step",
                "roofline_training_seconds_per_step",
                "trained_tokens_per_step",
                "roofline_decoding_seconds_per_step",
                "decoding_steps_per_step",
                "seconds_per_step",
                "roofline_multiple",
            )
        }
        first = measured[0]
        autocast = (
            f", {first['autocast']} autocast" if first["autocast"] and first["weights_dtype"] == "float32" else ""
        )
        lines.append(
            f"  {label}: trains in {first['train_dtype']} ({first['weights_dtype']} weights{autocast}); "
            f"{median['roofline_seconds_per_step']:.2f} s = training {median['roofline_training_seconds_per_step']:.2f} s "
            f"(6 x {first['parameters'] / 1e6:.1f}M x {median['trained_tokens_per_step']:.0f} tokens / "
            f"{first['peak_gflops']:.1f} GFLOP/s) + decoding {median['roofline_decoding_seconds_per_step']:.2f} s "
            f"({first['decoding_weight_bytes'] / 1e6:.0f} MB x "
            f"{median['decoding_steps_per_step']:.0f} steps / "
            f"{first['peak_gb_per_s']:.1f} GB/s); measured {median['seconds_per_step']:.2f} s/step: "
            f"{label} {median['roofline_multiple']:.1f}x its roofline"
        )
    return lines if len(lines) > 1 else []


def precision_plan(precision: str, on_gpu: bool) -> str:
    if on_gpu:
        return "bf16 on both sides (a GPU)"
    if precision == "auto":
        return "r1lab at its own choice (model_dtype auto), the seed in fp32 and in bf16, r1lab against the faster"
    return f"{precision} on both sides"


def header_lines(
    model: str, dataset: str | None, limit: int, config: BenchConfig, cpu: CpuKind, gpu: str | None = None
) -> list[str]:
    """What the bench runs, on what machine (the CPU's kind: model name, cores, the flags that matter), in what precision."""
    return [
        f"r1lab bench grpo: model {model}, dataset {dataset or 'openai/gsm8k (hub)'} (first {limit} questions), "
        f"{config.steps} steps x {config.repeats} repeats per side, 16 completions per prompt of <= "
        f"{config.max_completion_length} tokens",
        f"machine: {'GPU ' + gpu + '; ' if gpu else ''}CPU {cpu.describe()}",
        f"precision: {precision_plan(config.precision, gpu is not None)}",
    ]


def _run_line(name: str, figures: dict[str, Any]) -> str:
    line = (
        f"  {name:13} {_format(figures['seconds_per_step'], '{:.2f}')} s/step, "
        f"{_format(figures['generation_tokens_per_s'], '{:.1f}')} tok/s in generation, "
        f"{figures['mean_completion_tokens']:.0f} tokens/completion, peak RSS {figures['peak_rss_mb']:.0f} MB, "
        f"{figures['groups_with_signal']}/{figures['groups']} groups with reward variance"
    )
    if figures.get("roofline_seconds_per_step"):
        line += (
            f"; trains in {figures['train_dtype']}, roofline {figures['roofline_seconds_per_step']:.2f} s/step "
            f"({_format(figures['roofline_multiple'], '{:.1f}x')})"
        )
    return line


def _run_arguments(
    side: str, precision: str, model: str, dataset: str | None, limit: int, config: BenchConfig, out_dir: str
) -> tuple[list[str], list[str]]:
    """(the worker's arguments, the command line it stands for) of one run."""
    if side == "seed":
        arguments = seed_arguments(
            model, dataset, limit, config.steps, config.max_completion_length, out_dir, precision
        )
        return arguments, [sys.executable, SEED_SCRIPT, *arguments]
    arguments = r1lab_arguments(
        model, dataset, limit, config.steps, config.max_completion_length, out_dir, config.r1lab_overrides, precision
    )
    return arguments, ["r1lab", *arguments]


def main(config: BenchConfig) -> dict[str, Any]:
    model, dataset, limit = check(config)
    output = os.path.abspath(config.output)
    work = output[: -len(".json")] if output.endswith(".json") else output + ".d"
    os.makedirs(work, exist_ok=True)
    on_gpu = _on_gpu()
    cpu = cpu_kind()
    header = header_lines(model, dataset, limit, config, cpu, _gpu_name() if on_gpu else None)
    print("\n".join(header), flush=True)
    peak = measure_peak("cuda" if on_gpu else "cpu")
    print(peak_line(peak), flush=True)
    plan = planned_runs(config.sides, config.precision, on_gpu)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in plan}
    records = []
    commands = {}
    for repeat in range(config.repeats):
        for label, side, precision in plan:
            name = f"{label.replace(' ', '-')}-{repeat + 1}"
            out_dir = os.path.join(work, name)
            shutil.rmtree(out_dir, ignore_errors=True)
            arguments, commands[label] = _run_arguments(side, precision, model, dataset, limit, config, out_dir)
            record = _run_worker(side, arguments, os.path.join(work, f"{name}.json"), os.path.join(work, f"{name}.log"))
            if not config.keep_outputs:
                shutil.rmtree(out_dir, ignore_errors=True)
            record.update({"label": label, "precision": precision})
            record["figures"] = _figures(record, peak)
            records.append(record)
            runs[label].append(record["figures"])
            print(_run_line(name, record["figures"]), flush=True)
    summary = summarize(runs)
    prompts = [record["generations"] and record["generations"][0]["prompts"] for record in records]
    same_prompts = all(p == prompts[0] for p in prompts)
    for line in report_lines(summary) + roofline_lines(runs):
        print(line)
    print(f"same prompts in every run: {'yes' if same_prompts else 'NO'}; results: {output}")
    result = {
        "benchmark": "r1lab bench grpo",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "device": header[1].removeprefix("machine: "),
        "cpu": cpu.as_dict(),
        "peak": peak,
        "model": model,
        "dataset": dataset,
        "limit": limit,
        "steps": config.steps,
        "repeats": config.repeats,
        "r1lab_overrides": config.r1lab_overrides,
        "precision": config.precision,
        "precision_plan": precision_plan(config.precision, on_gpu),
        "max_completion_length": config.max_completion_length,
        "commands": {label: " ".join(command) for label, command in commands.items()},
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
            code = subprocess.call(
                [sys.executable, "-m", "r1lab.bench", "--worker", spec_path],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=os.getcwd(),
            )
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
