"""Your own reward, written for TRL's GRPOTrainer and used by r1lab by dotted path (``group_length.relative_length``
with this folder on ``PYTHONPATH``). r1lab calls it as TRL does, once per batch with every keyword, so it can
compare the completions sampled for the same prompt: the length term of Kimi k1.5's length reward
(arXiv:2501.12599), ``0.5 - (length - shortest) / (longest - shortest)`` within each prompt's group, in tokens.
(Kimi also caps it at 0 for wrong answers; here ``accuracy`` or ``cosine`` judges correctness.)"""


def relative_length(prompts, completions, completion_ids, log_metric=None, **kwargs):
    groups = {}
    for index, prompt in enumerate(prompts):
        groups.setdefault(repr(prompt), []).append(index)  # the completions of one prompt
    scores, spreads = [0.0] * len(completions), []
    for members in groups.values():
        lengths = [len(completion_ids[index]) for index in members]
        shortest, longest = min(lengths), max(lengths)
        spreads.append(longest - shortest)
        if longest > shortest:  # a group of equal lengths scores 0 throughout
            for index, length in zip(members, lengths):
                scores[index] = 0.5 - (length - shortest) / (longest - shortest)
    if log_metric is not None:  # TRL's hook: averaged over the logging step, written to metrics.jsonl
        log_metric("relative_length/spread_tokens", sum(spreads) / len(spreads))
    return scores
