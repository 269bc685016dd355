"""Rewards by dotted path are called as TRL calls them (the whole batch, every keyword); factories take options."""

from __future__ import annotations

import math
import os

import pytest

from r1lab.errors import UserError
from r1lab.rewards import build_rewards, check_reward_names, get_reward
from r1lab.rewards.base import CallableReward
from r1lab.rewards.registry import is_reward_function

HERE = os.path.dirname(os.path.abspath(__file__))
CONTEXT = {"task": None, "template": "xml"}


@pytest.fixture(autouse=True)
def helpers_importable(monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    import unit_reward_helpers

    unit_reward_helpers.CALLS.clear()
    return unit_reward_helpers


def batch(count: int = 4, groups: int = 2, lengths=None):
    """A GRPO batch as TRL passes it: ``groups`` prompts × ``count // groups`` completions, every keyword."""
    per_group = count // groups
    prompts = [[{"role": "user", "content": f"question {index // per_group}"}] for index in range(count)]
    lengths = lengths or [3 + index for index in range(count)]
    logged, extra = {}, {}

    class State:
        global_step = 7

    return (
        {
            "prompts": prompts,
            "completions": [[{"role": "assistant", "content": "x" * length}] for length in lengths],
            "completion_ids": [[5] * length for length in lengths],
            "trainer_state": State(),
            "log_extra": lambda column, values: extra.__setitem__(column, values),
            "log_metric": lambda name, value: logged.__setitem__(name, value),
            "answer": [str(index) for index in range(count)],
            "task_index": [index // per_group for index in range(count)],
        },
        logged,
        extra,
    )


def test_a_reward_function_gets_the_whole_batch_and_every_keyword_trl_passes(helpers_importable):
    reward = get_reward("unit_reward_helpers.batch_spy")
    assert isinstance(reward, CallableReward)
    kwargs, logged, extra = batch(count=6, groups=3)
    assert reward(**kwargs) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    (seen,) = helpers_importable.CALLS  # one call for the whole batch
    assert seen["prompts"] == kwargs["prompts"] and seen["completions"] == kwargs["completions"]
    assert seen["completion_ids"] == kwargs["completion_ids"]
    assert seen["trainer_state"].global_step == 7
    assert seen["columns"]["answer"] == kwargs["answer"] and seen["columns"]["task_index"] == kwargs["task_index"]
    assert seen["columns"]["solution"] == kwargs["answer"]  # the gold also under the name TRL's rewards read
    assert extra == {"spy_tokens": [3, 4, 5, 6, 7, 8]}
    assert logged == {"spy/batch": 6.0, "reward_failures/unit_reward_helpers.batch_spy": 0.0}


def test_a_batch_relative_reward_compares_each_group(helpers_importable):
    reward = get_reward("unit_reward_helpers.shortest_in_group")
    kwargs, _, _ = batch(count=6, groups=2, lengths=[9, 4, 7, 5, 5, 8])
    assert reward(**kwargs) == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def test_the_datas_own_solution_column_wins(helpers_importable):
    reward = get_reward("unit_reward_helpers.echo_solution")
    completions = [[{"content": "a"}], [{"content": "b"}]]
    assert reward(prompts=["p", "p"], completions=completions, answer=["a", "x"]) == [1.0, 0.0]
    assert reward(prompts=["p", "p"], completions=completions, answer=["a", "x"], solution=["x", "b"]) == [0.0, 1.0]


def test_none_and_nan_are_skipped_as_trl_does_and_inf_or_text_are_counted_failures():
    reward = get_reward("unit_reward_helpers.skips_and_misbehaves")
    kwargs, logged, _ = batch(count=6, groups=1)
    assert reward(**kwargs) == [None, None, 0.0, 0.0, 0.0, 2.0]
    assert reward.failures == 3 and logged["reward_failures/unit_reward_helpers.skips_and_misbehaves"] == 3.0


def test_a_wrong_number_of_scores_fails_the_batch():
    reward = get_reward("unit_reward_helpers.one_score_too_few")
    kwargs, logged, _ = batch(count=4)
    assert reward(**kwargs) == [0.0] * 4
    assert reward.failures == 4 and logged["reward_failures/unit_reward_helpers.one_score_too_few"] == 4.0


def test_an_async_reward_function_is_awaited():
    kwargs, _, _ = batch(count=2, lengths=[2, 5])
    assert get_reward("unit_reward_helpers.async_length")(**kwargs) == [2.0, 5.0]


def test_the_scorer_interface_scores_one_completion_as_a_batch_of_one():
    reward = get_reward("unit_reward_helpers.batch_spy")
    assert reward.scorer("xyz", {"prompt": "p", "completion": "xyz", "completion_ids": [1, 2, 3]}) == 3.0
    with pytest.raises(RuntimeError):
        get_reward("unit_reward_helpers.one_score_too_few").scorer("x", {"prompt": "p", "completion": "x"})


# ---------------------------------------------------------------------------------------------------
# Factories and their options
# ---------------------------------------------------------------------------------------------------
def test_factory_or_function_is_told_by_the_signature(helpers_importable):
    from trl.rewards import (
        accuracy_reward,
        get_cosine_scaled_reward,
        get_repetition_penalty_reward,
        get_soft_overlong_punishment,
        think_format_reward,
    )

    assert is_reward_function(accuracy_reward) and is_reward_function(think_format_reward)
    assert is_reward_function(get_soft_overlong_punishment(10, 2))  # its __call__(completion_ids, **kwargs)
    for factory in (
        get_soft_overlong_punishment,
        get_repetition_penalty_reward,
        get_cosine_scaled_reward,
        helpers_importable.get_constant_reward,
        helpers_importable.LengthOver,
    ):
        assert not is_reward_function(factory), factory


def test_trl_factories_by_dotted_path_with_options_give_trls_own_numbers():
    from trl.rewards import get_repetition_penalty_reward, get_soft_overlong_punishment

    kwargs, _logged, _ = batch(count=4, lengths=[10, 80, 90, 120])
    overlong = get_reward("trl.rewards.get_soft_overlong_punishment", max_completion_len=100, soft_punish_cache=20)
    assert overlong(**kwargs) == get_soft_overlong_punishment(100, 20)(completion_ids=kwargs["completion_ids"])
    assert overlong(**kwargs) == [0.0, 0.0, -0.5, -1.0]
    repetition = get_reward("trl.rewards.get_repetition_penalty_reward", ngram_size=2, max_penalty=-0.5)
    ids = [[1, 2, 3, 4], [5, 5, 5, 5, 5], [1, 2, 1, 2], [3]]
    kwargs["completion_ids"] = ids
    assert (
        repetition(**kwargs)
        == get_repetition_penalty_reward(2, -0.5)(completion_ids=ids)
        == pytest.approx([0.0, -0.375, -0.5 / 3, 0.0])
    )
    cosine = get_reward("trl.rewards.get_cosine_scaled_reward", max_len=100)
    boxed = [[{"role": "assistant", "content": "\\boxed{72}"}]] * 2
    assert cosine(prompts=["p"] * 2, completions=boxed, completion_ids=[[1] * 50] * 2, answer=["72", "73"]) == [
        0.75,
        -0.75,
    ]


def test_options_in_a_recipe_entry_inline_or_under_options():
    entries = [
        {
            "name": "trl.rewards.get_soft_overlong_punishment",
            "options": {"max_completion_len": 96, "soft_punish_cache": 24},
            "weight": 0.5,
        },
        {"name": "trl.rewards.get_soft_overlong_punishment", "max_completion_len": 96, "soft_punish_cache": 24},
        {"name": "accuracy", "options": {"score": 2.0}},
        {"name": "accuracy", "score": 2.0},
        {"name": "unit_reward_helpers.get_constant_reward", "options": {"value": "0.25"}},  # converted by annotation
        {"name": "unit_reward_helpers.LengthOver", "options": {"limit": 4}},
        {"name": "unit_reward_helpers.batch_spy", "options": {}},
        {
            "name": "routed",
            "reward": "unit_reward_helpers.get_constant_reward",
            "sources": ["reasoning"],
            "options": {"value": 3.0},
        },
    ]
    check_reward_names(entries)
    functions, weights = build_rewards(entries, CONTEXT)
    assert weights == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    kwargs, _, _ = batch(count=2, lengths=[90, 3])
    kwargs["completions"] = [[{"role": "assistant", "content": "<answer>\n7\n</answer>"}]] * 2
    kwargs["answer"] = ["7", "8"]
    kwargs["source"] = ["reasoning", "general"]
    scores = [function(**kwargs) for function in functions]
    assert scores[0] == scores[1] == [-0.75, 0.0]  # (72 - 90) / 24
    assert scores[2] == scores[3] == [2.0, 0.0]
    assert scores[4] == [0.25, 0.25] and scores[5] == [1.0, 0.0] and scores[6] == [90.0, 3.0]
    assert scores[7] == [3.0, None]  # a routed dotted-path factory: scored on its source only


def test_a_factory_gets_the_runs_task_and_template_when_it_names_them(monkeypatch, helpers_importable):
    seen = {}

    def factory(task=None, template="xml", bonus: float = 1.0):
        seen.update(task=task, template=template)
        return lambda completions, **kwargs: [bonus] * len(completions)

    monkeypatch.setattr(helpers_importable, "needs_the_run", factory, raising=False)
    (reward,), _ = build_rewards(
        [{"name": "unit_reward_helpers.needs_the_run", "options": {"bonus": 2}}],
        {"task": "the task", "template": "think"},
    )
    assert seen == {"task": "the task", "template": "think"}
    assert reward(prompts=["p"], completions=["c"]) == [2.0]


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {
                "name": "trl.rewards.get_soft_overlong_punishment",
                "options": {"max_completion_len": 96, "soft_punish_cache": 24, "cache": 1},
            },
            "has no option(s) cache (options: max_completion_len, soft_punish_cache)",
        ),
        (
            {"name": "trl.rewards.get_soft_overlong_punishment", "options": {"max_completion_len": 96}},
            "needs option(s) soft_punish_cache",
        ),
        ({"name": "trl.rewards.get_soft_overlong_punishment"}, "needs option(s) max_completion_len, soft_punish_cache"),
        (
            {"name": "trl.rewards.get_cosine_scaled_reward", "options": {"max_len": "long"}},
            "option max_len: expected an integer, got 'long'",
        ),
        (
            {"name": "trl.rewards.think_format_reward", "options": {"score": 2.0}},
            "is a reward function (called as TRL calls it) and takes no options",
        ),
        ({"name": "math.pi"}, "reward 'math.pi' is not callable"),
        ({"name": "unit_reward_helpers.NOT_CALLABLE"}, "is not callable"),
        ({"name": "accuracy", "options": [1]}, "options of 'accuracy' must be a mapping"),
        ({"name": "accuracy", "score": 1.0, "options": {"score": 2.0}}, "score given both inline and under options"),
    ],
)
def test_bad_entries_are_refused_by_the_dry_check_and_by_the_build(entry, message):
    with pytest.raises(UserError) as checked:
        check_reward_names([entry])
    assert message in str(checked.value)
    with pytest.raises(UserError) as built:
        build_rewards([entry], CONTEXT)
    assert message in str(built.value)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"name": "trl.rewards.get_repetition_penalty_reward", "options": {"max_penalty": 0.5}},
            "reward 'trl.rewards.get_repetition_penalty_reward' rejected its options (max_penalty=0.5): max_penalty 0.5 should not be positive",
        ),
        (
            {"name": "unit_reward_helpers.factory_of_a_number"},
            "the factory returned 42 (type int), not a reward function",
        ),
        ({"name": "unit_reward_helpers.factory_of_a_scorer"}, "takes no prompts, completions, completion_ids"),
        (
            {"name": "unit_reward_helpers.completions_only"},
            "takes no prompts, completion_ids, trainer_state, log_extra, log_metric",
        ),
    ],
)
def test_what_only_building_reveals_is_refused_at_build_time(entry, message):
    """A factory's own checks run when it is called: at build time (before the model loads), not in a dry check."""
    with pytest.raises(UserError) as built:
        build_rewards([entry], CONTEXT)
    assert message in str(built.value) and "\n" not in str(built.value)


def test_trl_rewards_stay_isolated_under_routing_and_count_failures():
    (reward,), _ = build_rewards(
        [{"name": "routed", "reward": "unit_reward_helpers.one_score_too_few", "sources": ["reasoning"]}], CONTEXT
    )
    kwargs, logged, _ = batch(count=4)
    kwargs["source"] = ["reasoning", "reasoning", "general", "reasoning"]
    assert reward(**kwargs) == [0.0, 0.0, None, 0.0]
    assert reward.failures == 3 and not any(math.isnan(value) for value in logged.values())


@pytest.mark.parametrize(
    "source, message",
    [
        ("raise RuntimeError('no GPU here')\n", "importing broken_rewards failed: RuntimeError: no GPU here"),
        ("def reward(:\n", "broken_rewards has a syntax error"),
        ("import no_such_dependency_of_it\n", "importing broken_rewards failed: ModuleNotFoundError"),
        ("x = 1\n", "unknown reward 'broken_rewards.reward': module broken_rewards has no 'reward'"),
    ],
)
def test_every_way_a_reward_module_fails_to_import_is_one_line(tmp_path, monkeypatch, source, message):
    (tmp_path / "broken_rewards.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "broken_rewards", raising=False)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_rewards(["broken_rewards.reward"], {})


@pytest.mark.parametrize("path", [".rewards.accuracy", "rewards..accuracy", "a-b.reward", "trailing."])
def test_malformed_reward_paths_are_named(path):
    with pytest.raises(UserError, match=r"nor a function path such as package\.module\.function"):
        build_rewards([path], {})


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), "1"])
def test_a_reward_weight_must_be_a_finite_number(weight):
    with pytest.raises(UserError, match="weight of 'accuracy' must be a finite number"):
        build_rewards([{"name": "accuracy", "weight": weight}], {})
