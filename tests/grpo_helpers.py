"""What the tiny-model GRPO tests share: runs through the CLI, the trained weights, and the comparison of two
training paths over one optimizer step."""

from __future__ import annotations

import json
import os

from r1lab.cli import main as cli_main


def weights(model_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


# Two training paths that differ only by float rounding are compared over ONE optimizer step of plain SGD without
# weight decay: the completions of step 1 are sampled from the same weights with the same seed, so they are the same
# on both sides, and SGD's update is the learning rate times the gradient, so the two updates differ by the gradient's
# rounding alone. More steps (or Adam, whose first update is about lr * sign(gradient)) turn that rounding into
# other samples and other updates, differently on each kind of CPU (an AMX CPU failed the 4-step Adam version).
ONE_SGD_STEP = ("--max_steps", "1", "--optim", "sgd", "--weight_decay", "0")


def grpo_with_half_the_groups_flat(tiny_model_dir, output_dir, skip: bool, accumulation: int, extra=()) -> int:
    return cli_main(
        [
            "grpo",
            "--model",
            tiny_model_dir,
            "--task",
            "gym:chain_sum",
            "--task_size",
            "8",
            "--task_options",
            "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--rewards",
            "reward_helpers.varies_on_even_questions",
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            str(accumulation),
            "--max_completion_length",
            "12",
            "--max_steps",
            "4",
            "--learning_rate",
            "1e-2",
            "--weight_decay",
            "0.1",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--skip_zero_advantage_rows",
            str(skip).lower(),
            "--output_dir",
            str(output_dir),
            *extra,
        ]
    )


def losses_and_skipped(output_dir):
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    records = [record for record in records if "loss" in record]
    return [record["loss"] for record in records], [record.get("zero_advantage_rows_skipped") for record in records]


# How far apart two float32 updates computed in another order may be, relative to the update's size (per tensor):
# rounding gives about 1e-6; a wrong row, position or mask gives order 1.
UPDATE_RELATIVE_TOLERANCE = 1e-4


def assert_same_training(model_dir, reference_dir, other_dir) -> None:
    """The same loss and the same one-step SGD update (:data:`ONE_SGD_STEP`), to float rounding."""
    import torch

    (reference_losses, _), (other_losses, _) = losses_and_skipped(reference_dir), losses_and_skipped(other_dir)
    assert abs(reference_losses[0] - other_losses[0]) <= 1e-5 * max(1.0, abs(reference_losses[0]))
    base, reference, other = weights(model_dir), weights(str(reference_dir)), weights(str(other_dir))
    assert any(not (reference[name] == base[name]).all() for name in reference), "GRPO changed nothing"
    for name in reference:
        expected, got = (reference[name] - base[name]).double(), (other[name] - base[name]).double()
        # float32 weights: an update below the weight's own rounding step is not resolved by either side
        floor = 4 * torch.finfo(torch.float32).eps * base[name].double().norm()
        difference = (expected - got).norm()
        assert difference <= UPDATE_RELATIVE_TOLERANCE * expected.norm() + floor, (
            name,
            float(difference),
            float(expected.norm()),
        )


def fast_paths(output_dir) -> dict[str, str]:
    """The fast paths the run recorded (r1lab_stage.json's figures): {path: "on" | "off: why"}."""
    return json.loads((output_dir / "r1lab_stage.json").read_text())["figures"]["fast_paths"]
