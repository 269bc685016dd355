"""Batched sampling shared by evaluation, rejection sampling and distillation.

``generate(model, tokenizer, prompts, n=...)`` returns, for each prompt (a list of chat messages), ``n``
:class:`Completion` objects. Two backends behind one call:

- **HF** (``model`` is a ``torch.nn.Module``): ``model.generate`` in batches with left padding and the KV
  cache; prompts are sorted by length so a batch holds prompts of similar length; each row stops on its own
  at EOS or at a stop string (:class:`StopOnStrings` marks finished rows). Sampling is seeded per batch:
  the same prompts, settings and seed give the same completions.
- **vLLM** (``model`` is a ``vllm.LLM``, see :func:`load_generation_model`): one ``LLM.generate`` call with
  ``SamplingParams(n=..., stop=[...], seed=...)``, converted to the same return structure.

``temperature == 0`` means greedy decoding; ``n`` greedy completions of a prompt are one completion copied.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from r1lab.errors import UserError

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


def vllm_available() -> bool:
    """vLLM is used when it is installed and a GPU is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def is_hf_model(model) -> bool:
    import torch

    return isinstance(model, torch.nn.Module)


def load_generation_model(name: str, dtype_name: str = "auto", trust_remote_code: bool = False, seed: int = 0, backend: str = "auto"):
    """A model for :func:`generate`: a ``vllm.LLM`` when vLLM and a GPU are there (``backend='auto'``), else HF.

    ``dtype_name='auto'`` is bfloat16 on a GPU and float32 on the CPU.
    """
    from r1lab.models import load_model, resolve_model, torch_dtype

    if backend not in ("auto", "hf", "vllm"):
        raise UserError(f"unknown generation backend {backend!r}; choose auto, hf or vllm")
    resolved = resolve_model(name)
    torch_dtype(dtype_name)  # validates the name
    if backend == "vllm" or (backend == "auto" and vllm_available()):
        from vllm import LLM

        return LLM(model=resolved, dtype=dtype_name, seed=seed, trust_remote_code=trust_remote_code)
    import torch

    model = load_model(name, dtype_name, bf16=True, trust_remote_code=trust_remote_code)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval()


def prompt_token_ids(tokenizer, prompts: Sequence[Messages]) -> list[list[int]]:
    """Token ids of each chat, rendered with the tokenizer's chat template and the generation prompt."""
    rendered = [tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) for messages in prompts]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in rendered]


def generate(
    model,
    tokenizer,
    prompts: Sequence[Messages],
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
    """``n`` completions for each prompt, in prompt order (see the module docstring)."""
    check_settings(n, temperature, top_p, max_new_tokens, batch_size)
    stops = clean_stop_strings(stop_strings)
    ids = prompt_token_ids(tokenizer, prompts)
    if not ids:
        return []
    settings = dict(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed, stops=stops)
    if not is_hf_model(model):
        return _generate_vllm(model, ids, n=n, progress=progress, **settings)
    if temperature == 0 and n > 1:
        once = _generate_hf(model, tokenizer, ids, 1, batch_size, progress, description, **settings)
        return [completions * n for completions in once]
    return _generate_hf(model, tokenizer, ids, n, batch_size, progress, description, **settings)


class StopOnStrings:
    """A stopping criterion that marks each row finished once its generated text contains a stop string.

    Only the last few generated tokens are decoded at each step. ``finished_at[row]`` is the number of
    generated tokens when the row finished (None while it runs or when it ends at EOS instead).
    """

    def __init__(self, tokenizer, stop_strings: Sequence[str], prompt_length: int, batch_size: int):
        self.tokenizer = tokenizer
        self.stop_strings = list(stop_strings)
        self.prompt_length = prompt_length
        # Every token decodes to at least one byte, so this many tokens hold any stop string.
        self.window = max(len(stop.encode("utf-8")) for stop in self.stop_strings) + 2
        self.finished_at: list[int | None] = [None] * batch_size
        self.done = None

    def __call__(self, input_ids, scores=None, **kwargs):
        import torch

        if self.done is None:
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        generated = input_ids.shape[1] - self.prompt_length
        if generated > 0:
            start = max(self.prompt_length, input_ids.shape[1] - self.window)
            running = [row for row in range(input_ids.shape[0]) if self.finished_at[row] is None]
            tails = self.tokenizer.batch_decode(input_ids[running, start:].tolist()) if running else []
            for row, tail in zip(running, tails):
                if any(stop in tail for stop in self.stop_strings):
                    self.finished_at[row] = generated
                    self.done[row] = True
        return self.done.clone()


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


def _generate_hf(model, tokenizer, ids, n, batch_size, progress, description, *, temperature, top_p, max_new_tokens, seed, stops):
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, StoppingCriteriaList

    eos_ids = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    sampling = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        pad_token_id=pad_id,
        eos_token_id=sorted(eos_ids) or None,
        use_cache=True,
    )
    if sampling:  # R1's sampling is temperature + top-p only: no top-k
        config.update(temperature=temperature, top_p=top_p, top_k=0)
    # (prompt, sample) pairs, longest prompts first: similar lengths share a batch, and memory peaks early.
    jobs = sorted(((prompt, sample) for prompt in range(len(ids)) for sample in range(n)), key=lambda job: -len(ids[job[0]]))
    results: list[list[Completion | None]] = [[None] * n for _ in ids]
    generated_tokens = 0
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(jobs), desc=description, unit="seq", disable=not progress, dynamic_ncols=True)
    try:
        for batch_number, first in enumerate(range(0, len(jobs), batch_size)):
            batch = jobs[first : first + batch_size]
            input_ids, attention = _left_padded([ids[prompt] for prompt, _ in batch], pad_id, model.device)
            criteria = StoppingCriteriaList()
            stopper = None
            if stops:
                stopper = StopOnStrings(tokenizer, stops, input_ids.shape[1], len(batch))
                criteria.append(stopper)
            torch.manual_seed(seed + batch_number)
            with torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids, attention_mask=attention, generation_config=config, stopping_criteria=criteria
                )
            new_tokens = output[:, input_ids.shape[1] :].tolist()
            for row, (prompt, sample) in enumerate(batch):
                stopped_at = stopper.finished_at[row] if stopper else None
                completion = finish_row(new_tokens[row], eos_ids, stopped_at, tokenizer, stops)
                results[prompt][sample] = completion
                generated_tokens += completion.tokens
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{generated_tokens / max(time.perf_counter() - started, 1e-9):.1f}")
    finally:
        bar.close()
        model.train(was_training)
    return results  # type: ignore[return-value]


def _generate_vllm(llm, ids, *, n, progress, temperature, top_p, max_new_tokens, seed, stops):
    from vllm import SamplingParams

    params = SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p if temperature > 0 else 1.0,
        max_tokens=max_new_tokens,
        stop=stops or None,
        include_stop_str_in_output=True,
        seed=seed,
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
