"""`r1lab bench grpo`: a 1-step smoke run of both sides on the tiny model, and its input errors."""

from __future__ import annotations

import json

import pytest

from r1lab.cli import main as cli_main


def test_bench_grpo_one_step_per_side(tiny_model_dir, gsm8k_fixture_dir, tmp_path, capsys):
    output = tmp_path / "bench" / "grpo.json"
    code = cli_main(
        [
            "bench", "grpo",
            "--model", tiny_model_dir,
            "--dataset", gsm8k_fixture_dir,
            "--steps", "1",
            "--repeats", "1",
            "--limit", "4",
            "--max_completion_length", "16",
            "--output", str(output),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "s / optimizer step" in printed and "r1lab/seed" in printed and "step throughput" in printed

    result = json.loads(output.read_text())
    assert result["same_prompts"] is True
    assert [run["side"] for run in result["runs"]] == ["seed", "r1lab"]
    for run in result["runs"]:
        figures = run["figures"]
        assert figures["steps"] == 1
        assert figures["completions_per_step"] == 4  # the seed's 1 x 4 accumulation, r1lab's 4 x 1
        assert figures["generated_tokens"] > 0 and figures["seconds_per_step"] > 0
        assert figures["groups"] == 1 and figures["peak_rss_mb"] > 0
        assert len(run["generations"]) == 1 and run["generations"][0]["completions"] == 16
    assert result["summary"]["ratios"]["seconds_per_step"]["r1lab/seed median"] > 0
    assert result["summary"]["step_throughput_speedup"]["median"] > 0
    assert result["commands"]["r1lab"].startswith("r1lab grpo ")
    # logs kept, trained weights removed
    assert (tmp_path / "bench" / "grpo" / "seed-1.log").is_file()
    assert not (tmp_path / "bench" / "grpo" / "r1lab-1").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["bench", "sft"], "unknown target"),
        (["bench", "grpo", "--steps", "0"], "steps must be at least 1"),
        (["bench", "grpo", "--repeats", "0"], "repeats must be at least 1"),
        (["bench", "grpo", "--r1lab_overrides", "{max_steps: 3}"], "with the bench's own option"),
        (["bench", "grpo", "--dataset", "/nonexistent/gsm8k"], "dataset not found"),
        (["bench", "grpo", "--precision", "fp8"], "precision must be one of fp32, bf16"),
    ],
)
def test_bench_bad_input_is_one_line_and_exit_2(arguments, message, capsys):
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_bench_precision_reaches_both_sides():
    from r1lab.bench import r1lab_arguments, seed_arguments

    def flags(arguments):
        return {arguments[i]: arguments[i + 1] for i in range(1, len(arguments) - 1, 2) if arguments[i].startswith("--")}

    ours = flags(r1lab_arguments("m", None, 8, 1, 16, "/tmp/o", {}, "bf16"))
    import torch

    assert ours["--bf16"] == "true"
    if not torch.cuda.is_available():
        assert ours["--model_dtype"] == "bfloat16"  # the seed's weights are bfloat16 too
    if not torch.cuda.is_available():  # a GPU runs bf16 on both sides whatever the precision
        assert ours["--use_cpu"] == "true"
        assert "--bf16" not in flags(r1lab_arguments("m", None, 8, 1, 16, "/tmp/o", {}, "fp32"))
    assert "--cpu_bf16" in seed_arguments("m", None, 8, 1, 16, "/tmp/o", "bf16")
    assert "--cpu_bf16" not in seed_arguments("m", None, 8, 1, 16, "/tmp/o", "fp32")


def _tiny(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    messages = [{"role": "system", "content": "Answer in <answer></answer>."}, {"role": "user", "content": "2+3?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    return model, tokenizer, list(prompt)


def sample_completions(model, prompts_ids, row_prompts, pad_id, eos_ids, eos, watcher, max_new_tokens, temperature, top_p,
                       generator):
    """GRPO's sampling: r1lab's decoding loop as R1GRPOTrainer calls it (log-probabilities recorded, a stop string
    closed with EOS) → (completion ids, their log-probabilities)."""
    from r1lab.generation import decode_batch

    decoded = decode_batch(model, prompts_ids, pad_id, eos_ids, watcher, max_new_tokens, temperature, top_p, generator,
                           row_prompts, close_with=eos, record_logps=True)
    return decoded.tokens, decoded.logps


def test_grpo_sampling_logps_equal_a_full_forward(tiny_model_dir):
    """The log-probabilities recorded while sampling are what TRL's old-log-probs forward would compute."""
    import torch

    from r1lab.generation import StopStringWatcher

    model, tokenizer, prompt = _tiny(tiny_model_dir)
    eos = tokenizer.eos_token_id
    completions, logps = sample_completions(
        model, [prompt], [0] * 4, tokenizer.pad_token_id, {eos}, eos, StopStringWatcher(tokenizer, []), 12, 1.0, 1.0,
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
        model, [prompt], [0, 0], tokenizer.pad_token_id, {eos}, eos, StopAfterThree(), 10, 1.0, 1.0,
        torch.Generator().manual_seed(0),
    )
    for ids, values in zip(completions, logps):  # 3 sampled tokens (or fewer, up to a sampled EOS), then EOS
        assert len(ids) <= 4 and ids[-1] == eos and len(values) == len(ids) and values[-1] <= 0

    capped, _ = sample_completions(
        model, [prompt], [0], tokenizer.pad_token_id, {eos}, eos, StopAfterThree(), 3, 1.0, 1.0, torch.Generator().manual_seed(0)
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
    assert done.stderr.strip().splitlines() == [f"error: model not found: {tmp_path / 'missing'} "
                                                "(expected 'embedded', a local model directory or a hub id org/name)"]


@pytest.mark.parametrize("arguments, message", [(["--limit", "0"], "--limit must be at least 1, got 0"),
                                                (["--limit", "2", "--k", "0"], "number of samples must be at least 1")])
def test_prefix_benchmark_names_a_bad_setting_in_one_line(arguments, message):
    done = _run_benchmark("prefix_speed.py", *arguments)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
