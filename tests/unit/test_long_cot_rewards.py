"""The long-CoT controls (``cosine``, ``soft_overlong``, ``repetition_penalty``, ``reasoning_steps``) on hand-computed
cases, and against TRL's implementations where TRL implements the same definition."""

from __future__ import annotations

import math
import random

import pytest

from r1lab.errors import UserError
from r1lab.rewards import build_rewards, get_reward
from r1lab.rewards.long_cot import repetition_value

XML_RIGHT = "<reasoning>\n48 + 24 = 72\n</reasoning>\n<answer>\n72\n</answer>\n"
XML_WRONG = "<reasoning>\n48 + 24 = 73\n</reasoning>\n<answer>\n73\n</answer>\n"
THINK_RIGHT = "<think>\n48 + 24 = 72\n</think>\nThe answer is \\boxed{72}."
THINK_WRONG = "<think>\n48 + 24 = 73\n</think>\nThe answer is \\boxed{73}."


def call(reward, texts, lengths=None, golds=None):
    """The reward called as GRPOTrainer calls it; returns (scores, logged metrics)."""
    logged = {}
    lengths = lengths if lengths is not None else [len(text.split()) for text in texts]
    scores = reward(
        prompts=[[{"role": "user", "content": "48 + 24?"}]] * len(texts),
        completions=[[{"role": "assistant", "content": text}] for text in texts],
        completion_ids=[[7] * length for length in lengths],
        answer=golds if golds is not None else ["72"] * len(texts),
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    return scores, logged


# ---------------------------------------------------------------------------------------------------
# cosine
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, tokens, expected",
    [
        (XML_RIGHT, 0, 1.0),  # correct: max_value_correct at length 0
        (XML_RIGHT, 25, 0.5 + 0.25 * (1 + math.cos(math.pi / 4))),  # 0.9267...
        (XML_RIGHT, 50, 0.75),
        (XML_RIGHT, 100, 0.5),  # min_value_correct at max_len
        (XML_RIGHT, 250, 0.5),  # clamped past max_len
        (XML_WRONG, 0, -1.0),  # wrong: min_value_wrong when short
        (XML_WRONG, 50, -0.75),
        (XML_WRONG, 100, -0.5),  # max_value_wrong when long
        (XML_WRONG, 250, -0.5),
        ("no answer at all", 40, -0.5 - 0.25 * (1 + math.cos(0.4 * math.pi))),
    ],
)
def test_cosine_hand_computed(text, tokens, expected):
    (score,), _ = call(get_reward("cosine", max_len=100), [text], [tokens])
    assert score == pytest.approx(expected, abs=1e-12)


def test_cosine_takes_its_bounds_and_logs_correctness_and_length():
    reward = get_reward(
        "cosine", max_len=10, min_value_wrong=-2.0, max_value_wrong=0.0, min_value_correct=1.0, max_value_correct=3.0
    )
    scores, logged = call(reward, [XML_RIGHT, XML_WRONG, XML_RIGHT], [0, 5, 10])
    assert scores == pytest.approx([3.0, -1.0, 1.0])
    assert logged["reward_stats/cosine/correct"] == pytest.approx(2 / 3)
    assert logged["reward_stats/cosine/tokens"] == pytest.approx(5.0)
    assert logged["reward_failures/cosine"] == 0.0


def test_cosine_asks_the_runs_template_and_task():
    """The think template's boxed summary is read in a think run; an xml run reads <answer>; the task decides."""
    (think,), _ = build_rewards([{"name": "cosine", "options": {"max_len": 100}}], {"task": None, "template": "think"})
    (xml,), _ = build_rewards([{"name": "cosine", "max_len": 100}], {"task": None, "template": "xml"})
    assert call(think, [THINK_RIGHT, THINK_WRONG], [50, 50])[0] == [0.75, -0.75]
    assert call(xml, [XML_RIGHT, THINK_RIGHT], [50, 50])[0] == [0.75, -0.75]

    class EverythingIsRight:
        def check(self, completion, row, template):
            from r1lab.tasks import Verdict

            return Verdict(extracted="x", correct=True, formatted=False)

    (lenient,), _ = build_rewards(
        [{"name": "cosine", "max_len": 100}], {"task": EverythingIsRight(), "template": "xml"}
    )
    assert call(lenient, ["anything"], [50])[0] == [0.75]


def test_cosine_gives_trls_numbers_when_both_judge_alike_and_differs_only_in_the_judge():
    from trl.rewards import get_cosine_scaled_reward

    trl_cosine = get_cosine_scaled_reward(max_len=100)
    ours = build_rewards([{"name": "cosine", "max_len": 100}], {"task": None, "template": "think"})[0][0]
    texts, lengths = [THINK_RIGHT, THINK_WRONG] * 4, [0, 0, 13, 29, 50, 71, 100, 140]
    completions = [[{"role": "assistant", "content": text}] for text in texts]
    ids = [[7] * length for length in lengths]
    expected = trl_cosine(completions=completions, solution=["72"] * len(texts), completion_ids=ids)
    assert call(ours, texts, lengths)[0] == expected  # the same floats
    # An xml answer has no \boxed{}: TRL's math-verify finds no answer and scores it wrong; the task's checker reads it.
    xml_ours = get_reward("cosine", max_len=100)
    assert trl_cosine(completions=[[{"content": XML_RIGHT}]], solution=["72"], completion_ids=[[7] * 50]) == [-0.75]
    assert call(xml_ours, [XML_RIGHT], [50])[0] == [0.75]


def test_cosine_without_token_ids_is_a_counted_failure_not_a_guess():
    reward = get_reward("cosine", max_len=100)
    assert reward(prompts=["p"], completions=[XML_RIGHT], answer=["72"]) == [0.0]
    assert reward.failures == 1


# ---------------------------------------------------------------------------------------------------
# soft_overlong
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tokens, expected", [(0, 0.0), (80, 0.0), (81, -0.05), (90, -0.5), (100, -1.0), (101, -1.0), (500, -1.0)]
)
def test_soft_overlong_hand_computed(tokens, expected):
    (score,), logged = call(get_reward("soft_overlong", max_completion_len=100, soft_punish_cache=20), ["x"], [tokens])
    assert score == pytest.approx(expected, abs=1e-12)
    assert logged["reward_stats/soft_overlong/tokens"] == tokens
    assert logged["reward_stats/soft_overlong/punished"] == float(expected < 0)


@pytest.mark.parametrize("max_completion_len, soft_punish_cache", [(100, 20), (96, 24), (10, 0), (10, 10), (7, 3)])
def test_soft_overlong_gives_trls_numbers(max_completion_len, soft_punish_cache):
    from trl.rewards import get_soft_overlong_punishment

    lengths = list(range(0, 2 * max_completion_len + 2))
    trl_scores = get_soft_overlong_punishment(max_completion_len, soft_punish_cache)(
        completion_ids=[[1] * length for length in lengths]
    )
    reward = get_reward("soft_overlong", max_completion_len=max_completion_len, soft_punish_cache=soft_punish_cache)
    assert call(reward, ["x"] * len(lengths), lengths)[0] == trl_scores  # exactly the same floats


# ---------------------------------------------------------------------------------------------------
# repetition_penalty
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, ngram_size, max_penalty, expected",
    [
        ("", 3, -1.0, 0.0),
        ("two words", 3, -1.0, 0.0),  # fewer words than n
        ("one two three four five", 3, -1.0, 0.0),  # nothing repeats
        ("the cat the cat the cat", 2, -1.0, -(1 - 2 / 5)),  # 5 bigrams, 2 distinct
        ("the cat the cat the cat", 2, -0.5, -0.5 * (1 - 2 / 5)),
        ("So the answer is so THE answer is", 3, -1.0, -(1 - 4 / 6)),  # lowercased: 6 trigrams, 4 distinct
        ("so  the\nanswer\tis so the answer is", 3, -1.0, -(1 - 4 / 6)),  # any whitespace splits
        ("7 7 7 7 7", 1, -1.0, -(1 - 1 / 5)),
    ],
)
def test_repetition_penalty_hand_computed(text, ngram_size, max_penalty, expected):
    (score,), _ = call(get_reward("repetition_penalty", ngram_size=ngram_size, max_penalty=max_penalty), [text])
    assert score == pytest.approx(expected, abs=1e-12)


def test_repetition_penalty_is_trls_formula_over_words_instead_of_tokens():
    """TRL's token version fed one id per lowercased word gives the same numbers: one formula, another unit."""
    from trl.rewards import get_repetition_penalty_reward

    draw = random.Random(0)
    vocabulary = ["so", "So", "the", "answer", "is", "7", "wait", "Wait", "add", "4"]
    texts = [" ".join(draw.choice(vocabulary) for _ in range(draw.randint(0, 30))) for _ in range(200)]
    for ngram_size in (1, 2, 3, 4):
        trl_reward = get_repetition_penalty_reward(ngram_size=ngram_size, max_penalty=-0.7)
        ids = {}
        word_ids = [[ids.setdefault(word, len(ids)) for word in text.lower().split()] for text in texts]
        assert [repetition_value(text, ngram_size, -0.7) for text in texts] == pytest.approx(
            trl_reward(completion_ids=word_ids), abs=1e-12
        )


# ---------------------------------------------------------------------------------------------------
# reasoning_steps
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, markers",
    [
        ("", 0),
        ("<reasoning>\n3 + 4 = 7\n</reasoning>\n<answer>\n7\n</answer>\n", 0),
        ("Step 1: add 3 and 4. Step 2: check.", 2),
        ("Step 1: a\nStep 2: b\nStep 3: c\nStep 4: d", 4),  # the score is capped at 1
        ("1. add\n2. carry\n3. check", 3),  # a numbered item on every line counts (open-r1 counted only the first)
        ("First, add. Second, carry.", 2),
        ("First, add. Next, carry. Finally, check.", 3),
        ("Plan:\n- add\n- carry", 2),
        ("Plan:\n* add", 1),
        ("first, lowercase does not count; step 1: neither", 0),
        ("Answer 12.5 is not a list item", 0),
        ("45 - 90 = -45\n-45 - 35 = -80\n-80 + 13 = -67", 0),  # a line starting with a negative number is no bullet
        ("Plan:\n*emphasis* is no bullet\n-\tbut a tab is", 1),
    ],
)
def test_reasoning_steps_hand_computed(text, markers):
    (score,), logged = call(get_reward("reasoning_steps"), [text])
    assert score == pytest.approx(min(1.0, markers / 3), abs=1e-12)
    assert logged["reward_stats/reasoning_steps/markers"] == markers


def test_reasoning_steps_option():
    assert call(get_reward("reasoning_steps", steps=2), ["Step 1: a Step 2: b Step 3: c"])[0] == [1.0]
    assert call(get_reward("reasoning_steps", steps=6), ["Step 1: a Step 2: b Step 3: c"])[0] == [0.5]


# ---------------------------------------------------------------------------------------------------
# Bad options: one UserError each, before any model
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, options, message",
    [
        ("cosine", {}, "needs option(s) max_len"),
        ("cosine", {"max_len": 0}, "max_len must be at least 1"),
        ("cosine", {"max_len": "long"}, "max_len: expected an integer"),
        ("cosine", {"max_len": 10, "max_value": 1}, "has no option(s) max_value"),
        ("soft_overlong", {"soft_punish_cache": 4}, "needs option(s) max_completion_len"),
        ("soft_overlong", {"max_completion_len": 96}, "needs option(s) soft_punish_cache"),
        (
            "soft_overlong",
            {"max_completion_len": 96, "soft_punish_cache": 97},
            "between 0 and max_completion_len (96), got 97",
        ),
        ("repetition_penalty", {"max_penalty": 0.5}, "must not be positive"),
        ("repetition_penalty", {"ngram_size": 0}, "ngram_size must be at least 1"),
        ("reasoning_steps", {"steps": 0}, "steps must be at least 1"),
    ],
)
def test_bad_options(name, options, message):
    with pytest.raises(UserError) as raised:
        get_reward(name, **options)
    assert message in str(raised.value)
