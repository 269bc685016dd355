"""Tiny-model integration: two real GRPO steps on CPU through the CLI."""

from __future__ import annotations

import json

from grpo_helpers import (
    ONE_SGD_STEP,
    assert_same_training,
    fast_paths,
    grpo_with_half_the_groups_flat,
    losses_and_skipped,
    weights,
)

from r1lab.cli import main as cli_main


def test_two_grpo_steps_change_weights_and_log_reward_components(tiny_model_dir, tmp_path):
    output_dir = tmp_path / "grpo"
    code = cli_main(
        [
            "grpo",
            "--model",
            tiny_model_dir,
            "--task",
            "gym:chain_sum",
            "--task_size",
            "20",
            "--task_options",
            "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--rewards",
            "xml.soft_format,seed.xmlcount,accuracy,reward_helpers.distinct_characters",
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "1",
            "--max_completion_length",
            "16",
            "--max_steps",
            "2",
            "--learning_rate",
            "1e-2",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--final_eval",
            "{limit: 3, k: 2, max_new_tokens: 8, progress: false}",
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    before, after = weights(tiny_model_dir), weights(str(output_dir))
    changed = [name for name in before if not (before[name] == after[name]).all()]
    assert changed, "GRPO did not change any weight"

    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    first = records[0]
    for key in (
        "rewards/xml.soft_format/mean",
        "rewards/seed.xmlcount/mean",
        "rewards/accuracy/mean",
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "completions/clipped_ratio",
        "completions/mean_length",
        "loss",
        "learning_rate",
        "step_seconds",
    ):
        assert key in first, key
    marker = json.loads((output_dir / "r1lab_stage.json").read_text())
    assert marker["status"] == "finished" and marker["stage"] == "grpo"

    logged = [json.loads(line) for line in (output_dir / "completions.jsonl").read_text().splitlines()]
    assert {record["step"] for record in logged} == {1, 2} and len(logged) == 2 * 4
    assert set(logged[0]["rewards"]) >= {"accuracy", "xml.soft_format"} and logged[0]["question"]

    # final_eval: the trained model evaluated on the task's test split, 3 questions x 2 samples
    summary = json.loads((output_dir / "eval" / "summary.json").read_text())
    assert summary["questions"] == 3 and summary["k"] == 2 and summary["split"] == "test"
    assert marker["figures"]["final_eval"]["questions"] == 3

    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(str(output_dir))
    AutoTokenizer.from_pretrained(str(output_dir))


def test_finished_output_is_not_overwritten(tiny_model_dir, tmp_path, capsys):
    output_dir = tmp_path / "done"
    output_dir.mkdir()
    (output_dir / "r1lab_stage.json").write_text("{}")
    code = cli_main(["grpo", "--model", tiny_model_dir, "--task", "gym:chain_sum", "--output_dir", str(output_dir)])
    assert code == 2
    assert "finished stage" in capsys.readouterr().err


def test_skipping_flat_groups_leaves_theweights_bit_identical(tiny_model_dir, tmp_path):
    """One group per optimizer step, half the groups without reward variance: their forward and backward are
    skipped, and the trained weights, Adam's state included, end exactly as without the skip."""
    assert grpo_with_half_the_groups_flat(tiny_model_dir, tmp_path / "full", skip=False, accumulation=1) == 0
    assert grpo_with_half_the_groups_flat(tiny_model_dir, tmp_path / "skip", skip=True, accumulation=1) == 0
    base, full, skipped = weights(tiny_model_dir), weights(str(tmp_path / "full")), weights(str(tmp_path / "skip"))
    assert any(not (full[name] == base[name]).all() for name in full), "GRPO changed nothing"
    assert all(bool((full[name] == skipped[name]).all()) for name in full), "the skip changed the trained weights"
    full_losses, none_skipped = losses_and_skipped(tmp_path / "full")
    skip_losses, skipped_shares = losses_and_skipped(tmp_path / "skip")
    assert full_losses == skip_losses and set(none_skipped) == {None}
    assert set(skipped_shares) == {0.0, 1.0}, skipped_shares  # whole steps skipped, others computed in full


def test_skipping_zero_advantage_rows_inside_a_batch_keeps_the_update(tiny_model_dir, tmp_path):
    """Two groups shuffled into each micro-batch: the flat group's rows are sliced out; the update is the same
    up to float rounding (a smaller batch sums in another order)."""
    assert (
        grpo_with_half_the_groups_flat(
            tiny_model_dir, tmp_path / "full", skip=False, accumulation=2, extra=ONE_SGD_STEP
        )
        == 0
    )
    assert (
        grpo_with_half_the_groups_flat(tiny_model_dir, tmp_path / "skip", skip=True, accumulation=2, extra=ONE_SGD_STEP)
        == 0
    )
    assert_same_training(tiny_model_dir, tmp_path / "full", tmp_path / "skip")
    _, skipped_shares = losses_and_skipped(tmp_path / "skip")
    assert all(0 < share < 1 for share in skipped_shares), skipped_shares


def _watch_sampling(monkeypatch) -> tuple[list, list]:
    """(per decode_batch call: (autocast on, the sampler's weight dtypes), per generation: whether its
    log-probabilities were flagged as the training forward's)."""
    import torch

    import r1lab.training.grpo_trainer as grpo_trainer

    decodes, exact_flags = [], []
    real_decode, real_generate = grpo_trainer.decode_batch, grpo_trainer.R1GRPOTrainer._r1lab_generate

    def watching(model, *args, **kwargs):
        decodes.append((torch.is_autocast_enabled("cpu"), {parameter.dtype for parameter in model.parameters()}))
        return real_decode(model, *args, **kwargs)

    def recording(self, prompt_ids):
        completion_ids, logps, closed, exact = real_generate(self, prompt_ids)
        exact_flags.append(exact)
        return completion_ids, logps, closed, exact

    monkeypatch.setattr(grpo_trainer, "decode_batch", watching)
    monkeypatch.setattr(grpo_trainer.R1GRPOTrainer, "_r1lab_generate", recording)
    return decodes, exact_flags


def _correction_records(output_dir) -> list[dict]:
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [record for record in records if "loss" in record]


def test_bf16_autocast_on_the_cpu_corrects_float32_rollouts(tiny_model_dir, tmp_path, monkeypatch):
    """bf16 + use_cpu: the training forward runs under bf16 autocast; r1lab's sampler decodes in float32 outside
    it, so its log-probabilities are not the training forward's: TRL computes the old ones and the loss weighs
    each rollout by truncated importance sampling (logged per step)."""
    import torch

    decodes, exact_flags = _watch_sampling(monkeypatch)
    output_dir = tmp_path / "bf16"
    code = grpo_with_half_the_groups_flat(
        tiny_model_dir,
        output_dir,
        skip=True,
        accumulation=2,
        extra=["--bf16", "true", "--use_cpu", "true", "--max_steps", "2"],
    )
    assert code == 0 and decodes and not any(autocast for autocast, _ in decodes)
    assert all(dtypes == {torch.float32} for _, dtypes in decodes)
    assert exact_flags and not any(exact_flags)  # not reused as old log-probabilities
    records = _correction_records(output_dir)
    assert all(record["sampling/importance_sampling_ratio/mean"] > 0 for record in records)
    assert all(0 <= record["sampling/sampling_logp_difference/mean"] < 0.5 for record in records)
    base, trained = weights(tiny_model_dir), weights(str(output_dir))
    assert all(trained[name].dtype == torch.float32 for name in trained)  # float32 weights, bf16 compute
    assert any(not (trained[name] == base[name]).all() for name in trained), "GRPO changed nothing"


def test_a_bf16_copy_samples_for_a_policy_trained_in_bf16_autocast(tiny_model_dir, tmp_path, monkeypatch):
    """sampling_dtype bfloat16: r1lab's loop decodes from a bf16 copy of the float32 policy, refreshed after each
    optimizer step (its weights equal the policy's rounded to bf16), and the loss corrects the rollouts."""
    import torch

    import r1lab.training.grpo_trainer as grpo_trainer

    decodes, exact_flags = _watch_sampling(monkeypatch)
    copies, real_sampling_model = [], grpo_trainer.R1GRPOTrainer._sampling_model

    def checking(self, policy):
        sampler = real_sampling_model(self, policy)
        pairs = list(zip(sampler.parameters(), policy.parameters(), strict=True))
        copies.append(
            sampler is not policy and all(torch.equal(mine, theirs.to(torch.bfloat16)) for mine, theirs in pairs)
        )
        return sampler

    monkeypatch.setattr(grpo_trainer.R1GRPOTrainer, "_sampling_model", checking)
    output_dir = tmp_path / "copy"
    code = grpo_with_half_the_groups_flat(
        tiny_model_dir,
        output_dir,
        skip=True,
        accumulation=2,
        extra=["--bf16", "true", "--use_cpu", "true", "--max_steps", "3", "--sampling_dtype", "bfloat16"],
    )
    assert code == 0 and len(copies) == 3 and all(copies)  # one generation per step, each from the current weights
    assert all(dtypes == {torch.bfloat16} for _, dtypes in decodes) and not any(exact_flags)
    records = _correction_records(output_dir)
    assert len(records) == 3 and all("sampling/importance_sampling_capped" in record for record in records)
    base, trained = weights(tiny_model_dir), weights(str(output_dir))
    assert all(trained[name].dtype == torch.float32 for name in trained)
    assert any(not (trained[name] == base[name]).all() for name in trained), "GRPO changed nothing"


def _count_shared_forwards(monkeypatch) -> list[int]:
    import r1lab.training.grpo_forward as grpo_forward

    calls, real = [], grpo_forward.prompt_shared_logps

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo_forward, "prompt_shared_logps", counting)
    return calls


def test_shared_prompt_forward_trains_as_trl_does(tiny_model_dir, tmp_path, monkeypatch):
    """Without gradient checkpointing, micro-batches mixing two prompts are scored with one forward per prompt:
    the same loss and the same update as TRL's forward up to float rounding."""
    calls = _count_shared_forwards(monkeypatch)
    no_checkpointing = ["--gradient_checkpointing", "false", *ONE_SGD_STEP]
    assert (
        grpo_with_half_the_groups_flat(
            tiny_model_dir,
            tmp_path / "trl",
            skip=False,
            accumulation=2,
            extra=[*no_checkpointing, "--share_prompt_forward", "false"],
        )
        == 0
    )
    assert not calls
    assert (
        grpo_with_half_the_groups_flat(
            tiny_model_dir, tmp_path / "shared", skip=False, accumulation=2, extra=no_checkpointing
        )
        == 0
    )
    assert calls, "the shared prompt forward was not used"
    assert_same_training(tiny_model_dir, tmp_path / "trl", tmp_path / "shared")


def test_shared_prompt_forward_with_lora(tiny_model_dir, tmp_path, monkeypatch):
    calls = _count_shared_forwards(monkeypatch)
    output_dir = tmp_path / "lora"
    code = grpo_with_half_the_groups_flat(
        tiny_model_dir,
        output_dir,
        skip=False,
        accumulation=1,
        extra=["--gradient_checkpointing", "false", "--use_peft", "true", "--lora_r", "4", "--max_steps", "2"],
    )
    assert code == 0 and calls
    losses, _ = losses_and_skipped(output_dir)
    assert losses and all(loss == loss for loss in losses)  # no NaN


def test_compact_head_trains_as_trl_does(tiny_model_dir, tmp_path, monkeypatch):
    """With TRL's gradient checkpointing, each chunk is cut after its last completion token and only completion
    positions go through the LM head: same loss and update as TRL's own forward and head."""
    assert (
        grpo_with_half_the_groups_flat(
            tiny_model_dir, tmp_path / "compact", skip=False, accumulation=2, extra=ONE_SGD_STEP
        )
        == 0
    )
    assert fast_paths(tmp_path / "compact")["compact_head"] == "on"
    import r1lab.training.grpo_forward as grpo_forward

    monkeypatch.setattr(grpo_forward, "compact_head_ruled_out", lambda trainer, model: "ruled out by the test")
    assert (
        grpo_with_half_the_groups_flat(tiny_model_dir, tmp_path / "trl", skip=False, accumulation=2, extra=ONE_SGD_STEP)
        == 0
    )
    assert fast_paths(tmp_path / "trl")["compact_head"] == "off: ruled out by the test"
    assert_same_training(tiny_model_dir, tmp_path / "trl", tmp_path / "compact")


def _spy_on_fast_paths(monkeypatch) -> list[str]:
    """The names of r1lab's fast-path functions called (decoding loop, scoring), in call order."""
    import r1lab.training.grpo_forward as grpo_forward
    import r1lab.training.grpo_trainer as grpo_trainer

    called = []
    for module, name in (
        (grpo_trainer, "decode_batch"),
        (grpo_forward, "score_trimmed"),
        (grpo_forward, "prompt_shared_logps"),
        (grpo_forward, "compact_head_chunk"),
    ):
        real = getattr(module, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            called.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return called


def test_fast_paths_false_trains_through_trls_code_and_agrees(tiny_model_dir, tmp_path, monkeypatch):
    """fast_paths false: every path is TRL's own (recorded, and none of r1lab's scoring or sampling code runs). With
    TRL's sampler on both sides the completions are the same, and r1lab's trimmed scoring, compact head and
    zero-advantage skip give TRL's loss and one-step update to float rounding."""
    called = _spy_on_fast_paths(monkeypatch)
    trl_sampler = ["--generation_loop", "trl", *ONE_SGD_STEP]
    assert (
        grpo_with_half_the_groups_flat(
            tiny_model_dir, tmp_path / "trl", skip=True, accumulation=2, extra=[*trl_sampler, "--fast_paths", "false"]
        )
        == 0
    )
    assert called == []
    assert set(fast_paths(tmp_path / "trl").values()) == {"off: fast_paths false"}
    assert (
        grpo_with_half_the_groups_flat(tiny_model_dir, tmp_path / "fast", skip=True, accumulation=2, extra=trl_sampler)
        == 0
    )
    assert "compact_head_chunk" in called and "decode_batch" not in called
    decided = fast_paths(tmp_path / "fast")
    assert decided["sampler"] == "off: generation_loop trl" and decided["shared_prompt_forward"].startswith(
        "off: gradient_checkpointing"
    )
    assert all(decided[path] == "on" for path in ("trimmed_scoring", "compact_head", "zero_advantage_skip"))
    assert_same_training(tiny_model_dir, tmp_path / "trl", tmp_path / "fast")
