"""TRL-style reward functions that tests reach by dotted path (``unit_reward_helpers.<name>``)."""


def conversational_length(prompts=None, completions=None, **kwargs):
    """Written the way most TRL rewards are (and the seed's): completions are lists of messages."""
    return [float(len(completion[0]["content"])) for completion in completions]


def answer_echo(prompts=None, completions=None, answer=None, **kwargs):
    """1.0 when the completion's text equals the row's ``answer`` column: checks columns reach the function."""
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [1.0 if text == gold else 0.0 for text, gold in zip(texts, answer)]


def explodes_on_boom(prompts=None, completions=None, **kwargs):
    """Raises on a completion containing ``boom``; scores 1.0 otherwise."""
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    if any("boom" in text for text in texts):
        raise RuntimeError("boom")
    return [1.0 for _ in texts]


NOT_CALLABLE = 42


# Rewards written as TRL calls them, by dotted path: the whole batch and every keyword.
CALLS: list[dict] = []


def batch_spy(prompts, completions, completion_ids, trainer_state=None, log_extra=None, log_metric=None, **columns):
    """Records what it was called with; scores each completion by its number of token ids."""
    CALLS.append(
        {
            "prompts": prompts,
            "completions": completions,
            "completion_ids": completion_ids,
            "trainer_state": trainer_state,
            "log_extra": log_extra,
            "log_metric": log_metric,
            "columns": columns,
        }
    )
    if log_extra is not None:
        log_extra("spy_tokens", [len(ids) for ids in completion_ids])
    if log_metric is not None:
        log_metric("spy/batch", float(len(completions)))
    return [float(len(ids)) for ids in completion_ids]


def shortest_in_group(prompts, completions, completion_ids, **kwargs):
    """Batch-relative: 1.0 for the shortest completion(s) of each prompt's group, 0.0 for the others."""
    shortest = {}
    for prompt, ids in zip(prompts, completion_ids):
        shortest[repr(prompt)] = min(shortest.get(repr(prompt), len(ids)), len(ids))
    return [1.0 if len(ids) == shortest[repr(prompt)] else 0.0 for prompt, ids in zip(prompts, completion_ids)]


def echo_solution(completions, solution, **kwargs):
    """Reads the gold the way TRL's and open-r1's rewards do: as ``solution``."""
    return [1.0 if c[0]["content"] == gold else 0.0 for c, gold in zip(completions, solution)]


def skips_and_misbehaves(completions, **kwargs):
    """None (skip this completion, as TRL allows), NaN (the same), inf and strings (failures), then a number."""
    return [None, float("nan"), float("inf"), "high", "3", 2][: len(completions)]


def one_score_too_few(completions, **kwargs):
    return [1.0] * (len(completions) - 1)


async def async_length(completions, **kwargs):
    """TRL awaits async reward functions; r1lab does too."""
    return [float(len(c[0]["content"])) for c in completions]


def get_constant_reward(value: float, scale: float = 1.0):
    """A factory, the way TRL writes them: options in, a reward function out."""

    def constant(completions, **kwargs):
        return [value * scale for _ in completions]

    return constant


class LengthOver:
    """A class is a factory too: its instances are the reward functions."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, completion_ids, **kwargs):
        return [float(len(ids) > self.limit) for ids in completion_ids]


def completions_only(completions):
    """Takes completions but not TRL's other keywords: TRL's call would fail on every batch."""
    return [0.0 for _ in completions]


def factory_of_a_number(x: int = 1):
    return 42


def factory_of_a_scorer(bonus: float = 1.0):
    return lambda text, row: bonus
