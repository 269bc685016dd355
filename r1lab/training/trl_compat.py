"""Every private piece of TRL that r1lab touches, in one place, each with the TRL source it was written against.

TRL has no public hook for sampling, for the policy's log-probabilities or for the loss, so r1lab overrides private
methods of TRL's GRPOTrainer and reads a few of its private attributes. They are all here: :class:`GRPOHooks`
forwards each overridden private method to a hook under r1lab's own name (TRL's code behind ``trl_<hook>``) and
exposes the private attributes under public names; the functions below wrap the rest (TRL's chunked log-prob kernel
and fused LM head, its vLLM backend, the logged generation batch, SFTTrainer's token count, the benchmark's probe).
:data:`PRIVATE` lists each name with what r1lab expects of it and why; ``tests/unit/test_trl_compat.py`` checks each
at the installed TRL (pinned to :data:`TRL_VERSION` in ``pyproject.toml``) and fails if any other r1lab module names
a private TRL attribute; docs/grpo.md's table is :func:`markdown_table` (``python -m r1lab.training.trl_compat``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from trl import GRPOTrainer

# The TRL version the entries below were written against (pyproject pins trl to its minor version).
TRL_VERSION = "1.16"


@dataclass(frozen=True)
class Private:
    """One private piece of TRL that r1lab touches. ``kind``: ``override`` (r1lab replaces the method; ``expected``
    is TRL's signature), ``call`` (r1lab calls or wraps it; its signature), ``attribute`` (r1lab reads or sets it;
    ``expected`` is the line of the owner's source that creates it), ``patch`` (r1lab replaces it for a while;
    the line of TRL's source that uses it)."""

    owner: str  # the TRL class or function, importable: module:qualified name
    kind: str
    expected: str
    why: str


_GRPO = "trl.trainer.grpo_trainer:GRPOTrainer"
_VLLM = "trl.generation.vllm_generation:VLLMGeneration"

PRIVATE = {
    "_get_train_sampler": Private(
        _GRPO,
        "override",
        "(self, dataset: datasets.arrow_dataset.Dataset | None = None) -> torch.utils.data.sampler.Sampler",
        "each epoch's prompt order drawn from (seed + epoch), so a run resumed in epoch e reads epoch e's order "
        "(TRL's sampler draws every epoch from one generator seeded once, and a resumed run would restart at epoch 0's)",
    ),
    "_generate_single_turn": Private(
        _GRPO,
        "override",
        "(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False)",
        "text-only sampling without vLLM through r1lab's decoding loop (a group's prompt read once, finished rows "
        "leave the batch, stop_at_answer) instead of model.generate; the sampled log-probabilities are kept. "
        "With vLLM, TRL's call, and a completion that stopped at stop_at_answer's string is closed with EOS",
    ),
    "_get_per_token_logps_and_entropies": Private(
        _GRPO,
        "override",
        "(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, "
        "compute_aux_loss=False, pixel_values=None, image_grid_thw=None, num_images=None, pixel_attention_mask=None, "
        "spatial_shapes=None, num_tiles=None, image_sizes=None, token_type_ids=None, mm_token_type_ids=None, "
        "image_position_ids=None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]",
        "the old log-probabilities recorded while sampling (no second forward); scoring with padding cut, each "
        "prompt's forward shared by its rows, the LM head over completion positions only (grpo_forward)",
    ),
    "_generate_and_score_completions": Private(
        _GRPO,
        "override",
        "(self, inputs: list[dict[str, torch.Tensor | typing.Any]]) -> dict[str, torch.Tensor | typing.Any]",
        "dynamic sampling (DAPO): groups whose rewards are all equal are dropped and more prompts sampled until the "
        "step has its configured number of groups with reward variance; the groups kept are joined into one batch. "
        "Rollouts of r1lab's loop in another precision than the training forward: TRL's truncated importance "
        "sampling weights applied to the advantages (rollout_correction). The benchmark's probe wraps it too",
    ),
    "_calculate_rewards": Private(
        _GRPO,
        "override",
        "(self, inputs, prompts, completions, completion_ids_list)",
        "keeps the batch's rewards per function, which dynamic sampling reads to find the groups without variance",
    ),
    "_compute_loss": Private(
        _GRPO,
        "override",
        "(self, model, inputs)",
        "rows whose advantage is exactly 0 skip their forward and backward where that changes nothing "
        "(beta 0, loss_type dapo, one process). The benchmark's probe wraps it to count the trained tokens",
    ),
    "_generate": Private(
        _GRPO,
        "call",
        "(self, prompts: list)",
        "the benchmark's probe times each generation and counts its tokens (the result's second item: the "
        "completions' token ids)",
    ),
    "_tokenizer": Private(
        _GRPO,
        "attribute",
        "self._tokenizer = processing_class",
        "the text tokenizer of the processing class: pad id and stop strings for r1lab's loop",
    ),
    "_step": Private(
        _GRPO,
        "attribute",
        "self._step = 0",
        "the micro-step counter: r1lab's loop seeds its sampling with it, so a rerun samples the same completions",
    ),
    "_metrics": Private(
        _GRPO,
        "attribute",
        'self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}',
        "r1lab's per-step metrics (dynamic sampling, rollout correction, rows skipped) logged beside TRL's",
    ),
    "_logs": Private(
        _GRPO,
        "attribute",
        "self._logs = {",
        "the latest generation batch (prompts, completions, rewards per function), written to completions.jsonl",
    ),
    "_total_train_tokens": Private(
        "trl.trainer.sft_trainer:SFTTrainer",
        "attribute",
        "self._total_train_tokens = 0",
        "SFT's num_tokens metric continued after a resume (the count lives in the trainer, not in the checkpoint)",
    ),
    "_iter_named_params": Private(
        _VLLM,
        "call",
        "(self)",
        "a CPU run's colocated engine reloads the policy's parameters (named as vLLM expects, PEFT merged) through "
        "vLLM's layer-wise reload_weights",
    ),
    "ChunkedLogProbFunction.apply": Private(
        "trl.kernels:ChunkedLogProbFunction",
        "call",
        "(ctx, hidden: 'torch.Tensor', weight: 'torch.Tensor', bias: 'torch.Tensor | None', targets: 'torch.Tensor', "
        "temperature: 'float', chunk_size: 'int', final_logit_softcapping: 'float | None' = None, logit_scale: "
        "'float' = 1.0, outputs: 'tuple[str, ...]' = ('entropy', 'log_sum_sq_probs', 'mean_logits', 'is_top1')) -> "
        "'tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]'",
        "the compact head scores completion positions only with TRL's kernel; an autograd Function takes its "
        "arguments by position (its forward's signature, checked)",
    ),
    "fused_lm_head": Private(
        "trl.trainer.utils:add_fused_lm_head",
        "patch",
        "fused_lm_head",
        "TRL patches the policy's forward with a keyword that scores through its chunked head; the shared prompt "
        "forward calls it and checks the forward's parameters for it",
    ),
    "vllm_generation.LLM": Private(
        "trl.generation.vllm_generation:VLLMGeneration._init_vllm",
        "patch",
        "self.llm = LLM(",
        "TRL builds its colocated engine with fixed settings: r1lab adds its own (vllm_support.engine_kwargs: the "
        "trained weights' dtype; on a CPU eager execution, no minutes of torch.compile at start-up, and the KV-cache "
        "size), for the duration of TRL's __init__",
    ),
    "VLLMGeneration.sync_weights": Private(
        "trl.generation.vllm_generation:VLLMGeneration.sync_weights",
        "patch",
        "model_runner.model.load_weights([(name, param)])",
        "on a CPU vLLM repacks each linear layer's weight for its GEMM kernels and drops the loadable parameter, so "
        "TRL's load_weights fails ('Parameter' object has no attribute 'weight_loader'): a CPU run's colocated engine "
        "reloads the weights layer by layer instead (and a tied LM head's too, which vLLM leaves stale)",
    ),
}


def resolve(owner: str):
    """The TRL object ``module:qualified.name`` names."""
    module, _, qualified = owner.partition(":")
    target = importlib.import_module(module)
    for part in qualified.split("."):
        target = getattr(target, part)
    return target


def markdown_table() -> str:
    """docs/grpo.md's table of every private piece of TRL r1lab touches (tests/unit/test_trl_compat.py checks that
    the page holds it)."""
    rows = ["| TRL | kind | why |", "|---|---|---|"]
    for name, entry in PRIVATE.items():
        owner = entry.owner.partition(":")[2].split(".")[0]
        where = name if "." in name or name == "fused_lm_head" else f"{owner}.{name}"
        rows.append(f"| `{where}` | {entry.kind} | {entry.why} |")
    return "\n".join(rows)


# --- GRPOTrainer ------------------------------------------------------------------------------------------


class GRPOHooks(GRPOTrainer):
    """TRL's GRPOTrainer, each private method r1lab overrides forwarded to a hook (by default TRL's own code, which
    stays reachable as ``trl_<hook>``), and the private attributes r1lab reads under public names."""

    # TRL calls these: each one forwards to its hook.
    def _get_train_sampler(self, dataset=None):
        return self.prompt_sampler(super()._get_train_sampler(dataset))

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        return self.sample_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        return self.score_tokens(
            model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, **kwargs
        )

    def _generate_and_score_completions(self, inputs):
        return self.generate_and_score(inputs)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.rewards_scored(rewards_per_func)
        return rewards_per_func

    def _compute_loss(self, model, inputs):
        return self.policy_loss(model, inputs)

    # The hooks (TRL's code unless a subclass overrides them) and TRL's code itself.
    def prompt_sampler(self, sampler):
        """The sampler of the training prompts, given TRL's."""
        return sampler

    def sample_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        """(completion token ids, their sampling log-probabilities or None) for each prompt row."""
        return self.trl_sample_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)

    def trl_sample_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)

    def score_tokens(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        """(per-token log-probabilities, entropies or None, auxiliary loss or None) of the completion columns."""
        return self.trl_score_tokens(
            model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, **kwargs
        )

    def trl_score_tokens(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        return super()._get_per_token_logps_and_entropies(
            model,
            input_ids,
            attention_mask,
            logits_to_keep,
            batch_size=batch_size,
            compute_entropy=compute_entropy,
            **kwargs,
        )

    def generate_and_score(self, inputs):
        """One generation batch sampled, rewarded and turned into TRL's training inputs (advantages and all)."""
        return self.trl_generate_and_score(inputs)

    def trl_generate_and_score(self, inputs):
        return super()._generate_and_score_completions(inputs)

    def rewards_scored(self, rewards_per_func) -> None:
        """Called with each scored batch's rewards (rows x reward functions)."""

    def policy_loss(self, model, inputs):
        """The loss of one micro-batch."""
        return self.trl_policy_loss(model, inputs)

    def trl_policy_loss(self, model, inputs):
        return super()._compute_loss(model, inputs)

    # Private attributes under public names.
    @property
    def text_tokenizer(self):
        """The processing class's text tokenizer."""
        return self._tokenizer

    @property
    def micro_step(self) -> int:
        """Micro-batches trained so far (TRL's counter)."""
        return self._step

    def log_metric(self, name: str, value: float, mode: str = "train") -> None:
        """A value of ``name`` averaged into the next logged step, beside TRL's own metrics."""
        self._metrics[mode][name].append(value)


def generation_logs(trainer) -> dict | None:
    """The latest generation batch a GRPOTrainer keeps for ``log_completions`` (prompts, completions, rewards per
    function, advantages), or None for another trainer."""
    return getattr(trainer, "_logs", None)


def restore_trained_token_count(trainer, count: int) -> None:
    """SFTTrainer's count of the tokens trained on (its ``num_tokens`` metric) set to ``count``, where it keeps one."""
    if hasattr(trainer, "_total_train_tokens"):
        trainer._total_train_tokens = count


def wrap_grpo_trainer(*, init: Callable, generate: Callable, generate_and_score: Callable, loss: Callable) -> None:
    """Every GRPOTrainer of this process (TRL's and r1lab's) runs each wrapper around TRL's method: ``init(original,
    self, *args, **kwargs)``, ``generate(original, self, prompts)``, ``generate_and_score(original, self, inputs)``,
    ``loss(original, self, model, inputs)``. For the benchmark's probe, in a process of its own."""
    for name, wrapper in (
        ("__init__", init),
        ("_generate", generate),
        ("_generate_and_score_completions", generate_and_score),
        ("_compute_loss", loss),
    ):
        setattr(GRPOTrainer, name, _wrapped(wrapper, getattr(GRPOTrainer, name)))


def _wrapped(wrapper: Callable, original: Callable) -> Callable:
    def method(self, *args, **kwargs):
        return wrapper(original, self, *args, **kwargs)

    return method


# --- the LM head -------------------------------------------------------------------------------------------


def has_chunked_kernel() -> bool:
    try:
        from trl.kernels import ChunkedLogProbFunction  # noqa: F401
    except ImportError:
        return False
    return True


def chunked_log_probs(hidden, weight, bias, targets, temperature: float, vocab_tile: int, outputs: tuple[str, ...]):
    """TRL's chunked log-prob kernel over ``hidden`` (N x H) and the head ``weight`` / ``bias``: (log-probs of
    ``targets``, then the ``outputs`` asked for, each N long), ``vocab_tile`` vocabulary columns at a time."""
    from trl.kernels import ChunkedLogProbFunction

    return ChunkedLogProbFunction.apply(hidden, weight, bias, targets, temperature, vocab_tile, None, 1.0, outputs)


def has_fused_lm_head(model) -> bool:
    """Whether ``model``'s forward is TRL's patched one (``add_fused_lm_head``), which takes ``fused_lm_head``."""
    code = getattr(getattr(model.forward, "__func__", model.forward), "__code__", None)
    return code is not None and "fused_lm_head" in code.co_varnames


def fused_head_forward(model, **kwargs):
    """``model``'s forward scored by TRL's fused head: the output carries ``log_probs`` (and ``entropy``) of the
    ``labels``."""
    return model(fused_lm_head=True, **kwargs)


# --- TRL's vLLM backend --------------------------------------------------------------------------------------


@contextlib.contextmanager
def vllm_engine_settings(settings: dict | None):
    """TRL's colocated ``vllm.LLM`` built with ``settings`` added (``vllm_generation.LLM`` above), inside the block."""
    if not settings:
        yield
        return
    module = importlib.import_module("trl.generation.vllm_generation")
    original = getattr(module, "LLM", None)
    if original is None:  # vLLM is not installed: TRL raises its own error, and r1lab's plan refused earlier
        yield
        return
    module.LLM = functools.partial(original, **settings)  # type: ignore[attr-defined]  # ModuleType has no setter
    try:
        yield
    finally:
        module.LLM = original  # type: ignore[attr-defined]  # (typeshed: a module's attributes are read-only)


def reload_colocated_weights(generation) -> None:
    """TRL's colocated weight sync for a CPU engine (``VLLMGeneration.sync_weights`` above): the policy's
    parameters, named as vLLM expects and with any LoRA adapter merged, reloaded layer by layer, then the prefix
    cache reset (as TRL does).

    vLLM's layer-wise reload repacks a tied weight for one of the layers that share it only (the embedding), so the
    tied LM head would keep computing logits from the weights it was packed from at start-up: each layer sharing a
    weight repacks it again."""
    import torch

    runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=generation._iter_named_params(), is_checkpoint_format=True)
    sharing: dict[int, list] = {}
    for module in runner.get_model().modules():
        weight, method = getattr(module, "weight", None), getattr(module, "quant_method", None)
        if isinstance(weight, torch.Tensor) and method is not None:
            sharing.setdefault(id(weight), []).append(module)
    for modules in sharing.values():
        if len(modules) > 1:
            for module in modules:
                module.quant_method.process_weights_after_loading(module)
    generation.llm.reset_prefix_cache()


if __name__ == "__main__":
    print(markdown_table())
