"""YAML recipes + command-line overrides → a checked R1GRPOConfig."""

from __future__ import annotations

import inspect
import json
import os
import re
from dataclasses import dataclass
from typing import Literal

import pytest

from r1lab.config import build_config, config_to_dict, load_config, parse_overrides, read_yaml_mapping, setting
from r1lab.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED_RECIPE = os.path.join(REPO_ROOT, "recipes", "seed-gsm8k", "grpo.yaml")
FIXED_RECIPE = os.path.join(REPO_ROOT, "recipes", "seed-gsm8k", "grpo-fixed.yaml")
QUICKSTART_RECIPE = os.path.join(REPO_ROOT, "recipes", "quickstart", "grpo.yaml")


@pytest.fixture(scope="module")
def Config():
    from r1lab.stages.grpo import R1GRPOConfig

    return R1GRPOConfig


def build(Config, **values):
    return build_config(Config, values)


def write(tmp_path, text: str, name: str = "recipe.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------------
def test_parse_overrides_forms():
    assert parse_overrides(
        ["--learning_rate", "1e-5", "--task=gym:chain_sum", "--use-cpu", "--limit", "null", "--bf16"]
    ) == {
        "learning_rate": "1e-5",
        "task": "gym:chain_sum",
        "use_cpu": True,
        "limit": "null",
        "bf16": True,
    }
    assert parse_overrides(["--learning_rate", "-1e-5"]) == {"learning_rate": "-1e-5"}
    assert parse_overrides(["--task_options={a: 1}"]) == {"task_options": "{a: 1}"}
    assert parse_overrides([]) == {}


@pytest.mark.parametrize("arguments", [["learning_rate", "1"], ["--"], ["--a", "1", "2"]])
def test_parse_overrides_rejects_bare_words(arguments):
    with pytest.raises(UserError, match="unexpected argument"):
        parse_overrides(arguments)


def test_yaml_recipe_with_overrides_on_top(Config, tmp_path):
    path = write(
        tmp_path,
        "task: gym:chain_sum\n"
        "task_options: {min_terms: 3, max_terms: 4}\n"
        "learning_rate: 1.0e-5\n"
        "num_generations: 4\n"
        "per_device_train_batch_size: 4\n"
        "rewards: [xml.soft_format, {name: accuracy, score: 2.0}]\n"
        f"output_dir: {tmp_path / 'out'}\n",
    )
    overrides = parse_overrides(["--learning_rate", "2e-5", "--limit", "12", "--template=think", "--use_cpu"])
    config = load_config(Config, path, overrides)
    assert config.task == "gym:chain_sum"
    assert config.task_options == {"min_terms": 3, "max_terms": 4}
    assert config.learning_rate == 2e-5
    assert config.limit == 12
    assert config.template == "think"
    assert config.use_cpu is True
    assert config.num_generations == 4
    assert config.rewards == ["xml.soft_format", {"name": "accuracy", "score": 2.0}]
    assert not os.path.exists(tmp_path / "out")  # building a config creates nothing


def test_no_recipe_means_defaults_plus_overrides(Config):
    config = load_config(Config, None, {"limit": "3"})
    assert config.limit == 3
    assert config.task == "gsm8k" and config.template == "xml" and config.model == "embedded"
    assert config.rewards == ["xml.soft_format", "xml.strict_format", "accuracy"]


# ---------------------------------------------------------------------------------------------------
# Coercion
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, raw, expected",
    [
        ("learning_rate", "1e-5", 1e-5),
        ("learning_rate", "0.5", 0.5),
        ("learning_rate", 3, 3.0),
        ("warmup_steps", "0.1", 0.1),
        ("beta", "0", 0.0),
        ("use_cpu", "true", True),
        ("use_cpu", "True", True),
        ("use_cpu", "yes", True),
        ("use_cpu", "false", False),
        ("use_cpu", "0", False),
        ("use_cpu", True, True),
        ("overwrite", "true", True),
        ("bf16", "false", False),
        ("rewards", "a,b", ["a", "b"]),
        ("rewards", "[a, b]", ["a", "b"]),
        ("rewards", "accuracy", ["accuracy"]),
        ("rewards", "[{name: accuracy, weight: 2}]", [{"name": "accuracy", "weight": 2}]),
        ("reward_weights", "1,2.5", [1.0, 2.5]),
        ("reward_weights", "[1, 2]", [1.0, 2.0]),
        ("task_options", "{a: 1}", {"a": 1}),
        ("task_options", "{min_terms: 3, name: x}", {"min_terms": 3, "name": "x"}),
        ("limit", "null", None),
        ("limit", "None", None),
        ("limit", None, None),
        ("limit", "12", 12),
        ("limit", 12.0, 12),
        ("max_prompt_length", "null", None),
        ("reward_weights", "null", None),
        ("num_generations", "4", 4),
        ("task_seed", "7", 7),
        ("model", "org/name", "org/name"),
    ],
)
def test_coercion(Config, key, raw, expected):
    values = {key: raw}
    if key == "num_generations":
        values["generation_batch_size"] = 8
    value = getattr(build_config(Config, values), key)
    assert value == expected and type(value) is type(expected)


def test_yaml_exponent_without_a_dot_is_a_float(Config, tmp_path):
    # PyYAML reads "1e-5" (no dot) as a string; the field's type makes it a float.
    config = load_config(Config, write(tmp_path, "learning_rate: 1e-5\nadam_beta2: 0.99\n"), {})
    assert config.learning_rate == 1e-5 and isinstance(config.learning_rate, float)


def test_unknown_key_suggests_the_close_one(Config):
    with pytest.raises(UserError, match=r"unknown config key 'learning_rat' \(did you mean learning_rate\?\)"):
        build(Config, learning_rat="1e-5")
    with pytest.raises(UserError, match=r"unknown config key 'num_generation'.*did you mean num_generations"):
        load_config(Config, None, parse_overrides(["--num-generation", "4"]))


def test_unknown_key_in_a_recipe_names_the_file(Config, tmp_path):
    path = write(tmp_path, "learning_rate: 1.0e-5\ntempreature: 0.7\n")
    with pytest.raises(UserError, match=f"{path}: unknown config key 'tempreature'.*did you mean temperature"):
        load_config(Config, path, {})


def test_unknown_key_without_a_close_match(Config):
    with pytest.raises(UserError) as caught:
        build(Config, zzzqqq=1)
    assert "unknown config key 'zzzqqq'" in str(caught.value) and "did you mean" not in str(caught.value)


@pytest.mark.parametrize(
    "key, raw, message",
    [
        ("learning_rate", "fast", "learning_rate: expected a number"),
        ("learning_rate", True, "learning_rate: expected a number"),
        ("learning_rate", [1], "learning_rate: expected a number"),
        ("seed", "1.5", "seed: expected an integer"),
        ("seed", True, "seed: expected an integer"),
        ("use_cpu", "maybe", "use_cpu: expected true or false"),
        ("bf16", "maybe", "bf16: expected true or false"),  # bool | None
        ("limit", "many", "limit: expected an integer"),  # int | None
        ("limit", 2.5, "limit: expected an integer"),
        ("num_generations", "1.5", "num_generations: expected an integer"),
        ("reward_weights", "[1, x]", "reward_weights: expected a number"),
        ("rewards", "[a, b", "rewards: expected a list"),
        ("rewards", 5, "rewards: expected a list"),
        ("task_options", "a", "task_options: expected a mapping"),
        ("task_options", "{a: [1}", "task_options: expected a mapping"),
        ("task_options", [1, 2], "task_options: expected a mapping"),
        ("template", ["xml"], "template: expected a string"),
        ("lr_scheduler_type", "sideways", "invalid settings: sideways is not a valid SchedulerType"),
    ],
)
def test_wrong_type(Config, key, raw, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        build(Config, **{key: raw})


def test_trl_validation_becomes_a_user_error(Config):
    with pytest.raises(UserError, match=r"generation_batch_size \(16\) must be divisible by num_generations \(3\)"):
        build(Config, num_generations=3, generation_batch_size=16)


# ---------------------------------------------------------------------------------------------------
# Recipe files
# ---------------------------------------------------------------------------------------------------
def test_broken_yaml_names_the_line(Config, tmp_path):
    path = write(tmp_path, "learning_rate: 1.0e-5\nrewards: [accuracy\nlimit: 3\n")
    with pytest.raises(UserError, match=f"{path}:3: broken YAML"):
        load_config(Config, path, {})


def test_broken_yaml_tab_indent(tmp_path):
    path = write(tmp_path, "task_options:\n\tmin_terms: 3\n")
    with pytest.raises(UserError, match=f"{path}:2: broken YAML"):
        read_yaml_mapping(path)


def test_missing_config_file(Config, tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(Config, str(tmp_path / "nope.yaml"), {})


def test_config_path_that_is_a_directory(Config, tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(Config, str(tmp_path), {})


def test_recipe_that_is_not_a_mapping(Config, tmp_path):
    with pytest.raises(UserError, match="a config must be a mapping"):
        load_config(Config, write(tmp_path, "- learning_rate\n- 1e-5\n"), {})


def test_empty_recipe_is_all_defaults(Config, tmp_path):
    assert read_yaml_mapping(write(tmp_path, "# nothing\n")) == {}
    assert load_config(Config, write(tmp_path, ""), {}).task == "gsm8k"


def test_config_to_dict_is_json_safe(Config):
    config = build(Config, task_options="{a: 1}", rewards="a,b")
    data = config_to_dict(config)
    json.dumps(data)
    assert data["task_options"] == {"a": 1} and data["rewards"] == ["a", "b"]
    assert data["lr_scheduler_type"] == "linear"


# ---------------------------------------------------------------------------------------------------
# The shipped recipes
# ---------------------------------------------------------------------------------------------------
SEED_HYPERPARAMETERS = {
    # GRPOConfig(...) in the seed script
    "learning_rate": 5e-6,
    "adam_beta1": 0.9,
    "adam_beta2": 0.99,
    "weight_decay": 0.1,
    "warmup_steps": 0.1,  # the seed's warmup_ratio=0.1: TRL 1.x reads a float < 1 as a ratio
    "logging_steps": 1,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 4,
    "num_generations": 16,
    "max_prompt_length": 256,
    "max_completion_length": 200,
    "num_train_epochs": 1,
    "save_steps": 100,
    "max_grad_norm": 0.1,
    "log_on_each_node": False,
    "use_vllm": False,
    "vllm_gpu_memory_utilization": 0.3,
    "generation_batch_size": 16,
    # the GRPO objective of the seed's TRL
    "beta": 0.04,
    "loss_type": "grpo",
    # the data: 500 GSM8K train rows with the seed's system prompt
    "task": "gsm8k",
    "split": "train",
    "limit": 500,
    "template": "xml",
    "model": "Qwen/Qwen2.5-0.5B-Instruct",
}


@pytest.fixture(scope="module")
def seed_config(Config):
    return load_config(Config, SEED_RECIPE, {})


@pytest.fixture(scope="module")
def fixed_config(Config):
    return load_config(Config, FIXED_RECIPE, {})


@pytest.mark.parametrize("key", sorted(SEED_HYPERPARAMETERS))
def test_seed_recipe_matches_the_seed_script(seed_config, key):
    value = getattr(seed_config, key)
    expected = SEED_HYPERPARAMETERS[key]
    assert value == expected, f"{key}: recipe {value!r}, seed {expected!r}"


def test_seed_recipe_schedule_and_rewards(seed_config):
    assert str(getattr(seed_config.lr_scheduler_type, "value", seed_config.lr_scheduler_type)) == "cosine"
    assert seed_config.rewards == [
        "seed.xmlcount",
        "seed.soft_format",
        "seed.strict_format",
        "seed.int_answer",
        "seed.correctness",
    ]
    assert seed_config.reward_weights is None  # the seed's: every reward weighs 1


def test_fixed_recipe_differs_from_the_seed_only_in_rewards_and_names(seed_config, fixed_config):
    seed, fixed = config_to_dict(seed_config), config_to_dict(fixed_config)
    differing = {key for key in seed if seed[key] != fixed[key]}
    assert differing <= {"rewards", "output_dir", "run_name", "logging_dir"}
    assert fixed_config.rewards == [
        "seed.xmlcount",
        "xml.soft_format",
        "xml.strict_format",
        "seed.int_answer",
        {"name": "accuracy", "score": 2.0},
    ]


def test_recipe_rewards_build(seed_config, fixed_config):
    from r1lab.rewards import build_rewards

    for config in (seed_config, fixed_config):
        functions, weights = build_rewards(
            config.rewards, {"task": None, "template": config.template}, config.reward_weights
        )
        assert len(functions) == 5 and weights is None


def test_quickstart_recipe_loads(Config):
    config = load_config(Config, QUICKSTART_RECIPE, {})
    assert config.task == "gym:chain_sum" and config.model == "embedded"
    assert config.generation_batch_size % config.num_generations == 0


def test_recipe_values_can_be_overridden(Config):
    config = load_config(Config, SEED_RECIPE, parse_overrides(["--limit", "8", "--rewards", "accuracy", "--beta", "0"]))
    assert config.limit == 8 and config.rewards == ["accuracy"] and config.beta == 0.0
    assert config.learning_rate == 5e-6


@dataclass
class DeclaredSettings:
    kind: Literal["a", "b"] = setting("a", "which one")
    rate: float = setting(0.5, "a share", minimum=0.0, maximum=1.0)
    count: int = setting(1, "how many", minimum=1)
    weights: list[float] = setting(default_factory=list, help="numbers")


def test_declared_settings_refuse_values_outside_their_declaration():
    from r1lab.config import check_declared

    Settings = DeclaredSettings
    assert build_config(Settings, {"kind": "b", "rate": "1", "count": "3"}) == Settings("b", 1.0, 3)
    for values, message in [
        ({"kind": "c"}, "kind must be one of a, b, got 'c'"),
        ({"rate": 1.5}, "rate must be at most 1.0, got 1.5"),
        ({"rate": float("nan")}, "rate must be a finite number, got nan"),
        ({"rate": "inf"}, "rate must be a finite number, got inf"),
        ({"count": 0}, "count must be at least 1, got 0"),
        ({"weights": [1.0, float("nan")]}, "weights must be a finite number, got nan"),
    ]:
        with pytest.raises(UserError, match=re.escape(message)):
            build_config(Settings, values)
    with pytest.raises(UserError, match="kind must be one of a, b, got 'z'"):
        check_declared(Settings(kind="z"))  # built in code, checked by the stage's check
    with pytest.raises(UserError, match="count must be at least 1"):
        check_declared(Settings(count=-2))


@pytest.mark.parametrize(
    "command",
    [
        "grpo",
        "sft",
        "distill",
        "eval",
        "cold-start-data",
        "rejection-sampling",
        "report",
        "pipeline",
        "status",
        "bench",
    ],
)
def test_every_r1lab_field_of_every_command_has_a_help_line(command):
    import dataclasses

    from r1lab.commands import load_command
    from r1lab.config import field_help
    from r1lab.reference import command_help

    _, config_class = load_command(command)
    own = {
        f.name
        for cls in config_class.__mro__
        if cls.__module__.startswith("r1lab") and dataclasses.is_dataclass(cls)
        for f in dataclasses.fields(cls)
        if f.name in inspect.get_annotations(cls)
    }
    helps = field_help(config_class)
    assert own and not [name for name in sorted(own) if not helps[name]]
    printed = command_help(command, config_class)
    assert all(f"--{name}" in printed for name in own)
    if command == "grpo":
        assert "auto|float32|bfloat16" in printed and "DAPO's dynamic sampling" in printed


def test_docs_settings_page_is_generated_from_the_declarations():
    """docs/settings.md lists every r1lab setting of every command as declared; regenerate it with
    ``python -m r1lab.reference > docs/settings.md`` after changing a declaration."""
    import os

    from r1lab.reference import settings_page

    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "settings.md")
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == settings_page(), (
            "docs/settings.md is stale: python -m r1lab.reference > docs/settings.md"
        )
