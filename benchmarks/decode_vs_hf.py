"""Decoding speed, r1lab's loop against HF's batched ``generate``: same model, prompts, batch, precision and run.

For each precision (``fp32``: float32 weights; ``bf16``: the same weights cast to bfloat16 — r1lab's own loader
keeps float32 on a CPU without bf16 units, so the cast is done here) and each attention kernel, one model is loaded
and both sides decode the same left-padded batch of GSM8K test prompts (chat template, xml template) to EOS or
``--max_new_tokens``, ``--repeats`` times, alternating which side goes first. r1lab's side is ``decode_batch``, the
loop that eval, rejection sampling, distillation and GRPO's sampling decode through; HF's is ``model.generate`` on
the batch. Tokens are the real generated ones, each row's up to and including its EOS, counted the same way on
both sides (``generate`` pads a finished row until the batch's longest ends); the seconds are those of the whole
batch. Greedy by default; ``--sampled`` adds a sampled pass (temperature + top-p, no top-k on either side; the
two draw different random numbers). Greedy rows are compared token by token: in fp32 they should agree; in bf16
a row can part where the two paths round differently (another batch shape, another matrix-product kernel).
On a CPU without bf16 units r1lab's loop computes bf16 matrix products in float32 and rounds them to bf16
(``r1lab.generation.FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED``); ``--emulated_bf16_products`` leaves PyTorch's
emulation to both sides, which compares the loops alone.

    .venv/bin/python benchmarks/decode_vs_hf.py                          # embedded model, 8 prompts, 64 tokens, fp32 + bf16
    .venv/bin/python benchmarks/decode_vs_hf.py --limit 16 --max_new_tokens 96 --repeats 3
    .venv/bin/python benchmarks/decode_vs_hf.py --precisions bf16 --attention sdpa eager --repeats 3
    .venv/bin/python benchmarks/decode_vs_hf.py --model runs/quickstart/03-cold-start --sampled --json runs/bench/decode.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _prompts import run, test_prompts

PRECISIONS = ("fp32", "bf16")
ATTENTION = ("sdpa", "eager")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--dataset", default=None, help="GSM8K folder with test.jsonl (default ../shared/data/gsm8k)")
    parser.add_argument("--limit", type=int, default=8, help="prompts, all in one batch")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--attention", nargs="+", choices=ATTENTION, default=["sdpa"])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side and setting, alternating order")
    parser.add_argument("--sampled", action="store_true", help="also a sampled pass (--temperature, --top_p)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top_p", type=float, default=0.95)
    parser.add_argument(
        "--emulated_bf16_products",
        action="store_true",
        help="r1lab's loop keeps PyTorch's emulated bf16 matrix products on a CPU without bf16 units "
        "(r1lab.generation.FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED off), as before 2026-12-04",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a 2-core machine shared with other runs, torch's one thread "
        "per core stalled, the same run taking 21 to 171 s; 0: torch's choice)",
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser.parse_args()


def model_in(name: str, precision: str, attention: str):
    """(model in eval mode with ``attention``, tokenizer); bf16 is the float32 weights cast to bfloat16."""
    import torch

    from r1lab.models import load_model, load_tokenizer

    model = load_model(name, "float32", attn_implementation=attention).eval()
    return (model.to(torch.bfloat16) if precision == "bf16" else model), load_tokenizer(name)


def until_eos(row: list[int], eos_ids: set[int]) -> list[int]:
    """A row's generated ids up to and including its first EOS (all of them when it has none)."""
    end = next((position + 1 for position, token in enumerate(row) if token in eos_ids), len(row))
    return row[:end]


def r1lab_rows(model, tokenizer, ids, eos_ids, sampling: dict, max_new_tokens: int, seed: int) -> list[list[int]]:
    """r1lab's loop on the batch (EOS ends a row; no stop string, as on HF's side)."""
    import torch

    from r1lab.generation import StopStringWatcher, decode_batch

    generator = torch.Generator(device=model.device).manual_seed(seed)
    decoded = decode_batch(
        model,
        ids,
        tokenizer.pad_token_id,
        eos_ids,
        StopStringWatcher(tokenizer, []),
        max_new_tokens,
        sampling["temperature"],
        sampling["top_p"],
        generator,
    )
    return [until_eos(row, eos_ids) for row in decoded.tokens]


def hf_rows(model, tokenizer, ids, eos_ids, sampling: dict, max_new_tokens: int, seed: int) -> list[list[int]]:
    """HF ``generate`` on the same batch, left-padded; each row cut after its first EOS."""
    import torch

    width = max(len(row) for row in ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in ids], device=model.device)
    attention = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=model.device)
    if sampling["temperature"] > 0:
        torch.manual_seed(seed)
        how = {"do_sample": True, "temperature": sampling["temperature"], "top_p": sampling["top_p"], "top_k": 0}
    else:
        how = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    with torch.inference_mode():
        output = model.generate(
            input_ids,
            attention_mask=attention,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=sorted(eos_ids),
            **how,
        )
    return [until_eos(row, eos_ids) for row in output[:, width:].tolist()]


SIDES = {"r1lab": r1lab_rows, "hf": hf_rows}


def timed_run(side: str, *arguments) -> tuple[list[list[int]], float]:
    started = time.perf_counter()
    rows = SIDES[side](*arguments)
    return rows, time.perf_counter() - started


def compare(model, tokenizer, ids, eos_ids, sampling: dict, max_new_tokens: int, repeats: int) -> dict:
    """Both sides ``repeats`` times, alternating which goes first, after one short warm-up each."""
    for side in SIDES:
        SIDES[side](model, tokenizer, ids[:2], eos_ids, sampling, 4, 0)
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    tokens: dict[str, list[int]] = {side: [] for side in SIDES}
    rows: dict[str, list[list[int]]] = {}
    for repeat in range(repeats):
        order = list(SIDES) if repeat % 2 == 0 else list(reversed(SIDES))
        for side in order:
            rows[side], elapsed = timed_run(side, model, tokenizer, ids, eos_ids, sampling, max_new_tokens, repeat)
            seconds[side].append(elapsed)
            tokens[side].append(sum(len(row) for row in rows[side]))
            print(
                f"    {side:5s} run {repeat + 1}: {tokens[side][-1]:5d} tokens in {elapsed:7.1f} s = "
                f"{tokens[side][-1] / elapsed:6.1f} tok/s",
                flush=True,
            )
    return summary(seconds, tokens, rows)


def summary(seconds: dict, tokens: dict, rows: dict) -> dict:
    """Medians per side, the r1lab/HF ratios, and how many rows came out the same (meaningful when greedy)."""
    result = {}
    for side in SIDES:
        rates = [count / elapsed for count, elapsed in zip(tokens[side], seconds[side])]
        result[side] = {
            "seconds": seconds[side],
            "tokens": tokens[side],
            "median_seconds": statistics.median(seconds[side]),
            "median_tok_s": statistics.median(rates),
        }
    result["tok_s_ratio"] = result["r1lab"]["median_tok_s"] / result["hf"]["median_tok_s"]
    result["wall_ratio"] = result["hf"]["median_seconds"] / result["r1lab"]["median_seconds"]
    result["same_rows"] = sum(mine == theirs for mine, theirs in zip(rows["r1lab"], rows["hf"]))
    result["rows"] = len(rows["r1lab"])
    return result


def report_line(label: str, result: dict, greedy: bool) -> str:
    mine, theirs = result["r1lab"], result["hf"]
    agreement = f", greedy rows identical {result['same_rows']}/{result['rows']}" if greedy else ""
    return (
        f"{label:28s} r1lab {mine['median_tok_s']:6.1f} tok/s ({mine['median_seconds']:6.1f} s)  "
        f"HF {theirs['median_tok_s']:6.1f} tok/s ({theirs['median_seconds']:6.1f} s)  "
        f"r1lab/HF tok/s {result['tok_s_ratio']:.2f}x, wall {result['wall_ratio']:.2f}x{agreement}"
    )


def header(args, ids) -> str:
    import torch

    try:
        from r1lab.hardware import cpu_kind

        machine = cpu_kind().describe()
    except Exception:  # the CPU's description is a courtesy, never a reason to fail
        machine = "CPU kind unknown"
    products = "emulated (PyTorch's)" if args.emulated_bf16_products else "float32 where the CPU emulates bf16"
    lengths = f"{min(map(len, ids))}-{max(map(len, ids))}"
    return (
        f"model {args.model}: {len(ids)} GSM8K test prompts in one batch ({lengths} "
        f"tokens), max_new_tokens {args.max_new_tokens}, {args.repeats} alternating runs per side; r1lab's bf16 "
        f"products: {products}; torch {torch.__version__}, {torch.get_num_threads()} threads; {machine}"
    )


def main() -> None:
    args = parse_arguments()
    if args.repeats < 1 or args.max_new_tokens < 1:
        raise SystemExit("--repeats and --max_new_tokens must be at least 1")
    import torch

    from r1lab import generation
    from r1lab.generation import _eos_ids, prompt_token_ids

    generation.FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED = not args.emulated_bf16_products
    if args.threads:
        torch.set_num_threads(args.threads)
    _, _, prompts, _ = test_prompts("gsm8k", args.limit, args.dataset)
    passes = {"greedy": {"temperature": 0.0, "top_p": 1.0}}
    if args.sampled:
        passes[f"T {args.temperature} top-p {args.top_p}"] = {"temperature": args.temperature, "top_p": args.top_p}
    results, lines, printed_header = [], [], False
    for precision in args.precisions:
        for attention in args.attention:
            model, tokenizer = model_in(args.model, precision, attention)
            ids = prompt_token_ids(tokenizer, prompts)
            if not printed_header:
                print(header(args, ids), flush=True)
                printed_header = True
            eos_ids = _eos_ids(model, tokenizer)
            for name, sampling in passes.items():
                label = f"{precision} {attention} {name}"
                print(f"  {label}", flush=True)
                result = compare(model, tokenizer, ids, eos_ids, sampling, args.max_new_tokens, args.repeats)
                results.append({"precision": precision, "attention": attention, "pass": name, **result})
                lines.append(report_line(label, result, greedy=sampling["temperature"] == 0))
            del model
    print("\n".join(["", "medians:", *lines]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"arguments": vars(args), "results": results}, handle, indent=1)


if __name__ == "__main__":
    run(main)
