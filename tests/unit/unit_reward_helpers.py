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
