"""Reward functions importable by dotted path from tests (tests/ is on sys.path under pytest)."""


def distinct_characters(prompts=None, completions=None, **kwargs):
    """A TRL-style reward with variance even for a random model: how many distinct characters it wrote."""
    texts = [c if isinstance(c, str) else c[0]["content"] for c in completions]
    return [len(set(text)) / 10.0 for text in texts]


def always_raises(prompts=None, completions=None, **kwargs):
    """A reward that fails on every completion: training goes on, each failure scored 0 and counted."""
    raise RuntimeError("this reward always fails")
