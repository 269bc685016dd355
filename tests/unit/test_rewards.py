"""Every registered reward on hand-written completions.

The ``seed.*`` rewards are checked against the seed script's own functions, pasted below verbatim (minus
the ``print`` in ``correctness_reward_func``): they must score every input identically, bugs included.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from r1lab.checking import answers_match, parse_plain_number
from r1lab.errors import UserError
from r1lab.rewards import build_rewards, get_reward, reward_names
from r1lab.rewards.base import RewardFunction, completion_text

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------------
# The seed's reward functions, verbatim (section "GRPO强化学习训练实践" of the seed script).
# ---------------------------------------------------------------------------------------------------
def extract_xml_answer(text: str) -> str:
    answer = text.split("<answer>")[-1]
    answer = answer.split("</answer>")[0]
    return answer.strip()


def correctness_reward_func(prompts, completions, answer, **kwargs) -> list[float]:
    responses = [completion[0]["content"] for completion in completions]
    q = prompts[0][-1]["content"]  # noqa: F841 (the seed prints it)
    extracted_responses = [extract_xml_answer(r) for r in responses]
    return [2.0 if r == a else 0.0 for r, a in zip(extracted_responses, answer)]


def int_reward_func(completions, **kwargs) -> list[float]:
    responses = [completion[0]["content"] for completion in completions]
    extracted_responses = [extract_xml_answer(r) for r in responses]
    return [0.5 if r.isdigit() else 0.0 for r in extracted_responses]


def strict_format_reward_func(completions, **kwargs) -> list[float]:
    """Reward function that checks if the completion has a specific format."""
    pattern = r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
    responses = [completion[0]["content"] for completion in completions]
    matches = [re.match(pattern, r) for r in responses]
    return [0.5 if match else 0.0 for match in matches]


def soft_format_reward_func(completions, **kwargs) -> list[float]:
    """Reward function that checks if the completion has a specific format."""
    pattern = r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"
    responses = [completion[0]["content"] for completion in completions]
    matches = [re.match(pattern, r) for r in responses]
    return [0.5 if match else 0.0 for match in matches]


def count_xml(text) -> float:
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= len(text.split("\n</answer>\n")[-1]) * 0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (
            len(text.split("\n</answer>")[-1]) - 1
        ) * 0.001  # 如果存在多余的文本在 </answer> 标签之后，扣除一些奖励。
    return count


def xmlcount_reward_func(completions, **kwargs) -> list[float]:
    contents = [completion[0]["content"] for completion in completions]
    return [count_xml(c) for c in contents]


SEED_FUNCTIONS = {
    "seed.xmlcount": xmlcount_reward_func,
    "seed.soft_format": soft_format_reward_func,
    "seed.strict_format": strict_format_reward_func,
    "seed.int_answer": int_reward_func,
    "seed.correctness": correctness_reward_func,
}

# ---------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------
SINGLE = "<reasoning>\n48 / 2 = 24, 48 + 24 = 72\n</reasoning>\n<answer>\n72\n</answer>\n"
MULTI = "<reasoning>\nApril: 48.\nMay: 48 / 2 = 24.\nTotal: 72.\n</reasoning>\n<answer>\n72\n</answer>\n"
TRAILING = "<reasoning>\n48 + 24 = 72\n</reasoning>\n<answer>\n72\n</answer>\nI hope this helps!"
MULTI_TRAILING = MULTI + "Anything else?"
ONE_LINE_TAGS = "<reasoning>48 + 24 = 72</reasoning>\n<answer>72</answer>"
ONE_LINE_TAGS_TRAILING = ONE_LINE_TAGS + " done"

# (completion text, gold answer as the gsm8k task stores it: after ####, commas removed)
CASES = [
    (SINGLE, "72"),
    (MULTI, "72"),
    (TRAILING, "72"),
    (MULTI_TRAILING, "72"),
    (ONE_LINE_TAGS, "72"),
    (ONE_LINE_TAGS_TRAILING, "72"),
    (SINGLE.replace("72\n</answer>", "73\n</answer>"), "72"),
    ("The answer is 72.", "72"),
    ("", "72"),
    ("<answer>\n72\n</answer>\n", "72"),
    ("<reasoning>\nonly reasoning\n</reasoning>\n", "72"),
    ("<reasoning>\n48 + 24\n</reasoning>\n<answer>\n72", "72"),  # cut off before </answer>
    (
        "<reasoning>\na\n</reasoning>\n<answer>\n70\n</answer>\n<reasoning>\nb\n</reasoning>\n<answer>\n72\n</answer>\n",
        "72",
    ),
    ("<reasoning>\na\n</reasoning>\n<answer>\n72\n</answer>\n<answer>\n72\n</answer>\n", "72"),
    ("<reasoning>\n<reasoning>\nnested\n</reasoning>\n</reasoning>\n<answer>\n72\n</answer>\n", "72"),
    ("<reasoning>\n1,000 + 80\n</reasoning>\n<answer>\n1,080\n</answer>\n", "1080"),
    ("<reasoning>\n1000 + 80\n</reasoning>\n<answer>\n1080\n</answer>\n", "1080"),
    ("<reasoning>\n1 000 + 80\n</reasoning>\n<answer>\n1 080\n</answer>\n", "1080"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n  72  \n</answer>\n", "72"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n$72\n</answer>\n", "72"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n72 apples\n</answer>\n", "72"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n-3\n</answer>\n", "-3"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n7.5\n</answer>\n", "7.5"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{72}\n</answer>\n", "72"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n７２\n</answer>\n", "72"),  # full-width digits: isdigit() is True
    ("<reasoning>\nx\n</reasoning>\n<answer>\n72\n</answer>\n\n", "72"),
    ("  <reasoning>\nx\n</reasoning>\n<answer>\n72\n</answer>\n", "72"),
    ("<reasoning>\r\nx\r\n</reasoning>\r\n<answer>\r\n72\r\n</answer>\r\n", "72"),
    ("<reasoning>\n\n</reasoning>\n<answer>\n\n</answer>\n", "72"),
    ("<reasoning>\nx\n</reasoning><answer>\n72\n</answer>", "72"),
    ("<think>\n48 + 24 = 72\n</think>\nThe answer is \\boxed{72}.", "72"),
    ("<reasoning>\nx\n</reasoning>\n<answer>\n72\n</answer>\n" + "z" * 300, "72"),
]


def conversational(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def prompt_for(question: str = "How many clips?") -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Respond in the following format: ..."},
        {"role": "user", "content": question},
    ]


def score(name: str, texts: list, golds: list[str] | None = None, **options) -> list[float]:
    """Scores of the registered reward ``name`` called the way TRL calls it (conversational completions)."""
    function = get_reward(name, **options)
    golds = golds if golds is not None else ["72"] * len(texts)
    completions = [conversational(text) if isinstance(text, str) else text for text in texts]
    return function(prompts=[prompt_for()] * len(texts), completions=completions, answer=golds)


def one(name: str, text, gold: str = "72", **options) -> float:
    return score(name, [text], [gold], **options)[0]


# ---------------------------------------------------------------------------------------------------
# Registry contents
# ---------------------------------------------------------------------------------------------------
def test_every_documented_reward_is_registered():
    assert set(reward_names()) >= {
        "seed.xmlcount",
        "seed.soft_format",
        "seed.strict_format",
        "seed.int_answer",
        "seed.correctness",
        "xml.strict_format",
        "xml.soft_format",
        "think.format",
        "accuracy",
        "cosine",
        "soft_overlong",
        "repetition_penalty",
        "reasoning_steps",
    }


# ---------------------------------------------------------------------------------------------------
# Seed rewards: bit-identical to the seed's functions
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SEED_FUNCTIONS))
def test_seed_reward_scores_identically_to_the_seed_function(name):
    texts = [text for text, _ in CASES]
    golds = [gold for _, gold in CASES]
    completions = [conversational(text) for text in texts]
    prompts = [prompt_for()] * len(texts)
    expected = SEED_FUNCTIONS[name](prompts=prompts, completions=completions, answer=golds)
    got = get_reward(name)(prompts=prompts, completions=completions, answer=golds)
    for text, want, have in zip(texts, expected, got):
        assert have == want, f"{name} on {text!r}: r1lab {have!r}, seed {want!r}"
    assert got == expected  # exact floats, same order


@pytest.mark.parametrize("name", sorted(SEED_FUNCTIONS))
def test_seed_reward_accepts_plain_string_completions_like_conversational_ones(name):
    texts = [text for text, _ in CASES]
    golds = [gold for _, gold in CASES]
    function = get_reward(name)
    as_messages = function(
        prompts=[prompt_for()] * len(texts), completions=[conversational(t) for t in texts], answer=golds
    )
    as_strings = function(prompts=["How many clips?"] * len(texts), completions=texts, answer=golds)
    assert as_strings == as_messages


def test_seed_format_checks_miss_multi_line_reasoning_and_the_fixed_ones_do_not():
    # The seed's regexes lack re.DOTALL: ".*?" stops at the first newline.
    assert one("seed.strict_format", SINGLE) == 0.5
    assert one("seed.strict_format", MULTI) == 0.0
    assert one("xml.strict_format", SINGLE) == 0.5
    assert one("xml.strict_format", MULTI) == 0.5
    # The seed's soft check even misses its own layout (a newline after <reasoning>) ...
    assert one("seed.soft_format", SINGLE) == 0.0
    assert one("seed.soft_format", MULTI) == 0.0
    assert one("seed.soft_format", ONE_LINE_TAGS) == 0.5  # ... and only scores tags on one line
    assert one("xml.soft_format", SINGLE) == 0.5
    assert one("xml.soft_format", MULTI) == 0.5
    assert one("xml.soft_format", ONE_LINE_TAGS) == 0.5


def test_trailing_text_after_the_answer():
    # strict: the completion must end at </answer> (whitespace aside), in both variants
    assert one("seed.strict_format", TRAILING) == 0.0
    assert one("xml.strict_format", TRAILING) == 0.0
    assert one("xml.strict_format", MULTI_TRAILING) == 0.0
    assert one("xml.strict_format", MULTI + "\n\n") == 0.5
    # soft: text may follow (re.match anchors only the start)
    assert one("seed.soft_format", ONE_LINE_TAGS_TRAILING) == 0.5
    assert one("xml.soft_format", TRAILING) == 0.5
    assert one("xml.soft_format", MULTI_TRAILING) == 0.5
    # xmlcount: full 0.5 for the exact layout, minus 0.001 per trailing character
    assert one("seed.xmlcount", SINGLE) == pytest.approx(0.5)
    assert one("seed.xmlcount", TRAILING) == pytest.approx(0.5 - 2 * 0.001 * len("I hope this helps!"))


def test_fixed_strict_format_rejects_a_second_block_and_text_hidden_before_a_second_close_tag():
    duplicated = SINGLE + SINGLE
    smuggled = "<reasoning>\nx\n</reasoning>\n<answer>\n72\n</answer>\nextra text\n</answer>\n"
    assert one("xml.strict_format", duplicated) == 0.0
    assert one("xml.strict_format", smuggled) == 0.0
    assert one("seed.strict_format", duplicated) == 0.0  # the seed's never crosses a newline


def test_fixed_format_rewards_take_a_score_option():
    assert one("xml.strict_format", MULTI, score=1.0) == 1.0
    assert one("xml.soft_format", MULTI, score=0.25) == 0.25
    assert one("think.format", "<think>\nx\n</think>\n42", score=0.5) == 0.5


def test_seed_correctness_is_exact_string_match_and_accuracy_is_mathematical():
    comma = "<reasoning>\nx\n</reasoning>\n<answer>\n1,080\n</answer>\n"
    dollars = "<reasoning>\nx\n</reasoning>\n<answer>\n$1080\n</answer>\n"
    assert one("seed.correctness", comma, "1080") == 0.0
    assert one("seed.correctness", dollars, "1080") == 0.0
    assert one("accuracy", comma, "1080") == 1.0
    assert one("accuracy", dollars, "1080") == 1.0
    assert one("seed.int_answer", comma) == 0.0
    assert one("seed.int_answer", SINGLE) == 0.5


# ---------------------------------------------------------------------------------------------------
# think.format
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>\nFirst 48 / 2 = 24.\nThen 48 + 24 = 72.\n</think>\nThe answer is \\boxed{72}.", 1.0),
        ("<think>48 + 24 = 72</think> 72", 1.0),
        ("  <think>\nx\n</think>\n\n72\n", 1.0),
        ("<think>\nx\n</think>", 0.0),  # no summary
        ("<think>\nx\n</think>\n   \n", 0.0),  # blank summary
        ("<think>\n  \n</think>\n72", 0.0),  # blank reasoning
        ("72", 0.0),
        ("x</think>\n72", 0.0),  # no opening tag
        ("<think>\nx\n72", 0.0),  # never closes
        ("preamble <think>\nx\n</think>\n72", 0.0),  # text before the reasoning
        ("<think>\na\n</think>\nb\n<think>\nc\n</think>\nd", 0.0),  # two think blocks
        ("<think>\na\n</think>\nb</think> 72", 0.0),  # a stray closing tag in the summary
        ("<reasoning>\nx\n</reasoning>\n<answer>\n72\n</answer>\n", 0.0),  # the other layout
    ],
)
def test_think_format(text, expected):
    assert one("think.format", text) == expected


def test_format_rewards_are_linear_on_long_completions():
    long_think = "<think>\n" + "and then " * 40_000  # 360k characters, never closed
    long_xml = "<reasoning>\n" + "step\n" * 70_000
    started = time.perf_counter()
    assert score("think.format", [long_think, long_think + "</think>", long_think + "</think>\n72"]) == [0.0, 0.0, 1.0]
    assert score("xml.strict_format", [long_xml, long_xml + "</reasoning>\n<answer>\n72\n</answer>\n"]) == [0.0, 0.5]
    assert score("xml.soft_format", [long_xml]) == [0.0]
    assert time.perf_counter() - started < 5


# ---------------------------------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------------------------------
def xml_answer(answer: str) -> str:
    return f"<reasoning>\nsome work\n</reasoning>\n<answer>\n{answer}\n</answer>\n"


def think_answer(summary: str) -> str:
    return f"<think>\nsome work\n</think>\n{summary}"


@pytest.mark.parametrize(
    "answer", ["1000", "$1,000", "1,000.00", "\\boxed{1000}", "1000.", " 1000 ", "\\$1,000", "$1000$", "1 000"]
)
def test_accuracy_equal_forms_of_1000(answer):
    assert one("accuracy", xml_answer(answer), "1000") == 1.0


@pytest.mark.parametrize("summary", ["The answer is \\boxed{1000}.", "\\boxed{1,000}", "1000", "$1,000"])
def test_accuracy_with_the_think_template(summary):
    assert one("accuracy", think_answer(summary), "1000", template="think") == 1.0
    assert one("accuracy", xml_answer(summary), "1000", template="think") == 0.0  # no </think>: no answer


@pytest.mark.parametrize(
    "answer", ["1001", "100", "10000", "-1000", "1000.5", "1,000,1", "one thousand", "", "\\boxed{}", "x"]
)
def test_accuracy_unequal_forms_score_zero(answer):
    assert one("accuracy", xml_answer(answer), "1000") == 0.0


def test_accuracy_without_answer_tags_scores_zero():
    assert one("accuracy", "The answer is 1000.", "1000") == 0.0
    assert one("accuracy", "<reasoning>\n1000\n</reasoning>\n", "1000") == 0.0


def test_accuracy_math_answers_and_score_option():
    assert one("accuracy", xml_answer("\\frac{1}{2}"), "0.5") == 1.0
    assert one("accuracy", xml_answer("\\boxed{\\frac{3}{4}}"), "\\frac{3}{4}") == 1.0
    assert one("accuracy", xml_answer("\\frac{1}{3}"), "0.5") == 0.0
    assert one("accuracy", xml_answer("72"), "72", score=2.0) == 2.0


@pytest.mark.parametrize(
    "answer",
    [
        "9^{9^{9^{9}}}",
        "\\boxed{9^{9^{9^{9}}}}",
        "9" * 20_000,
        "{" * 5_000 + "1" + "}" * 5_000,
        "\\boxed{" + "{" * 5_000 + "1" + "}" * 5_000 + "}",
        "{" * 240 + "1" + "}" * 240,  # under the length cap: reaches math-verify, which times out
        "9**9**9**9",
        "1000000000!",
    ],
    ids=[
        "power-tower",
        "boxed-power-tower",
        "20k-digits",
        "nested-5000",
        "boxed-nested-5000",
        "nested-240",
        "python-tower",
        "factorial",
    ],
)
def test_accuracy_on_hostile_answers_scores_zero_quickly(answer):
    started = time.perf_counter()
    assert one("accuracy", xml_answer(answer), "1000") == 0.0
    assert time.perf_counter() - started < 5  # math-verify's parse/verify timeout is 2 s


def test_accuracy_on_hostile_boxed_answers_in_the_think_template():
    started = time.perf_counter()
    for summary in ("\\boxed{9^{9^{9^{9}}}}", "\\boxed{" + "{" * 5_000 + "1" + "}" * 5_000 + "}", "9" * 20_000):
        assert one("accuracy", think_answer(summary), "1000", template="think") == 0.0
    assert time.perf_counter() - started < 5


def test_accuracy_on_a_hostile_gold_scores_zero_quickly():
    started = time.perf_counter()
    assert one("accuracy", xml_answer("1000"), "9" * 20_000) == 0.0
    assert time.perf_counter() - started < 5


def test_checking_primitives():
    assert parse_plain_number("$1,000") == parse_plain_number("1,000.00") == parse_plain_number("1000")
    assert parse_plain_number("1e3") is None
    assert parse_plain_number("9" * 100) is None
    assert answers_match(None, "1") is False
    assert answers_match("  ", "1") is False
    assert answers_match("x" * 600, "1") is False
    assert answers_match("7", 7) is True


# ---------------------------------------------------------------------------------------------------
# Failure isolation
# ---------------------------------------------------------------------------------------------------
def test_a_raising_scorer_scores_that_completion_zero_and_the_others_normally():
    def scorer(text, row):
        if "boom" in text:
            raise ValueError("hostile")
        return 1.0

    reward = RewardFunction("fragile", scorer)
    logged = []
    scores = reward(
        prompts=["p"] * 3,
        completions=["ok", "boom", "fine"],
        answer=["1"] * 3,
        log_metric=lambda name, value: logged.append((name, value)),
    )
    assert scores == [1.0, 0.0, 1.0]
    assert reward.failures == 1
    assert logged == [("reward_failures/fragile", 1.0)]
    reward(prompts=["p"] * 2, completions=["boom", "boom"], log_metric=lambda name, value: logged.append((name, value)))
    assert logged[-1] == ("reward_failures/fragile", 2.0)
    assert reward.failures == 3


def test_a_raising_dotted_path_reward_fails_its_batch_and_the_next_batch_scores(monkeypatch):
    """A dotted-path reward is called as TRL calls it, once per batch: when the call raises, that batch scores 0
    for it (counted per completion in reward_failures/<name>); training, and the next batch, go on."""
    monkeypatch.syspath_prepend(HERE)
    reward = get_reward("unit_reward_helpers.explodes_on_boom")
    logged = {}
    scores = reward(
        prompts=[prompt_for()] * 3,
        completions=[conversational("a"), conversational("boom"), conversational("b")],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert scores == [0.0, 0.0, 0.0] and reward.failures == 3
    assert logged == {"reward_failures/unit_reward_helpers.explodes_on_boom": 3.0}
    scores = reward(
        prompts=[prompt_for()] * 2,
        completions=[conversational("a"), conversational("b")],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert scores == [1.0, 1.0] and reward.failures == 3
    assert logged == {"reward_failures/unit_reward_helpers.explodes_on_boom": 0.0}


def test_log_metric_gets_zero_failures_on_a_clean_batch():
    logged = []
    get_reward("xml.soft_format")(prompts=["p"], completions=[SINGLE], log_metric=lambda *item: logged.append(item))
    assert logged == [("reward_failures/xml.soft_format", 0.0)]


def test_trl_bookkeeping_kwargs_do_not_reach_the_row_but_the_token_ids_do():
    seen = []
    reward = RewardFunction("spy", lambda text, row: seen.append(dict(row)) or 0.0)
    reward(
        prompts=["p"],
        completions=["c"],
        answer=["1"],
        completion_ids=[[1, 2]],
        trainer_state=object(),
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
    )
    assert seen[0]["answer"] == "1" and seen[0]["prompt"] == "p" and seen[0]["completion_ids"] == [1, 2]
    assert not {"trainer_state", "log_extra", "log_metric"} & set(seen[0])


def test_completion_text_reads_strings_messages_and_content_blocks():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    assert (
        completion_text(
            [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "bc"}]}]
        )
        == "abc"
    )


# ---------------------------------------------------------------------------------------------------
# get_reward
# ---------------------------------------------------------------------------------------------------
def test_get_reward_unknown_name():
    with pytest.raises(UserError, match="unknown reward 'nope'"):
        get_reward("nope")


def test_get_reward_unknown_option():
    with pytest.raises(UserError, match="has no option"):
        get_reward("xml.soft_format", weight_of_evidence=1)
    with pytest.raises(UserError, match="has no option"):
        get_reward("seed.correctness", score=3.0)


def test_get_reward_option_of_the_wrong_type_is_an_error_not_a_silent_zero():
    with pytest.raises(UserError, match="score"):
        get_reward("accuracy", score="high")
    assert one("accuracy", xml_answer("72"), "72", score="2") == 2.0  # a numeric string is fine


def test_get_reward_unknown_template_option():
    with pytest.raises(UserError, match="unknown template"):
        get_reward("accuracy", template="yaml")


def test_dotted_path_to_a_trl_style_function(monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    reward = get_reward("unit_reward_helpers.answer_echo")
    assert reward.__name__ == "unit_reward_helpers.answer_echo"
    scores = reward(
        prompts=[prompt_for()] * 2, completions=[conversational("72"), conversational("7")], answer=["72", "72"]
    )
    assert scores == [1.0, 0.0]


def test_dotted_path_function_gets_completions_as_trl_gave_them(monkeypatch):
    # Most TRL rewards (the seed's included) read completion[0]["content"] on conversational data.
    monkeypatch.syspath_prepend(HERE)
    reward = get_reward("unit_reward_helpers.conversational_length")
    assert reward(prompts=[prompt_for()] * 2, completions=[conversational("abc"), conversational("abcdef")]) == [
        3.0,
        6.0,
    ]
    assert reward.failures == 0


def test_dotted_path_to_the_seed_function_itself_matches_the_registered_seed_reward(monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    texts = [text for text, _ in CASES]
    golds = [gold for _, gold in CASES]
    kwargs = {
        "prompts": [prompt_for()] * len(texts),
        "completions": [conversational(t) for t in texts],
        "answer": golds,
    }
    via_path = get_reward("test_rewards.correctness_reward_func")(**kwargs)
    assert via_path == get_reward("seed.correctness")(**kwargs)


@pytest.mark.parametrize("path", ["no_such_module.reward", "unit_reward_helpers.no_such_function", "os.path:nope"])
def test_dotted_path_that_does_not_import(path, monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    with pytest.raises(UserError, match="unknown reward"):
        get_reward(path)


def test_dotted_path_that_is_not_callable_or_given_options(monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    with pytest.raises(UserError, match="not callable"):
        get_reward("unit_reward_helpers.NOT_CALLABLE")
    with pytest.raises(UserError, match="takes no options"):
        get_reward("unit_reward_helpers.answer_echo", score=1.0)


# ---------------------------------------------------------------------------------------------------
# build_rewards
# ---------------------------------------------------------------------------------------------------
CONTEXT = {"task": None, "template": "xml"}


def test_build_rewards_names_only_keeps_trl_default_weights():
    functions, weights = build_rewards(["xml.soft_format", "accuracy"], CONTEXT)
    assert [f.__name__ for f in functions] == ["xml.soft_format", "accuracy"]
    assert weights is None


def test_build_rewards_weights_from_entries():
    functions, weights = build_rewards(
        ["seed.xmlcount", {"name": "xml.soft_format", "weight": 0.5}, {"name": "accuracy", "weight": 2, "score": 1.0}],
        CONTEXT,
    )
    assert [f.__name__ for f in functions] == ["seed.xmlcount", "xml.soft_format", "accuracy"]
    assert weights == [1.0, 0.5, 2.0]


def test_build_rewards_passes_reward_weights_through():
    _, weights = build_rewards(["xml.soft_format", "accuracy"], CONTEXT, [0.5, 2.0])
    assert weights == [0.5, 2.0]


def test_build_rewards_weights_in_both_places_contradict():
    with pytest.raises(UserError, match="not both"):
        build_rewards([{"name": "accuracy", "weight": 2.0}], CONTEXT, [1.0])


def test_build_rewards_weight_count_mismatch():
    with pytest.raises(UserError, match="reward_weights has 3 values for 2 rewards"):
        build_rewards(["xml.soft_format", "accuracy"], CONTEXT, [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "rewards is empty"),
        ([42], "each entry is a name"),
        ([{"weight": 1.0}], "each entry is a name"),
        ([{"name": "accuracy", "weight": "heavy"}], "must be a finite number"),
        ([{"name": "accuracy", "weight": True}], "must be a finite number"),
        ([{"name": "accuracy", "colour": "red"}], "has no option"),
        (["nope"], "unknown reward"),
    ],
)
def test_build_rewards_bad_entries(entries, message):
    with pytest.raises(UserError, match=message):
        build_rewards(entries, CONTEXT)


def test_build_rewards_context_fills_the_template_unless_the_entry_sets_it():
    think_text = think_answer("\\boxed{72}")
    (from_context,), _ = build_rewards(["accuracy"], {"task": None, "template": "think"})
    (from_entry,), _ = build_rewards([{"name": "accuracy", "template": "xml"}], {"task": None, "template": "think"})
    assert from_context(prompts=["p"], completions=[think_text], answer=["72"]) == [1.0]
    assert from_entry(prompts=["p"], completions=[think_text], answer=["72"]) == [0.0]


def test_build_rewards_context_task_decides_correctness():
    class EverythingIsRight:
        def check(self, completion, row, template):
            from r1lab.tasks import Verdict

            return Verdict(extracted="x", correct=True, formatted=False)

    (reward,), _ = build_rewards(["accuracy"], {"task": EverythingIsRight(), "template": "xml"})
    assert reward(prompts=["p"], completions=["no answer at all"], answer=["72"]) == [1.0]
