"""Eval generation, seconds: the prompts' shared prefix read once per batch vs every prompt read whole, in one process.

r1lab's decoding loop reads the tokens all of a batch's prompts begin with (chat template, system prompt, the
template's instructions) once and copies that part of the KV cache to every row
(``r1lab.generation.SHARED_PREFIX_MIN_TOKENS``); the baseline reads every prompt whole, as before 2026-11-30. Both
sides run the same prompts, model, settings and seed: greedy (one row per prompt, where prompt reading costs the
most) and k samples per prompt (each prompt already read once for its k rows). Greedy texts must come out the same.

    .venv/bin/python benchmarks/prefix_speed.py --model runs/cpu-rl/02-cold-start          # cpu-rl eval's questions
    .venv/bin/python benchmarks/prefix_speed.py --task gsm8k --limit 64 --max_new_tokens 128
"""

from __future__ import annotations

import time

from _prompts import check_sampling, load, run, sampling_parser, test_prompts


def timed(generation, sharing: bool, *args, **settings):
    """(completions, seconds) of ``generation.generate`` with the shared-prefix read on or off."""
    default = generation.SHARED_PREFIX_MIN_TOKENS
    generation.SHARED_PREFIX_MIN_TOKENS = default if sharing else 10**9
    try:
        started = time.perf_counter()
        completions = generation.generate(*args, **settings)
        return completions, time.perf_counter() - started
    finally:
        generation.SHARED_PREFIX_MIN_TOKENS = default


def main() -> None:
    parser = sampling_parser(__doc__.splitlines()[0], limit=128)
    parser.add_argument("--task", choices=("chain_sum", "gsm8k"), default="chain_sum")
    parser.add_argument("--dataset", default=None, help="GSM8K folder with test.jsonl (--task gsm8k)")
    args = parser.parse_args()
    check_sampling(args)

    from r1lab import generation

    task, rows, prompts, template = test_prompts(args.task, args.limit, args.dataset)
    model, tokenizer = load(args.model)
    ids = generation.prompt_token_ids(tokenizer, prompts)
    print(
        f"model {args.model}: {len(prompts)} {args.task} test prompts of {sum(map(len, ids)) / len(ids):.1f} tokens on "
        f"average, {generation.shared_prefix_length(ids)} shared by all; max_new_tokens {args.max_new_tokens}, "
        f"batch {args.batch_size}",
        flush=True,
    )
    common = {
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "stop_strings": template.stop_string,
        "progress": False,
    }
    generation.generate(model, tokenizer, prompts[:2], **{**common, "max_new_tokens": 8})  # warm-up
    runs = {
        "greedy": {"n": 1, "temperature": 0.0},
        f"k={args.k} T={args.temperature}": {"n": args.k, "temperature": args.temperature, "top_p": args.top_p},
    }
    greedy_texts = {}
    for name, sampling in runs.items():
        seconds = {}
        for sharing in (False, True):
            completions, seconds[sharing] = timed(generation, sharing, model, tokenizer, prompts, **common, **sampling)
            samples = [(row, sample) for row, row_samples in zip(rows, completions) for sample in row_samples]
            right = sum(task.check(sample.text, row, template).correct for row, sample in samples)
            if sampling["temperature"] == 0:
                greedy_texts[sharing] = [sample.text for _, sample in samples]
            label = "shared prefix read once" if sharing else "every prompt read whole"
            print(f"{name:12s} {label:24s}: {seconds[sharing]:7.1f} s, accuracy {right / len(samples):.3f}", flush=True)
        print(f"{name:12s} speed-up: {seconds[False] / seconds[True]:.2f}x", flush=True)
    same = sum(whole == shared for whole, shared in zip(greedy_texts[False], greedy_texts[True]))
    print(f"greedy texts the same on both sides: {same} of {len(prompts)}")


if __name__ == "__main__":
    run(main)
