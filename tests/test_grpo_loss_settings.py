"""Every loss setting of TRL 1.16's GRPO trains through ``r1lab grpo``: each loss_type, GSPO's sequence-level
importance sampling, top_entropy_quantile, epsilon_high, delta, each scale_rewards and mask_truncated_completions.
One optimizer step of plain SGD without weight decay on a tiny model, so a weight moves only if the loss had a
gradient; each run records the fast paths it took, and the zero-advantage skip must be on exactly where it is exact."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from grpo_helpers import ONE_SGD_STEP, assert_same_training, fast_paths, grpo_with_half_the_groups_flat, weights

from r1lab.cli import main as cli_main

SKIP_ON = "on"


def _skip_off(why: str) -> str:
    return f"off: {why}"


def _not_dapo(loss_type: str) -> str:
    return _skip_off(f"loss_type {loss_type}: exact for dapo only")


# id: (settings, the zero-advantage skip's recorded state). Every other path is the same in each run.
CASES = {
    **{
        f"loss_type={loss}": (["--loss_type", loss], _not_dapo(loss))
        for loss in ("grpo", "dr_grpo", "bnpo", "cispo", "sapo", "vespo")
    },
    "loss_type=dapo": (["--loss_type", "dapo"], SKIP_ON),
    "loss_type=luspo": (["--loss_type", "luspo", "--importance_sampling_level", "sequence"], _not_dapo("luspo")),
    "gspo": (["--loss_type", "grpo", "--importance_sampling_level", "sequence"], _not_dapo("grpo")),
    "top_entropy_quantile": (
        ["--top_entropy_quantile", "0.5"],
        _skip_off("top_entropy_quantile < 1: the entropy mask reads the whole batch"),
    ),
    "epsilon_high": (["--epsilon_high", "0.28"], SKIP_ON),
    "delta": (["--delta", "1.5"], SKIP_ON),
    **{f"scale_rewards={scale}": (["--scale_rewards", scale], SKIP_ON) for scale in ("group", "batch", "none")},
    "mask_truncated_completions": (["--mask_truncated_completions", "true"], SKIP_ON),
}


def _trl_choices(field: str) -> set[str]:
    """The values TRL's GRPOConfig help says ``field`` accepts."""
    from trl import GRPOConfig

    help_text = {f.name: f for f in dataclasses.fields(GRPOConfig)}[field].metadata["help"]
    supported = re.search(r"Supported values are:?(.*?)\.", help_text).group(1)
    return set(re.findall(r"'(\w+)'", supported))


def test_every_loss_type_of_trl_has_a_case():
    covered = {settings[1] for settings, _ in CASES.values() if settings[0] == "--loss_type"}
    assert covered == _trl_choices("loss_type")
    assert {"group", "batch", "none"} == {
        settings[1] for settings, _ in CASES.values() if settings[0] == "--scale_rewards"
    }


@pytest.fixture(scope="module")
def eos_prone_model_dir(tiny_model_dir, tmp_path_factory) -> str:
    """The tiny model with an untied LM head that ends a completion (EOS) often: the head reads one hidden unit, with
    a large weight for EOS and its opposite for another token, so about half the positions end the completion and some
    of 4 completions of at most 8 tokens end before the cap (mask_truncated_completions then masks the others)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.config.tie_word_embeddings = False
    hidden = model.config.hidden_size
    head = torch.zeros(model.config.vocab_size, hidden)
    head[tokenizer.eos_token_id, 0] = 20.0
    head[tokenizer.convert_tokens_to_ids("a"), 0] = -20.0
    model.lm_head = torch.nn.Linear(hidden, model.config.vocab_size, bias=False)
    model.lm_head.weight = torch.nn.Parameter(head)
    with torch.no_grad():
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
    path = str(tmp_path_factory.mktemp("eos-prone-model"))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _one_sgd_step(model_dir: str, output_dir, settings: list[str]) -> int:
    return cli_main(
        [
            "grpo",
            "--model",
            model_dir,
            "--task",
            "gym:chain_sum",
            "--task_size",
            "8",
            "--task_options",
            "{min_terms: 2, max_terms: 2, min_digits: 1, max_digits: 1}",
            "--rewards",
            "reward_helpers.distinct_characters",
            "--num_generations",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "1",
            "--max_completion_length",
            "8",
            "--max_steps",
            "1",
            "--optim",
            "sgd",
            "--weight_decay",
            "0",
            "--learning_rate",
            "1e-1",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--gradient_checkpointing",
            "false",
            "--output_dir",
            str(output_dir),
            *settings,
        ]
    )


@pytest.mark.parametrize("case", list(CASES))
def test_each_trl_loss_setting_trains_through_r1lab_grpo(eos_prone_model_dir, tmp_path, case):
    settings, skip = CASES[case]
    output_dir = tmp_path / "grpo"
    assert _one_sgd_step(eos_prone_model_dir, output_dir, settings) == 0
    base, trained = weights(eos_prone_model_dir), weights(str(output_dir))
    assert any(not (trained[name] == base[name]).all() for name in base), f"{case}: the step changed no weight"
    figures = json.loads((output_dir / "r1lab_stage.json").read_text())["figures"]  # what r1lab_stage.json recorded
    assert figures["fast_paths"] == {
        "sampler": "on",
        "sampled_old_logps": "off: TRL needs none (each generation batch is trained on within one optimizer step, once)",
        "trimmed_scoring": "on",
        "shared_prompt_forward": "on",
        "compact_head": "off: shared_prompt_forward scores instead",
        "zero_advantage_skip": skip,
    }
    assert figures["completions/clipped_ratio"] < 1.0  # some completion ended before the cap


# Settings whose loss r1lab's fast paths compute in their own way: the zero-advantage skip claims dapo with each of
# these (on in CASES), and every case scores through the shared prompt forward. Each against TRL's code (fast_paths
# false), TRL's sampler on both sides so the completions are the same: one SGD step, the same to float rounding.
# Two groups per step, one of them flat, shuffled into two micro-batches: the skip slices rows out of each.
EQUIVALENCE = {
    "dapo+mask_truncated+epsilon_high+delta+scale_rewards=batch": [
        "--mask_truncated_completions",
        "true",
        "--epsilon_high",
        "0.28",
        "--delta",
        "1.5",
        "--scale_rewards",
        "batch",
    ],
    "gspo": ["--loss_type", "grpo", "--importance_sampling_level", "sequence"],
    "loss_type=vespo": ["--loss_type", "vespo"],
}


@pytest.mark.parametrize("case", list(EQUIVALENCE))
def test_fast_paths_train_each_claimed_setting_as_trl_does(eos_prone_model_dir, tmp_path, case):
    settings = ["--generation_loop", "trl", "--gradient_checkpointing", "false", *ONE_SGD_STEP, *EQUIVALENCE[case]]
    assert (
        grpo_with_half_the_groups_flat(
            eos_prone_model_dir, tmp_path / "trl", skip=True, accumulation=2, extra=[*settings, "--fast_paths", "false"]
        )
        == 0
    )
    assert (
        grpo_with_half_the_groups_flat(
            eos_prone_model_dir, tmp_path / "fast", skip=True, accumulation=2, extra=settings
        )
        == 0
    )
    decided = fast_paths(tmp_path / "fast")
    assert decided["shared_prompt_forward"] == "on"
    assert decided["zero_advantage_skip"] == (
        "on" if "--loss_type" not in settings else _not_dapo(settings[settings.index("--loss_type") + 1])
    )
    assert_same_training(eos_prone_model_dir, tmp_path / "trl", tmp_path / "fast")
