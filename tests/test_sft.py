"""SFT and cold-start data on a tiny random model: loss mask, training, saving, data checks, bad input."""

from __future__ import annotations

import json
import os

import pytest

from r1lab.cli import main as cli_main

CHAIN_SUM = ["--task", "gym:chain_sum", "--task_options", "{min_terms: 3, max_terms: 4, min_digits: 1, max_digits: 2}"]
TINY_TRAINING = [
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "2",
    "--learning_rate",
    "1e-2",
    "--logging_steps",
    "1",
    "--save_strategy",
    "no",
]
GSM8K_ROWS = [
    {
        "question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
        "answer": "He has 3 + 4 = <<3+4=7>>7 apples.\n#### 7",
    },
    {
        "question": "A box holds 12 pens. How many pens are in 2 boxes?",
        "answer": "2 boxes hold 2 * 12 = <<2*12=24>>24 pens.\n#### 24",
    },
    {
        "question": "Sara had 1,000 dollars and spent 250. How much is left?",
        "answer": "She has 1000 - 250 = <<1000-250=750>>750 dollars left.\n#### 750",
    },
    # A rationale that loops: the repetition filter removes it.
    {
        "question": "What is 5 + 5?",
        "answer": "Add five.\nAdd five.\nAdd five.\nAdd five.\nAdd five.\n5 + 5 = 10\n#### 10",
    },
]


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


def _changed(before_dir, after_dir) -> list[str]:
    before, after = _weights(before_dir), _weights(after_dir)
    return [name for name in before if name in after and not (before[name] == after[name]).all()]


@pytest.fixture
def gsm8k_dir(gsm8k_fixture_dir, tmp_path):
    """The shared GSM8K fixture when it is there, else a four-row stand-in."""
    if os.path.isfile(os.path.join(gsm8k_fixture_dir, "train.jsonl")):
        return gsm8k_fixture_dir
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in GSM8K_ROWS))
    return str(folder)


def test_loss_mask_covers_only_the_assistant_part(tiny_model_dir, tmp_path):
    from r1lab.config import build_config
    from r1lab.models import load_model
    from r1lab.stages.sft import R1SFTConfig, build_trainer, plan

    config = build_config(
        R1SFTConfig,
        {
            "model": tiny_model_dir,
            "task": "gym:chain_sum",
            "task_size": 4,
            "output_dir": str(tmp_path / "sft"),
            "per_device_train_batch_size": 2,
        },
    )
    prepared = plan(config)
    trainer = build_trainer(prepared, load_model(tiny_model_dir))
    tokenizer = prepared.tokenizer
    by_question = {sample["prompt"][-1]["content"]: sample for sample in prepared.samples}
    rows = [trainer.train_dataset[index] for index in range(len(trainer.train_dataset))]
    batch = trainer.data_collator(rows[:2])
    for row_index, row in enumerate(rows):
        ids, labels = row["input_ids"], row["labels"]
        text = tokenizer.decode(ids)
        sample = next(s for question, s in by_question.items() if question in text)
        prompt_length = len(
            tokenizer.apply_chat_template(sample["prompt"], add_generation_prompt=True, return_dict=False)
        )
        assert all(label == -100 for label in labels[:prompt_length])
        assert labels[prompt_length:] == ids[prompt_length:]
        supervised = tokenizer.decode([token for token, label in zip(ids, labels) if label != -100])
        assert supervised == sample["completion"][0]["content"] + "<|im_end|>\n"
        if row_index < 2:  # the collated batch keeps the mask and adds -100 on padding only
            width = len(ids)
            assert batch["labels"][row_index, :width].tolist() == labels
            assert (batch["labels"][row_index, width:] == -100).all()


def test_sft_trains_saves_and_reloads(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output_dir = tmp_path / "sft"
    code = cli_main(
        [
            "sft",
            "--model",
            tiny_model_dir,
            *CHAIN_SUM,
            "--task_size",
            "8",
            *TINY_TRAINING,
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    assert _changed(tiny_model_dir, str(output_dir)), "SFT did not change any weight"
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "loss" in record] == [1, 2]
    marker = json.loads((output_dir / "r1lab_stage.json").read_text())
    assert marker["stage"] == "sft" and marker["figures"]["train_samples"] == 8
    assert json.loads((output_dir / "data_stats.json").read_text())["kept"] == 8
    AutoModelForCausalLM.from_pretrained(str(output_dir))
    AutoTokenizer.from_pretrained(str(output_dir))


def test_lora_sft_from_cold_start_data_merges_the_adapter(tiny_model_dir, gsm8k_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    data_dir = tmp_path / "data"
    assert (
        cli_main(
            ["cold-start-data", "--task", "gsm8k", "--dataset", gsm8k_dir, "--limit", "4", "--output", str(data_dir)]
        )
        == 0
    )
    output_dir = tmp_path / "lora"
    code = cli_main(
        [
            "sft",
            "--model",
            tiny_model_dir,
            "--train_file",
            str(data_dir),
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--lora_alpha",
            "8",
            "--lora_target_modules",
            "q_proj,v_proj",
            *TINY_TRAINING,
            "--output_dir",
            str(output_dir),
        ]
    )
    assert code == 0
    assert not (output_dir / "adapter_config.json").exists()
    changed = _changed(tiny_model_dir, str(output_dir))
    assert changed and all("q_proj" in name or "v_proj" in name for name in changed)
    AutoModelForCausalLM.from_pretrained(str(output_dir))


def test_cold_start_data_from_gsm8k_solutions(gsm8k_dir, tmp_path):
    output = tmp_path / "cold.jsonl"
    assert (
        cli_main(
            ["cold-start-data", "--task", "gsm8k", "--dataset", gsm8k_dir, "--limit", "4", "--output", str(output)]
        )
        == 0
    )
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    stats = json.loads((tmp_path / "cold.stats.json").read_text())
    assert stats["total"] == 4 and stats["kept"] == len(rows) >= 2
    assert stats["kept"] + sum(stats["removed"].values()) == 4
    first = rows[0]
    assert [message["role"] for message in first["prompt"]] == ["system", "user"]
    assert first["completion"][0]["role"] == "assistant"
    assert "<<" not in first["completion"][0]["content"]  # calculator marks removed
    assert first["completion"][0]["content"].endswith(f"<answer>\n{first['answer']}\n</answer>\n")
    if gsm8k_dir.startswith(str(tmp_path)):  # the stand-in's looping rationale
        assert stats["removed"]["repetition"] == 1


def test_cold_start_data_on_chain_sum_counts_each_filter(tmp_path):
    output = tmp_path / "data"
    assert (
        cli_main(
            [
                "cold-start-data",
                *CHAIN_SUM,
                "--task_size",
                "40",
                "--template",
                "think",
                "--filters",
                "{max_chars: 45}",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    stats = json.loads((output / "stats.json").read_text())
    assert stats["total"] == 40
    assert 0 < stats["removed"]["length"] < 40
    assert stats["kept"] == 40 - stats["removed"]["length"]
    assert len((output / "train.jsonl").read_text().splitlines()) == stats["kept"]
    assert (output / "r1lab_stage.json").exists()
    # A finished output is not replaced without --overwrite.
    assert cli_main(["cold-start-data", *CHAIN_SUM, "--task_size", "40", "--output", str(output)]) == 2


def test_cold_start_data_from_zero_completions(tmp_path):
    from r1lab.tasks import TaskSpec, get_task

    spec = TaskSpec(
        task="gym:chain_sum",
        task_size=6,
        task_options={"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1},
    )
    rows = get_task(spec).load()
    records = [
        # R1-Zero style, in the think layout: right answers, one of them twice.
        {
            "question": rows[0]["question"],
            "answer": rows[0]["answer"],
            "completion": f"<think>\nadding up\n</think>\nThe answer is \\boxed{{{rows[0]['answer']}}}.",
        },
        {
            "question": rows[0]["question"],
            "answer": rows[0]["answer"],
            "completion": f"<think>\nadding again\n</think>\n\\boxed{{{rows[0]['answer']}}}",
        },
        {
            "question": rows[1]["question"],
            "answer": rows[1]["answer"],
            "completion": [{"role": "assistant", "content": f"<think>\nsum\n</think>\n\\boxed{{{rows[1]['answer']}}}"}],
        },
        {
            "question": rows[2]["question"],
            "answer": rows[2]["answer"],
            "completion": "<think>\nsum\n</think>\n\\boxed{-999}",
        },
        {"question": rows[3]["question"], "answer": rows[3]["answer"], "completion": "<think>\nI keep thinking"},
        {"question": "not a question of the task", "answer": "1", "completion": "<think>\nx\n</think>\n\\boxed{1}"},
    ]
    completions = tmp_path / "zero.jsonl"
    completions.write_text("".join(json.dumps(record) + "\n" for record in records))
    output = tmp_path / "cold.jsonl"
    code = cli_main(
        [
            "cold-start-data",
            "--task",
            "gym:chain_sum",
            "--task_size",
            "6",
            "--task_options",
            "{min_terms: 3, max_terms: 3, min_digits: 1, max_digits: 1}",
            "--source",
            "zero",
            "--completions_file",
            str(completions),
            "--completions_template",
            "think",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    stats = json.loads((tmp_path / "cold.stats.json").read_text())
    assert stats["total"] == 6 and stats["kept"] == 2
    removed = {name: count for name, count in stats["removed"].items() if count}
    assert removed == {"max_per_question": 1, "checker": 1, "no_answer": 1, "unknown_question": 1}
    kept = [json.loads(line) for line in output.read_text().splitlines()]
    assert (
        kept[0]["completion"][0]["content"]
        == f"<reasoning>\nadding up\n</reasoning>\n<answer>\n{rows[0]['answer']}\n</answer>\n"
    )


def test_cold_start_data_fewshot_verifies_generated_samples(tmp_path, monkeypatch, tiny_model_dir):
    import r1lab.stages.cold_start as cold_start
    from r1lab.generation import Completion
    from r1lab.tasks import TaskSpec, get_task

    spec = TaskSpec(task="gym:chain_sum", task_size=4)
    rows = get_task(spec).load()
    seen_prompts = []

    def fake_generate(model, tokenizer, prompts, n=1, **settings):
        seen_prompts.extend(prompts)
        answers = {row["question"]: row["answer"] for row in rows}
        out = []
        for prompt in prompts:
            gold = answers[prompt[-1]["content"]]
            out.append(
                [
                    Completion(f"<reasoning>\nadding\n</reasoning>\n<answer>\n{gold}\n</answer>", 9, False),
                    Completion("<reasoning>\nadd add add", 64, True),
                ][:n]
            )
        return out

    monkeypatch.setattr(cold_start, "generate", fake_generate)
    monkeypatch.setattr(cold_start, "load_generation_model", lambda *args, **kwargs: object())
    output = tmp_path / "fewshot.jsonl"
    code = cli_main(
        [
            "cold-start-data",
            "--task",
            "gym:chain_sum",
            "--task_size",
            "4",
            "--source",
            "fewshot",
            "--model",
            tiny_model_dir,
            "--fewshot_examples",
            "1",
            "--num_samples",
            "2",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    assert len(seen_prompts) == 3  # the example row is not asked again
    assert [message["role"] for message in seen_prompts[0]] == ["system", "user", "assistant", "user"]
    stats = json.loads((tmp_path / "fewshot.stats.json").read_text())
    assert stats["total"] == 6 and stats["kept"] == 3 and stats["removed"]["truncated"] == 3
    kept = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(kept[0]["prompt"]) == 2  # the dataset holds the plain prompt, not the few-shot one


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["sft", "--train_file", "missing.jsonl"], "train_file not found"),
        (["sft", "--use_peft", "true", "--lora_r", "0"], "lora_r must be at least 1"),
        (["sft", "--filters", "{max_char: 3}"], "did you mean max_chars"),
        (["cold-start-data", "--source", "nope"], "source must be one of"),
        (["cold-start-data", "--source", "zero"], "needs --completions_file"),
        (["cold-start-data", *CHAIN_SUM, "--task_size", "5", "--filters", "{max_chars: 2}"], "length removed 5"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, message, tmp_path, capsys, tiny_model_dir):
    extra = (
        ["--output_dir", str(tmp_path / "out"), "--model", tiny_model_dir]
        if arguments[0] == "sft"
        else ["--output", str(tmp_path / "out")]
    )
    assert cli_main([*arguments, *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_malformed_train_file_names_the_sample(tiny_model_dir, tmp_path, capsys):
    train_file = tmp_path / "chat.jsonl"
    train_file.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
        + "\n"
    )
    code = cli_main(
        ["sft", "--model", tiny_model_dir, "--train_file", str(train_file), "--output_dir", str(tmp_path / "o")]
    )
    assert code == 2
    assert "sample 2: the last message must be a non-empty assistant message" in capsys.readouterr().err


@pytest.mark.parametrize(
    "recipe",
    ["recipes/quickstart/cold_start.yaml", "recipes/quickstart/cold_start_gsm8k.yaml", "recipes/r1/cold_start.yaml"],
)
def test_cold_start_recipes_parse(recipe):
    from r1lab.config import load_config
    from r1lab.stages.sft import R1SFTConfig, peft_config

    config = load_config(R1SFTConfig, os.path.join(os.path.dirname(os.path.dirname(__file__)), recipe), {})
    assert config.train_file is None and config.num_train_epochs >= 1
    assert peft_config(config) is None


def test_gsm8k_cold_start_recipe_keeps_only_short_verified_rationales(gsm8k_fixture_dir, tmp_path):
    from r1lab.config import load_config
    from r1lab.stages.sft import R1SFTConfig, plan

    recipe = os.path.join(os.path.dirname(os.path.dirname(__file__)), "recipes/quickstart/cold_start_gsm8k.yaml")
    config = load_config(
        R1SFTConfig, recipe, {"dataset": gsm8k_fixture_dir, "limit": None, "output_dir": str(tmp_path / "o")}
    )
    prepared = plan(config)
    lengths = [
        len(prepared.tokenizer(s["completion"][0]["content"], add_special_tokens=False)["input_ids"])
        for s in prepared.samples
    ]
    assert lengths and max(lengths) <= 80
    assert prepared.data_stats["removed"]["length"] > 0  # the fixture has longer rationales too
    assert prepared.data_stats["kept"] == len(prepared.samples)
