"""Generated tokens/s: r1lab's batched greedy generation vs a plain one-prompt-at-a-time HF ``generate`` loop.

Both run in one process on the same GSM8K test prompts (xml template), the same model, the same
``max_new_tokens`` and the same stop (``</answer>`` or EOS), after one warm-up call each. Tokens are
the generated ones (EOS / stop token included, padding excluded), counted the same way on both sides.

    .venv/bin/python benchmarks/eval_speed.py                      # 50 prompts, 128 new tokens, batch 32
    .venv/bin/python benchmarks/eval_speed.py --limit 20 --max_new_tokens 64 --threads 1
"""

from __future__ import annotations

import argparse
import time

from _prompts import load, run, test_prompts


def plain_loop(model, tokenizer, prompts, max_new_tokens: int, stop: str) -> tuple[list[str], int]:
    """The baseline: one prompt at a time, HF's own stop_strings, greedy."""
    import torch

    texts, tokens = [], 0
    for messages in prompts:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        input_ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            output = model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                stop_strings=[stop],
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = output[0, input_ids.shape[1] :]
        tokens += new.shape[0]
        decoded = tokenizer.decode(new, skip_special_tokens=True)
        texts.append(decoded[: decoded.find(stop) + len(stop)] if stop in decoded else decoded)
    return texts, tokens


def hf_batched(model, tokenizer, prompts, max_new_tokens: int, stop: str, batch_size: int) -> int:
    """HF ``generate`` on left-padded batches: every row runs until the batch's longest one ends."""
    import torch

    from r1lab.generation import prompt_token_ids

    ids = sorted(prompt_token_ids(tokenizer, prompts), key=len, reverse=True)
    tokens = 0
    for first in range(0, len(ids), batch_size):
        batch = ids[first : first + batch_size]
        width = max(len(row) for row in batch)
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(row)) + row for row in batch])
        attention = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in batch])
        with torch.inference_mode():
            output = model.generate(
                input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                stop_strings=[stop],
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in output[:, width:].tolist():
            kept = row
            if tokenizer.pad_token_id in row:  # pad after a finished row (pad is also EOS here: count it once)
                kept = row[: row.index(tokenizer.pad_token_id) + 1]
            tokens += len(kept)
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--dataset", default=None, help="GSM8K folder with test.jsonl")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    from r1lab.generation import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    _, _, prompts, template = test_prompts("gsm8k", args.limit, args.dataset)
    model, tokenizer = load(args.model)
    stop = template.stop_string
    print(
        f"model {args.model}, {len(prompts)} GSM8K test prompts, max_new_tokens {args.max_new_tokens}, stop {stop!r}, "
        f"batch {args.batch_size}, torch threads {torch.get_num_threads()}",
        flush=True,
    )

    # Warm-up: weights paged in, kernels picked, for both paths.
    generate(model, tokenizer, prompts[:2], max_new_tokens=8, batch_size=2, stop_strings=stop, progress=False)
    plain_loop(model, tokenizer, prompts[:1], 8, stop)

    started = time.perf_counter()
    batched = generate(
        model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, stop_strings=stop
    )
    batched_seconds = time.perf_counter() - started
    batched_tokens = sum(completions[0].tokens for completions in batched)

    started = time.perf_counter()
    hf_tokens = hf_batched(model, tokenizer, prompts, args.max_new_tokens, stop, args.batch_size)
    hf_seconds = time.perf_counter() - started

    started = time.perf_counter()
    plain_texts, plain_tokens = plain_loop(model, tokenizer, prompts, args.max_new_tokens, stop)
    plain_seconds = time.perf_counter() - started

    batched_rate, plain_rate = batched_tokens / batched_seconds, plain_tokens / plain_seconds
    same = sum(completions[0].text == text for completions, text in zip(batched, plain_texts))
    print(f"r1lab batched greedy : {batched_tokens:6d} tokens in {batched_seconds:7.1f} s = {batched_rate:6.1f} tok/s")
    print(f"HF generate, batched : {hf_tokens:6d} tokens in {hf_seconds:7.1f} s = {hf_tokens / hf_seconds:6.1f} tok/s")
    print(f"plain HF, one by one : {plain_tokens:6d} tokens in {plain_seconds:7.1f} s = {plain_rate:6.1f} tok/s")
    print(
        f"speed-up             : {batched_rate / plain_rate:.2f}x over one by one (goal >= 3x), "
        f"{batched_rate / (hf_tokens / hf_seconds):.2f}x over HF generate batched"
    )
    print(f"identical completions: {same}/{len(prompts)} (batched fp32 arithmetic may flip a near-tie)")


if __name__ == "__main__":
    run(main)
