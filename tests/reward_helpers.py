"""Reward functions importable by dotted path from tests (tests/ is on sys.path under pytest)."""


def distinct_characters(prompts=None, completions=None, **kwargs):
    """A TRL-style reward with variance even for a random model: how many distinct characters it wrote."""
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [len(set(text)) / 10.0 for text in texts]


def always_raises(prompts=None, completions=None, **kwargs):
    """A reward that fails on every completion: training goes on, each failure scored 0 and counted."""
    raise RuntimeError("this reward always fails")


def varies_on_even_questions(prompts=None, completions=None, task_index=None, **kwargs):
    """Variance on even-numbered questions only: the odd ones' groups all score 0.5 (advantage 0 in every row)."""
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [len(set(text)) / 10.0 if index % 2 == 0 else 0.5 for text, index in zip(texts, task_index)]


def constant(prompts=None, completions=None, **kwargs):
    """The same score for every completion: every group is flat."""
    return [1.0 for _ in completions]


# What batch_spy saw, call by call (the CLI runs in-process, so a test reads it after the run).
SPY_CALLS: list[dict] = []


def batch_spy(prompts, completions, completion_ids, trainer_state=None, log_extra=None, log_metric=None, **columns):
    """Records what TRL passed for one batch; scores like distinct_characters (variance even for a random model)."""
    SPY_CALLS.append(
        {
            "completions": len(completions),
            "distinct_prompts": len({repr(prompt) for prompt in prompts}),
            "token_counts": [len(ids) for ids in completion_ids],
            "step": getattr(trainer_state, "global_step", None),
            "hooks": (callable(log_extra), callable(log_metric)),
            "columns": sorted(columns),
        }
    )
    return distinct_characters(prompts=prompts, completions=completions)
