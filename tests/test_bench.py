"""`r1lab bench grpo`: a 1-step smoke run of both sides on the tiny model, its input errors, and the pure parts:
the roofline's arithmetic, the precision plan, the seed's faster precision, the header's CPU kind."""

from __future__ import annotations

import json

import pytest

from r1lab.cli import main as cli_main


def test_bench_grpo_one_step_per_side(tiny_model_dir, gsm8k_fixture_dir, tmp_path, capsys, monkeypatch):
    import torch

    from r1lab import bench

    monkeypatch.setattr(bench, "PEAK_MATMUL_SIZE", {"cpu": 256, "cuda": 1024})  # the peak's path, in a second
    monkeypatch.setattr(bench, "PEAK_COPY_MB", {"cpu": 16, "cuda": 64})
    output = tmp_path / "bench" / "grpo.json"
    code = cli_main(
        [
            "bench",
            "grpo",
            "--model",
            tiny_model_dir,
            "--dataset",
            gsm8k_fixture_dir,
            "--steps",
            "1",
            "--repeats",
            "1",
            "--limit",
            "4",
            "--max_completion_length",
            "16",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "s / optimizer step" in printed and "r1lab/seed" in printed and "step throughput" in printed
    assert (
        "machine: " in printed
        and "peak measured here" in printed
        and "r1lab" in printed
        and "x its roofline" in printed
    )

    result = json.loads(output.read_text())
    assert result["same_prompts"] is True
    assert result["precision"] == "auto" and result["cpu"]["cores"] >= 1 and result["peak"]["matmul_gflops"]["fp32"] > 0
    on_gpu = torch.cuda.is_available()
    labels = (["seed bf16"] if on_gpu else ["seed fp32", "seed bf16"]) + ["r1lab"]  # auto: the seed in each precision
    assert [run["label"] for run in result["runs"]] == labels
    assert [run["side"] for run in result["runs"]] == ["seed"] * (len(labels) - 1) + ["r1lab"]
    for run in result["runs"]:
        figures = run["figures"]
        assert figures["steps"] == 1
        assert figures["completions_per_step"] == 4  # the seed's 1 x 4 accumulation, r1lab's 4 x 1
        assert figures["generated_tokens"] > 0 and figures["seconds_per_step"] > 0
        assert figures["groups"] == 1 and figures["peak_rss_mb"] > 0
        assert len(run["generations"]) == 1 and run["generations"][0]["completions"] == 16
        assert figures["parameters"] > 0 and figures["weight_bytes"] > 0 and figures["decoding_steps_per_step"] > 0
        assert figures["roofline_seconds_per_step"] > 0 and figures["roofline_multiple"] > 0
    trains_in = {run["label"]: run["figures"]["train_dtype"] for run in result["runs"]}
    assert trains_in["seed bf16"] == "bf16" and (on_gpu or trains_in["seed fp32"] == "fp32")
    assert result["summary"]["seed_baseline"] in labels[:-1]
    assert result["summary"]["ratios"]["seconds_per_step"]["r1lab/seed median"] > 0
    assert result["summary"]["step_throughput_speedup"]["median"] > 0
    assert result["commands"]["r1lab"].startswith("r1lab grpo ")
    # logs kept, trained weights removed
    assert (tmp_path / "bench" / "grpo" / "seed-bf16-1.log").is_file()
    assert not (tmp_path / "bench" / "grpo" / "r1lab-1").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["bench", "sft"], "unknown target"),
        (["bench", "grpo", "--steps", "0"], "steps must be at least 1"),
        (["bench", "grpo", "--repeats", "0"], "repeats must be at least 1"),
        (["bench", "grpo", "--r1lab_overrides", "{max_steps: 3}"], "with the bench's own option"),
        (["bench", "grpo", "--dataset", "/nonexistent/gsm8k"], "dataset not found"),
        (["bench", "grpo", "--precision", "fp8"], "precision must be one of auto, fp32, bf16"),
        (
            ["bench", "grpo", "--r1lab_overrides", "{no_such_key: 1}"],
            "r1lab's side would fail: command line: unknown config key 'no_such_key'",
        ),
        (["bench", "grpo", "--r1lab_overrides", "{max_resample_rounds: -1}"], "max_resample_rounds must be at least 0"),
        (
            ["bench", "grpo", "--r1lab_overrides", "{generation_loop: rlab}"],
            "generation_loop must be one of r1lab, trl",
        ),
        (["bench", "grpo", "--output", "{file}/grpo.json"], "is a file, not a directory"),
        (["bench", "grpo", "--output", "{dir}"], "is a directory: name the JSON file to write"),
    ],
)
def test_bench_bad_input_is_one_line_and_exit_2(arguments, message, capsys, tmp_path, monkeypatch):
    """Checked before any worker starts: nothing is written."""
    (tmp_path / "file").write_text("x")
    monkeypatch.chdir(tmp_path)
    arguments = [
        argument.replace("{file}", str(tmp_path / "file")).replace("{dir}", str(tmp_path)) for argument in arguments
    ]
    before = sorted(path.name for path in tmp_path.rglob("*"))
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert sorted(path.name for path in tmp_path.rglob("*")) == before


def test_bench_precision_reaches_both_sides():
    from r1lab.bench import r1lab_arguments, seed_arguments

    def flags(arguments):
        return {
            arguments[i]: arguments[i + 1] for i in range(1, len(arguments) - 1, 2) if arguments[i].startswith("--")
        }

    ours = flags(r1lab_arguments("m", None, 8, 1, 16, "/tmp/o", {}, "bf16"))
    import torch

    assert ours["--bf16"] == "true"
    if not torch.cuda.is_available():
        assert ours["--model_dtype"] == "bfloat16"  # the seed's weights are bfloat16 too
    if not torch.cuda.is_available():  # a GPU runs bf16 on both sides whatever the precision
        assert ours["--use_cpu"] == "true"
        fp32 = flags(r1lab_arguments("m", None, 8, 1, 16, "/tmp/o", {}, "fp32"))
        assert fp32["--bf16"] == "false" and fp32["--model_dtype"] == "float32"  # r1lab's auto may pick bf16
        auto = flags(r1lab_arguments("m", None, 8, 1, 16, "/tmp/o", {}, "auto"))
        assert "--bf16" not in auto and "--model_dtype" not in auto  # r1lab's own choice
    assert "--cpu_bf16" in seed_arguments("m", None, 8, 1, 16, "/tmp/o", "bf16")
    assert "--cpu_bf16" not in seed_arguments("m", None, 8, 1, 16, "/tmp/o", "fp32")


def test_roofline_is_training_flops_over_the_peak_plus_weight_reads_over_the_bandwidth():
    from r1lab.bench import roofline

    # 6 x 100M parameters x 1000 tokens = 6e11 FLOPs at 50 GFLOP/s: 12 s; 400 MB x 200 steps at 10 GB/s: 8 s;
    # over 4 optimizer steps: 3 + 2 s per step.
    bound = roofline(
        parameters=100_000_000,
        trained_tokens=1000,
        weight_bytes=400_000_000,
        decoding_steps=200,
        steps=4,
        gflops=50.0,
        gb_per_s=10.0,
    )
    assert bound["training_flops_per_step"] == pytest.approx(1.5e11)
    assert bound["training_seconds_per_step"] == pytest.approx(3.0)
    assert bound["decoding_seconds_per_step"] == pytest.approx(2.0)
    assert bound["seconds_per_step"] == pytest.approx(5.0)


def _record(train_dtype="fp32", step_seconds=(20.0, 10.0)):
    return {
        "step_seconds": list(step_seconds),
        "wall_seconds": 40.0,
        "peak_rss_mb": 1000.0,
        "groups": 1,
        "groups_with_signal": 0,
        "generations": [{"seconds": 6.0, "completions": 16, "tokens": 800, "decoding_steps": 100}],
        "parameters": 100_000_000,
        "weight_bytes": 400_000_000,
        "weights_dtype": "float32",
        "autocast": "bf16" if train_dtype == "bf16" else None,
        "train_dtype": train_dtype,
        "trained_tokens": 500,
    }


PEAK = {"matmul_gflops": {"fp32": 50.0, "bf16": 5.0}, "memory_gb_per_s": 10.0}


def test_a_run_is_held_to_the_peak_of_the_precision_it_trains_in():
    from r1lab.bench import _figures

    # 2 steps: 6 x 100M x 500 tokens at 50 GFLOP/s = 6 s, 400 MB x 100 decoding steps at 10 GB/s = 4 s: 5 s/step;
    # measured (20 + 10) / 2 = 15 s/step
    fp32 = _figures(_record("fp32"), PEAK)
    assert fp32["trained_tokens_per_step"] == 250 and fp32["decoding_steps_per_step"] == 50
    assert fp32["roofline_seconds_per_step"] == pytest.approx(5.0)
    assert fp32["roofline_multiple"] == pytest.approx(3.0)
    bf16 = _figures(_record("bf16"), PEAK)  # bf16 autocast: 60 s training at 5 GFLOP/s + 4 s decoding over 2 steps
    assert bf16["peak_gflops"] == 5.0 and bf16["roofline_seconds_per_step"] == pytest.approx(32.0)
    assert "roofline_seconds_per_step" not in _figures(_record(), None)  # no peak measured: no roofline
    # r1lab's sampler decoding from a bf16 copy of the float32 policy: each decoding step reads the copy's 200 MB
    copy = _figures({**_record("bf16"), "decoding_weight_bytes": 200_000_000}, PEAK)
    assert copy["roofline_decoding_seconds_per_step"] == pytest.approx(1.0)
    assert copy["roofline_seconds_per_step"] == pytest.approx(31.0)


def test_the_training_precision_is_the_weights_or_the_autocast_over_float32():
    from r1lab.bench import peak_dtype, training_dtype

    assert training_dtype("float32", bf16=False, fp16=False) == "fp32"
    assert training_dtype("float32", bf16=True, fp16=False) == "bf16"  # bf16 autocast over float32 weights
    assert training_dtype("bfloat16", bf16=False, fp16=False) == "bf16"
    assert training_dtype("bfloat16", bf16=True, fp16=False) == "bf16"
    assert training_dtype("float16", bf16=False, fp16=False) == "fp16"
    assert [peak_dtype(name) for name in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "bf16"]


def test_model_figures_count_shared_weights_once():
    import torch

    from r1lab.bench import model_figures

    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight  # tied, as SmolLM2's head and embedding
    figures = model_figures(model.to(torch.bfloat16), bf16=False, fp16=False)
    assert figures == {
        "parameters": 40,
        "weight_bytes": 80,
        "weights_dtype": "bfloat16",
        "autocast": None,
        "train_dtype": "bf16",
    }


def test_the_peak_measures_return_rates():
    from r1lab.bench import matmul_gflops, memory_gb_per_s

    matmul = matmul_gflops("fp32", "cpu", size=64, budget_s=0.01)
    assert matmul["best"] == max(matmul["a@b.T"], matmul["a.T@b"]) > 0
    memory = memory_gb_per_s("cpu", megabytes=1, budget_s=0.01)
    assert memory["best"] == max(memory["copy"], memory["read"]) > 0


def test_precision_auto_runs_the_seed_in_each_precision_and_r1lab_at_its_own():
    from r1lab.bench import planned_runs

    assert planned_runs(["seed", "r1lab"], "auto", on_gpu=False) == [
        ("seed fp32", "seed", "fp32"),
        ("seed bf16", "seed", "bf16"),
        ("r1lab", "r1lab", "auto"),
    ]
    assert planned_runs(["seed", "r1lab"], "auto", on_gpu=True) == [
        ("seed bf16", "seed", "bf16"),
        ("r1lab", "r1lab", "auto"),
    ]
    assert planned_runs(["r1lab", "seed"], "fp32", on_gpu=False) == [
        ("seed", "seed", "fp32"),
        ("r1lab", "r1lab", "fp32"),
    ]
    assert planned_runs(["r1lab"], "auto", on_gpu=False) == [("r1lab", "r1lab", "auto")]


def test_precision_auto_compares_r1lab_with_the_seed_at_its_faster_precision():
    from r1lab.bench import faster_seed, report_lines, summarize

    runs = {
        "seed fp32": [{"seconds_per_step": 30.0}, {"seconds_per_step": 32.0}],
        "seed bf16": [{"seconds_per_step": 20.0}, {"seconds_per_step": 22.0}],
        "r1lab": [{"seconds_per_step": 10.0}, {"seconds_per_step": 11.0}],
    }
    summary = summarize(runs)
    assert summary["seed_baseline"] == "seed bf16" == faster_seed(summary, list(runs))
    assert summary["ratios"]["seconds_per_step"]["r1lab/seed median"] == pytest.approx(10.5 / 21.0)
    assert summary["step_throughput_speedup"] == {"median": pytest.approx(2.0), "min": pytest.approx(2.0)}
    lines = report_lines(summary)
    assert "seed fp32 med" in lines[0] and "seed bf16 med" in lines[0] and "r1lab med" in lines[0]  # both seeds printed
    step = next(line for line in lines if line.startswith("s / optimizer step"))
    assert "31.00" in step and "21.00" in step and "10.50" in step and "0.50x" in step
    assert any("against seed bf16" in line and "not seed fp32" in line for line in lines)
    assert lines[-1].startswith("step throughput r1lab/seed bf16: 2.00x")

    runs["seed bf16"] = [{"seconds_per_step": 40.0}]  # bf16 slower (an AVX2 CPU): the seed's fp32 is the yardstick
    assert summarize(runs)["seed_baseline"] == "seed fp32"
    assert faster_seed({"r1lab": {"seconds_per_step": {"median": 1.0}}}, ["r1lab"]) is None


def test_the_header_names_the_cpu_kind():
    from r1lab.bench import BenchConfig, header_lines
    from r1lab.hardware import parse_cpuinfo

    cpu = parse_cpuinfo("model name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu sse2 avx2 fma\n", cores=2)
    lines = header_lines("embedded", "/data/gsm8k", 32, BenchConfig(steps=1, repeats=1), cpu)
    assert lines[1] == f"machine: CPU {cpu.describe()}"
    assert "AMD EPYC 7B13 64-Core Processor, 2 cores, avx2 (bf16 emulated; flags: avx2)" in lines[1]
    assert "seed in fp32 and in bf16" in lines[2]
    gpu = header_lines("m", None, 8, BenchConfig(precision="fp32"), cpu, gpu="H200")
    assert gpu[1].startswith("machine: GPU H200; CPU AMD EPYC") and "bf16 on both sides" in gpu[2]


def _tiny(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    messages = [{"role": "system", "content": "Answer in <answer></answer>."}, {"role": "user", "content": "2+3?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    return model, tokenizer, list(prompt)


def sample_completions(
    model, prompts_ids, row_prompts, pad_id, eos_ids, eos, watcher, max_new_tokens, temperature, top_p, generator
):
    """GRPO's sampling: r1lab's decoding loop as R1GRPOTrainer calls it (log-probabilities recorded, a stop string
    closed with EOS) → (completion ids, their log-probabilities)."""
    from r1lab.generation import decode_batch

    decoded = decode_batch(
        model,
        prompts_ids,
        pad_id,
        eos_ids,
        watcher,
        max_new_tokens,
        temperature,
        top_p,
        generator,
        row_prompts,
        close_with=eos,
        record_logps=True,
    )
    return decoded.tokens, decoded.logps


def test_grpo_sampling_logps_equal_a_full_forward(tiny_model_dir):
    """The log-probabilities recorded while sampling are what TRL's old-log-probs forward would compute."""
    import torch

    from r1lab.generation import StopStringWatcher

    model, tokenizer, prompt = _tiny(tiny_model_dir)
    eos = tokenizer.eos_token_id
    completions, logps = sample_completions(
        model,
        [prompt],
        [0] * 4,
        tokenizer.pad_token_id,
        {eos},
        eos,
        StopStringWatcher(tokenizer, []),
        12,
        1.0,
        1.0,
        torch.Generator().manual_seed(0),
    )
    assert [len(ids) for ids in completions] == [len(values) for values in logps]
    width = max(len(ids) for ids in completions)
    input_ids = torch.tensor([prompt + ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids in completions])
    mask = torch.tensor([[1] * (len(prompt) + len(ids)) + [0] * (width - len(ids)) for ids in completions])
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=mask).logits[:, len(prompt) - 1 : -1]
    reference = torch.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[:, len(prompt) :, None]).squeeze(-1)
    for row, (ids, values) in enumerate(zip(completions, logps)):
        assert torch.allclose(reference[row, : len(ids)], torch.tensor(values), atol=1e-4)


def test_grpo_sampling_stops_at_a_stop_string_and_closes_with_eos(tiny_model_dir):
    import torch

    model, tokenizer, prompt = _tiny(tiny_model_dir)
    eos = tokenizer.eos_token_id

    class StopAfterThree:  # a watcher that sees a stop string once a row has 3 tokens
        def stopped(self, rows):
            return [len(row) >= 3 for row in rows]

    completions, logps = sample_completions(
        model,
        [prompt],
        [0, 0],
        tokenizer.pad_token_id,
        {eos},
        eos,
        StopAfterThree(),
        10,
        1.0,
        1.0,
        torch.Generator().manual_seed(0),
    )
    for ids, values in zip(completions, logps):  # 3 sampled tokens (or fewer, up to a sampled EOS), then EOS
        assert len(ids) <= 4 and ids[-1] == eos and len(values) == len(ids) and values[-1] <= 0

    capped, _ = sample_completions(
        model,
        [prompt],
        [0],
        tokenizer.pad_token_id,
        {eos},
        eos,
        StopAfterThree(),
        3,
        1.0,
        1.0,
        torch.Generator().manual_seed(0),
    )
    assert len(capped[0]) <= 3  # a row that reaches the cap gets no EOS beyond it


def _run_benchmark(script, *arguments):
    import os
    import subprocess
    import sys

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", script)
    return subprocess.run([sys.executable, path, *arguments], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script", ["prefix_speed.py", "sampling_speed.py", "eval_speed.py"])
def test_generation_benchmarks_name_a_bad_model_in_one_line(script, tmp_path):
    done = _run_benchmark(script, "--model", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: model not found: {tmp_path / 'missing'} "
        "(expected 'embedded', a local model directory or a hub id org/name)"
    ]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["{missing}"], "{missing} is not an r1lab checkout (no r1lab/__init__.py in it)"),
        ([".", "--repeats", "0"], "--repeats must be at least 1, not 0"),
    ],
)
def test_against_commit_names_bad_input_in_one_line(arguments, message, tmp_path):
    missing = str(tmp_path / "missing")
    done = _run_benchmark("against_commit.py", *[argument.format(missing=missing) for argument in arguments])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {message.format(missing=missing)}"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--limit", "0"], "--limit must be at least 1, got 0"),
        (["--limit", "2", "--k", "0"], "number of samples must be at least 1"),
    ],
)
def test_prefix_benchmark_names_a_bad_setting_in_one_line(arguments, message):
    done = _run_benchmark("prefix_speed.py", *arguments)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
