"""Sampled generation, tokens/s: r1lab's sampler (top-p among the 64 most likely tokens, inverse-CDF draw) vs the
one it replaced (a full-vocabulary sort for top-p, then ``torch.multinomial``), both in one process.

Same model, the cpu-rl eval's chain_sum test prompts, k samples per prompt at the given temperature / top-p, the
same seed and batch size; only ``r1lab.generation.sample_next`` differs. The two draw different random numbers, so
the completions differ: their accuracies are printed side by side as a check that both sample alike.

    .venv/bin/python benchmarks/sampling_speed.py --model runs/cpu-rl/cold-start
    .venv/bin/python benchmarks/sampling_speed.py --limit 32 --k 4 --temperature 1.0 --top_p 1.0
"""

from __future__ import annotations

import time

from _prompts import check_sampling, load, run, sampling_parser, test_prompts


def sort_then_multinomial(logits, temperature: float, top_p: float, generator):
    """The sampler before 2026-11-30: sorts the whole vocabulary whenever top_p < 1."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1:
        sorted_probabilities, order = probabilities.sort(dim=-1, descending=True)
        mass_before = sorted_probabilities.cumsum(dim=-1) - sorted_probabilities
        sorted_probabilities[mass_before >= top_p] = 0
        probabilities = torch.zeros_like(probabilities).scatter_(-1, order, sorted_probabilities)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def main() -> None:
    parser = sampling_parser(__doc__.splitlines()[0], limit=64)
    args = parser.parse_args()
    check_sampling(args)

    from r1lab import generation

    task, rows, prompts, template = test_prompts("chain_sum", args.limit)
    model, tokenizer = load(args.model)
    settings = {
        "n": args.k,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "stop_strings": template.stop_string,
        "progress": False,
    }
    print(
        f"model {args.model}: {len(prompts)} chain_sum test prompts x {args.k} samples, T {args.temperature}, "
        f"top_p {args.top_p}, max_new_tokens {args.max_new_tokens}, batch {args.batch_size}",
        flush=True,
    )
    generation.generate(model, tokenizer, prompts[:2], **{**settings, "max_new_tokens": 8})  # warm-up

    current = generation.sample_next
    rates = {}
    for name, sampler in (
        ("full sort + multinomial (before)", sort_then_multinomial),
        ("r1lab sampler (now)", current),
    ):
        generation.sample_next = sampler
        try:
            started = time.perf_counter()
            completions = generation.generate(model, tokenizer, prompts, **settings)
            seconds = time.perf_counter() - started
        finally:
            generation.sample_next = current
        tokens = sum(sample.tokens for samples in completions for sample in samples)
        right = [
            task.check(sample.text, row, template).correct
            for row, samples in zip(rows, completions)
            for sample in samples
        ]
        rates[name] = tokens / seconds
        print(
            f"{name:34s}: {tokens:6d} tokens in {seconds:6.1f} s = {rates[name]:6.1f} tok/s, "
            f"pass@1 {sum(right) / len(right):.3f}",
            flush=True,
        )
    before, now = rates.values()
    print(f"speed-up: {now / before:.2f}x tokens/s")


if __name__ == "__main__":
    run(main)
