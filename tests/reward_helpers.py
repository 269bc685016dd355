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
