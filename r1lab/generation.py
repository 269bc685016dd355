"""Batched sampling shared by evaluation, rejection sampling and distillation.

``generate(model, tokenizer, prompts, n=...)`` returns, for each prompt (a list of chat messages), ``n``
:class:`Completion` objects. Two backends behind one call:

- **HF** (``model`` is a ``torch.nn.Module``): r1lab's own decoding loop over the model's forward with the
  KV cache, in batches with left padding; prompts are sorted by length so a batch holds prompts of
  similar length; the tokens all of a batch's prompts begin with (a system prompt) are read once, not row by row.
  Each row stops on its own at EOS or at a stop string, and finished rows leave the batch
  (their KV cache rows are dropped), so a batch does not keep computing padding until its longest row ends
  as ``model.generate`` does. Sampling is temperature + top-p from a generator seeded per batch: the same
  prompts, settings and seed give the same completions. On a CPU it decodes in the weights' own precision
  (:func:`weights_precision`: no autocast), and where the CPU emulates bf16 (AVX2 only) bf16 weights' matrix
  products run in float32, rounded to bf16 (:func:`float32_products`).
- **vLLM** (``model`` is a ``vllm.LLM``, see :func:`load_generation_model`): one ``LLM.generate`` call with
  ``SamplingParams(n=..., stop=[...], seed=...)``, converted to the same return structure.

``temperature == 0`` means greedy decoding; ``n`` greedy completions of a prompt are one completion copied.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from r1lab.errors import UserError
from r1lab.kv_cache import cache_keyword, forward_accepts, reserve_cache
from r1lab.models import cpu_has_bf16, load_model, loadable, resolve_model, torch_dtype
from r1lab.vllm_support import check_backend, engine_kwargs, request_seed, uses_vllm

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str  # decoded without special tokens, cut right after the first stop string
    tokens: int  # generated tokens, the EOS or the token that completed the stop string included
    truncated: bool  # hit max_new_tokens without EOS or a stop string

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_stop_strings(stop_strings: str | Sequence[str] | None) -> list[str]:
    if not stop_strings:
        return []
    if isinstance(stop_strings, str):
        stop_strings = [stop_strings]
    return [stop for stop in stop_strings if stop]


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to and including the earliest stop string, and whether one was found."""
    cut = None
    for stop in stop_strings:
        position = text.find(stop)
        if position >= 0 and (cut is None or position + len(stop) < cut):
            cut = position + len(stop)
    return (text, False) if cut is None else (text[:cut], True)


def check_settings(n: int, temperature: float, top_p: float, max_new_tokens: int, batch_size: int) -> None:
    if n < 1:
        raise UserError(f"number of samples must be at least 1, got {n}")
    if temperature < 0:
        raise UserError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise UserError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise UserError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")


def is_hf_model(model) -> bool:
    import torch

    return isinstance(model, torch.nn.Module)


def load_generation_model(
    name: str, dtype_name: str = "auto", trust_remote_code: bool = False, seed: int = 0, backend: str = "auto"
):
    """A model for :func:`generate`: a ``vllm.LLM`` when the backend is vLLM (``vllm``, or ``auto`` where
    :func:`r1lab.vllm_support.uses_vllm` says so), else the HF model (on the GPU when there is one).

    ``dtype_name='auto'`` is bfloat16 on a GPU and float32 on the CPU, for both backends.
    """
    check_backend(backend)
    resolved = resolve_model(name)
    torch_dtype(dtype_name)  # validates the name
    if uses_vllm(backend):
        from vllm import LLM

        return LLM(
            model=loadable(resolved), seed=seed, trust_remote_code=trust_remote_code, **engine_kwargs(dtype_name)
        )
    import torch

    model = load_model(name, dtype_name, bf16=True, trust_remote_code=trust_remote_code)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval()


def prompt_token_ids(tokenizer, prompts: Sequence[Messages]) -> list[list[int]]:
    """Token ids of each chat, rendered with the tokenizer's chat template and the generation prompt."""
    rendered = [
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) for messages in prompts
    ]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in rendered]


def generate(model, tokenizer, prompts: Sequence[Messages], *settings, **named) -> list[list[Completion]]:
    """``n`` completions for each chat prompt, in prompt order (see the module docstring); the settings are
    :func:`generate_from_ids`'s (n, temperature, top_p, max_new_tokens, batch_size, seed, stop_strings, progress,
    description)."""
    return generate_from_ids(model, tokenizer, prompt_token_ids(tokenizer, prompts), *settings, **named)


def generate_from_ids(
    model,
    tokenizer,
    ids: Sequence[Sequence[int]],
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
    stop_strings: str | Sequence[str] | None = None,
    progress: bool = True,
    description: str = "generating",
) -> list[list[Completion]]:
    """``n`` completions for each prompt given as token ids (:func:`generate` renders chats into them; a judge's
    filled-in prompt comes tokenized), in prompt order."""
    check_settings(n, temperature, top_p, max_new_tokens, batch_size)
    stops = clean_stop_strings(stop_strings)
    ids = [list(row) for row in ids]
    if not ids:
        return []
    if temperature == 0 and n > 1:
        once = generate_from_ids(
            model, tokenizer, ids, 1, temperature, top_p, max_new_tokens, batch_size, seed, stops, progress, description
        )
        return repeat_completions(once, n)
    settings = {
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "stops": stops,
    }
    if not is_hf_model(model):
        return _generate_vllm(model, ids, n=n, progress=progress, **settings)
    return _generate_hf(model, tokenizer, ids, n, batch_size, progress, description, **settings)


def repeat_completions(outputs: list[list[Completion]], n: int) -> list[list[Completion]]:
    """Each prompt's one greedy completion as its ``n`` completions: greedy decoding is deterministic, so ``n``
    greedy completions are one generated once (the shortcut every greedy pass takes)."""
    return [completions[:1] * n for completions in outputs]


class StopStringWatcher:
    """Tells when a row's generated tokens first contain a stop string, decoding only their last few
    tokens (every token decodes to at least one byte, so ``window`` tokens hold any stop string)."""

    def __init__(self, tokenizer, stop_strings: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop_strings = list(stop_strings)
        self.window = max(len(stop.encode("utf-8")) for stop in self.stop_strings) + 2 if self.stop_strings else 0

    def stopped(self, rows: list[list[int]]) -> list[bool]:
        """For each row of generated ids: does its tail hold a stop string?"""
        if not self.stop_strings or not rows:
            return [False] * len(rows)
        tails = self.tokenizer.batch_decode([row[-self.window :] for row in rows])
        return [any(stop in tail for stop in self.stop_strings) for tail in tails]


def _eos_ids(model, tokenizer) -> set[int]:
    found = getattr(model.generation_config, "eos_token_id", None)
    found = found if isinstance(found, (list, tuple)) else [found]
    ids = {token for token in found if token is not None}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def finish_row(
    new_tokens: list[int], eos_ids: set[int], stopped_at: int | None, tokenizer, stops: Sequence[str]
) -> Completion:
    """A completion from one row's generated ids (padding after the end included)."""
    end = None
    for position, token in enumerate(new_tokens):
        if token in eos_ids:
            end = position + 1
            break
    if stopped_at is not None and (end is None or stopped_at < end):
        end = stopped_at
    finished = end is not None
    kept = new_tokens[:end] if finished else new_tokens
    text, _ = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), stops)
    return Completion(text=text, tokens=len(kept), truncated=not finished)


def _left_padded(batch_ids: list[list[int]], pad_id: int, device):
    import torch

    width = max(len(ids) for ids in batch_ids)
    input_ids = torch.full((len(batch_ids), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for row, ids in enumerate(batch_ids):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    return input_ids.to(device), attention.to(device)


# Top-p looks for the nucleus among this many most likely tokens first; a row whose nucleus is wider (a flat
# distribution) is sorted in full. Sorting a whole vocabulary per row cost more than the model's step.
NUCLEUS_CANDIDATES = 64


def draw_from_weights(weights, uniforms):
    """Index of one entry per row of non-negative ``weights``, drawn in proportion to them by inverting their
    cumulative sum at ``uniforms`` (one number in [0, 1) per row). Exact, and far cheaper than
    ``torch.multinomial`` over a whole vocabulary; an entry of weight 0 is never drawn. Unlike multinomial's
    exponential race, a draw can move to a neighbouring entry when the weights change by float rounding, most
    often over a nearly flat distribution (a randomly initialised model's)."""
    import torch

    cumulative = weights.cumsum(dim=-1)
    targets = uniforms[:, None] * cumulative[:, -1:]
    return torch.searchsorted(cumulative, targets, right=True).squeeze(-1).clamp(max=weights.shape[-1] - 1)


def nucleus(sorted_probabilities, top_p: float):
    """``sorted_probabilities`` (descending) with every token outside the nucleus set to 0: R1's top-p keeps the
    smallest set of most likely tokens whose probability reaches ``top_p``."""
    mass_before = sorted_probabilities.cumsum(dim=-1) - sorted_probabilities
    return sorted_probabilities.masked_fill(mass_before >= top_p, 0)


def sample_next(logits, temperature: float, top_p: float, generator):
    """Next token ids from last-position logits: argmax when ``temperature == 0``, else temperature +
    top-p (:func:`nucleus`; no top-k, as R1 samples), one uniform draw per row from ``generator``."""
    import torch

    if temperature <= 0:
        return logits.float().argmax(dim=-1)  # the same index; bf16 logits are compared faster in float32
    probabilities = torch.softmax(logits.float() / temperature, dim=-1)
    uniforms = torch.rand(probabilities.shape[0], generator=generator, device=probabilities.device)
    if top_p >= 1:
        return draw_from_weights(probabilities, uniforms)
    candidates = min(NUCLEUS_CANDIDATES, probabilities.shape[-1])
    top, order = probabilities.topk(candidates, dim=-1)
    chosen = order.gather(-1, draw_from_weights(nucleus(top, top_p), uniforms)[:, None]).squeeze(-1)
    wide = (top.sum(dim=-1) < top_p).nonzero().squeeze(-1)  # the nucleus reaches past the candidates
    if len(wide):
        ranked, full_order = probabilities[wide].sort(dim=-1, descending=True)
        picked = draw_from_weights(nucleus(ranked, top_p), uniforms[wide])
        chosen[wide] = full_order.gather(-1, picked[:, None]).squeeze(-1)
    return chosen


# Prompts that begin alike (a system prompt, a template's instructions) have that prefix read once when at least
# this many tokens are common to all of a batch's prompts: only the rest of each prompt is read row by row.
SHARED_PREFIX_MIN_TOKENS = 8


def shared_prefix_length(prompts_ids: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``prompts_ids`` share, leaving each prompt at least one token of its own (the
    last prompt position gives the first new token's logits); 0 for a single prompt or below
    :data:`SHARED_PREFIX_MIN_TOKENS`."""
    if len(prompts_ids) < 2:
        return 0
    length = min(len(ids) for ids in prompts_ids) - 1
    first = prompts_ids[0]
    for ids in prompts_ids[1:]:
        length = next((position for position in range(length) if ids[position] != first[position]), length)
    return length if length >= SHARED_PREFIX_MIN_TOKENS else 0


def _read_prompts(model, prompts_ids, pad_id, cache_name: str, extra: dict):
    """The prompts' forward pass: (each prompt's last logits, the filled KV cache, attention mask, position ids of the
    last forward's inputs). Prompts are left-padded; their :func:`shared_prefix_length` tokens are read once and that
    part of the cache copied to every row, then the rest of each prompt, left-padded after the prefix."""
    import torch

    device = model.device
    prefix = shared_prefix_length(prompts_ids)
    if not prefix:
        input_ids, attention = _left_padded(prompts_ids, pad_id, device)
        positions = (attention.cumsum(dim=-1) - 1).clamp(min=0)
        output = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True, **extra)
        return output.logits[:, -1, :], _filled_cache(output), attention, positions
    head = torch.tensor([prompts_ids[0][:prefix]], dtype=torch.long, device=device)
    cache = _filled_cache(model(input_ids=head, use_cache=True, **extra))
    cache.reorder_cache(torch.zeros(len(prompts_ids), dtype=torch.long, device=device))
    input_ids, rest = _left_padded([ids[prefix:] for ids in prompts_ids], pad_id, device)
    attention = torch.cat([rest.new_ones((len(prompts_ids), prefix)), rest], dim=1)
    positions = (prefix + rest.cumsum(dim=-1) - 1).clamp(min=prefix)
    output = model(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **{cache_name: cache},
        **extra,
    )
    return output.logits[:, -1, :], cache, attention, positions


def _filled_cache(output):
    """The KV cache a forward with ``use_cache=True`` returned (``cache`` in newer transformers)."""
    return getattr(output, "cache", None) or getattr(output, "past_key_values", None)


@contextmanager
def weights_precision(model):
    """On a CPU, decode in the weights' own precision: no autocast, neither a surrounding one nor the one accelerate
    wraps a mixed-precision model's ``forward`` in (a GRPO policy trained with ``bf16``: TRL hands the sampler that
    wrapped model). bf16 autocast over float32 weights decoded slower than float32 on both CPU kinds (16.1 s against
    13.1 s on an AMX CPU; emulated bf16 on an AVX2 one, see benchmarks/README.md). On a GPU nothing changes."""
    import torch

    if model.device.type != "cpu":
        yield
        return
    wrapped, original = model.__dict__.get("forward"), model.__dict__.get("_original_forward")
    unwrap = wrapped is not None and original is not None
    if unwrap:
        model.forward = original
    try:
        with torch.autocast("cpu", enabled=False):
            yield
    finally:
        if unwrap:
            model.forward = wrapped


# On a CPU without bf16 units (AVX2 only) PyTorch emulates bf16 matrix products at a fifth of its float32 speed or less:
# they were 96 % of a bf16 decoding step of the embedded model there (torch profiler, benchmarks/README.md). r1lab's
# loop computes them as float32 products of the bf16 operands rounded to bf16 once: what the emulation computes (it
# accumulates in float32 too) in another summation order, so about one output in 10 000 moves by one bf16 unit.
FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED = True
# A weight with more elements than this goes to float32 a tile of rows at a time, each tile used while it is in cache:
# the embedded model's LM head (49 152 x 576) took 27 ms for 16 rows in tiles of 2^20 elements, 35 ms in 2^21, 128 ms
# converted whole, 106 ms emulated (one thread). Its layers' weights (at most 576 x 1536) go whole.
FLOAT32_TILE_ELEMENTS = 1 << 20


def emulates_bf16(model) -> bool:
    """Whether ``model`` has bf16 weights on a CPU that has no bf16 units (where PyTorch emulates bf16)."""
    import torch

    if model.device.type != "cpu" or not any(parameter.dtype == torch.bfloat16 for parameter in model.parameters()):
        return False
    return not cpu_has_bf16()


def float32_products(model):
    """A context in which ``model``'s bf16 matrix products run as float32 ones where its CPU emulates bf16 (see
    :data:`FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED`); elsewhere a context that does nothing."""
    if FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED and emulates_bf16(model):
        return _float32_products_mode()()
    return nullcontext()


def float32_linear(input, weight, bias=None):
    """``torch.nn.functional.linear`` of bf16 tensors computed in float32 and rounded to bf16 once; a weight of more
    than :data:`FLOAT32_TILE_ELEMENTS` is converted a tile of rows at a time."""
    import torch

    linear, inputs = torch.nn.functional.linear, input.float()
    rows = max(1, FLOAT32_TILE_ELEMENTS // weight.shape[-1])
    if weight.shape[0] <= rows:
        return linear(inputs, weight.float(), None if bias is None else bias.float()).to(input.dtype)
    output = input.new_empty((*input.shape[:-1], weight.shape[0]))
    for first in range(0, weight.shape[0], rows):
        tile_bias = None if bias is None else bias[first : first + rows].float()
        output[..., first : first + rows] = linear(inputs, weight[first : first + rows].float(), tile_bias)
    return output


@cache
def _float32_products_mode():
    """The torch function mode behind :func:`float32_products`, built on first use (importing torch only then)."""
    import torch
    from torch.overrides import TorchFunctionMode

    matmuls = {torch.matmul, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.bmm}

    def bf16_on_cpu(tensor) -> bool:
        return isinstance(tensor, torch.Tensor) and tensor.dtype == torch.bfloat16 and tensor.device.type == "cpu"

    class Float32Products(TorchFunctionMode):
        """bf16 ``linear`` and ``matmul``/``bmm`` on the CPU as float32 products rounded to bf16."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.nn.functional.linear and len(args) >= 2 and set(kwargs) <= {"bias"}:
                bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
                if bf16_on_cpu(args[0]) and bf16_on_cpu(args[1]) and (bias is None or bf16_on_cpu(bias)):
                    return float32_linear(args[0], args[1], bias)
            elif func in matmuls and len(args) == 2 and not kwargs and all(map(bf16_on_cpu, args)):
                return func(args[0].float(), args[1].float()).to(torch.bfloat16)
            return func(*args, **kwargs)

    return Float32Products


# Drop finished rows from the batch (and their KV cache) once this share of it has finished: copying the
# cache costs about one decoding step, so compacting on every single finished row would not pay.
COMPACT_WHEN_FINISHED = 0.25


@dataclass
class DecodedBatch:
    """What :func:`decode_batch` generated, one entry per row."""

    tokens: list[list[int]]  # new token ids (an EOS that ended the row included)
    stopped_at: list[int | None]  # token count when a stop string ended the row (``close_with`` unset), else None
    logps: list[list[float]] | None  # each token's log-probability, with ``record_logps``
    closed: list[bool]  # the row's last token is ``close_with``, given rather than sampled


def decode_batch(
    model,
    prompts_ids,
    pad_id,
    eos_ids,
    watcher,
    max_new_tokens,
    temperature,
    top_p,
    generator,
    row_prompts=None,
    *,
    close_with: int | None = None,
    record_logps: bool = False,
) -> DecodedBatch:
    """r1lab's decoding loop, shared by eval, rejection sampling and distillation (:func:`generate`) and GRPO's sampling.

    ``prompts_ids`` are distinct prompts (token ids); row ``i`` continues prompt ``row_prompts[i]`` (default: one row
    per prompt). Each prompt is read once and its KV cache copied to its rows, so k samples of a question cost one
    prompt pass, not k; the tokens all the prompts begin with are read once for the batch (:func:`_read_prompts`).
    A row ends at an EOS token (kept) or at a stop string: without ``close_with`` it ends as soon as its text holds one (``stopped_at`` = its token count then); with ``close_with`` (an EOS id) it gets that token
    as its next one and ends, as a model that stops there would have written it (GRPO's ``stop_at_answer``). Rows
    that ended are dropped from the batch and the KV cache in groups. With ``record_logps`` each token's
    log-probability is ``log_softmax(logits / temperature)`` at that token, what TRL's loss computes (top-p shapes
    the sampling only). A row cut at ``max_new_tokens`` has no EOS. On a CPU it decodes without autocast
    (:func:`weights_precision`), bf16 weights' products in float32 where the CPU emulates bf16
    (:func:`float32_products`).
    """
    import torch

    device = model.device
    row_prompts = list(range(len(prompts_ids))) if row_prompts is None else list(row_prompts)
    cache_name = cache_keyword(model)
    extra = {"logits_to_keep": 1} if forward_accepts(model, "logits_to_keep") else {}
    tokens: list[list[int]] = [[] for _ in row_prompts]
    logps: list[list[float]] | None = [[] for _ in row_prompts] if record_logps else None
    stopped_at: list[int | None] = [None] * len(row_prompts)
    ended, closing, closed = [False] * len(row_prompts), [False] * len(row_prompts), [False] * len(row_prompts)
    with torch.inference_mode(), weights_precision(model), float32_products(model):
        logits, cache, attention, positions = _read_prompts(model, prompts_ids, pad_id, cache_name, extra)
        if row_prompts != list(range(len(prompts_ids))):
            expand = torch.tensor(row_prompts, device=device)
            cache.reorder_cache(expand)
            logits, attention, positions = logits[expand], attention[expand], positions[expand]
        reserve_cache(cache, max_new_tokens)
        rows = list(range(len(row_prompts)))  # batch position -> row
        last_position = positions[:, -1]
        for step in range(max_new_tokens):
            chosen = sample_next(logits, temperature, top_p, generator)
            forced = [position for position, row in enumerate(rows) if closing[row]]
            if forced:
                chosen[forced] = close_with
                for position in forced:
                    closed[rows[position]] = True
            chosen_logps = None
            if logps is not None:
                scaled = logits.float() / temperature if temperature > 0 else logits.float()
                chosen_logps = torch.log_softmax(scaled, dim=-1).gather(-1, chosen[:, None]).squeeze(-1).tolist()
            running = []
            for position, (row, token) in enumerate(zip(rows, chosen.tolist())):
                if ended[row]:
                    continue
                tokens[row].append(token)
                if logps is not None and chosen_logps is not None:  # both or neither
                    logps[row].append(chosen_logps[position])
                if token in eos_ids:
                    ended[row] = True
                else:
                    running.append(position)
            for position, hit in zip(running, watcher.stopped([tokens[rows[p]] for p in running])):
                row = rows[position]
                if hit and close_with is not None:
                    closing[row] = True
                elif hit:
                    ended[row], stopped_at[row] = True, len(tokens[row])
            alive = [position for position in running if not ended[rows[position]]]
            if not alive or step == max_new_tokens - 1:
                break
            if len(rows) - len(alive) >= COMPACT_WHEN_FINISHED * len(rows):
                keep = torch.tensor(alive, device=device)
                cache.reorder_cache(keep)
                attention, last_position, chosen = attention[keep], last_position[keep], chosen[keep]
                rows = [rows[position] for position in alive]
            attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
            last_position = last_position + 1
            output = model(
                input_ids=chosen[:, None],
                attention_mask=attention,
                position_ids=last_position[:, None],
                use_cache=True,
                **{cache_name: cache},
            )
            logits = output.logits[:, -1, :]
    return DecodedBatch(tokens, stopped_at, logps, closed)


def _generate_hf(
    model, tokenizer, ids, n, batch_size, progress, description, *, temperature, top_p, max_new_tokens, seed, stops
):
    import torch
    from tqdm.auto import tqdm

    eos_ids = _eos_ids(model, tokenizer)
    watcher = StopStringWatcher(tokenizer, stops)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    # (prompt, sample) pairs, longest prompts first: similar lengths share a batch, and memory peaks early;
    # a prompt's samples stay together, so that a batch reads each of its prompts once.
    jobs = sorted(
        ((prompt, sample) for prompt in range(len(ids)) for sample in range(n)),
        key=lambda job: (-len(ids[job[0]]), job[0]),
    )
    results: list[list[Completion | None]] = [[None] * n for _ in ids]
    generated_tokens = 0
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(jobs), desc=description, unit="seq", disable=not progress, dynamic_ncols=True)
    try:
        for batch_number, first in enumerate(range(0, len(jobs), batch_size)):
            batch = jobs[first : first + batch_size]
            generator = torch.Generator(device=model.device).manual_seed(seed + batch_number)
            distinct = list(dict.fromkeys(prompt for prompt, _ in batch))
            row_prompts = [distinct.index(prompt) for prompt, _ in batch]
            decoded = decode_batch(
                model,
                [ids[prompt] for prompt in distinct],
                pad_id,
                eos_ids,
                watcher,
                max_new_tokens,
                temperature,
                top_p,
                generator,
                row_prompts,
            )
            for row, (prompt, sample) in enumerate(batch):
                completion = finish_row(decoded.tokens[row], eos_ids, decoded.stopped_at[row], tokenizer, stops)
                results[prompt][sample] = completion
                generated_tokens += completion.tokens
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{generated_tokens / max(time.perf_counter() - started, 1e-9):.1f}")
    finally:
        bar.close()
        model.train(was_training)
    return results  # every slot filled


def _generate_vllm(llm, ids, *, n, progress, temperature, top_p, max_new_tokens, seed, stops):
    from vllm import SamplingParams

    params = SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p if temperature > 0 else 1.0,
        max_tokens=max_new_tokens,
        stop=stops or None,
        include_stop_str_in_output=True,
        seed=request_seed(seed),
    )
    # Token ids, not text: the chat template already holds any BOS, and vLLM would add another.
    outputs = llm.generate([{"prompt_token_ids": prompt} for prompt in ids], params, use_tqdm=progress)
    results = []
    for output in outputs:
        samples = sorted(output.outputs, key=lambda sample: getattr(sample, "index", 0))
        results.append(
            [
                Completion(
                    text=cut_at_stop(sample.text, stops)[0],
                    tokens=len(sample.token_ids),
                    truncated=sample.finish_reason == "length",
                )
                for sample in samples
            ]
        )
    return results
