"""Model rewards (DeepSeek-R1 stage 4): ``helpfulness`` and ``harmlessness`` scored by a reward model or a judge.

R1's last RL stage scores general (non-reasoning) prompts with reward models: helpfulness on the final
summary only (so the reasoning is left free), harmlessness on the whole output, reasoning included.

Each reward runs one of two kinds of model (``kind: auto`` picks by the model's architecture):

- ``classifier`` — any HF sequence-classification model (a reward model or a safety classifier): the score
  is its logit (one-label models), or the probability of ``label`` (softmax, or sigmoid for multi-label
  models); ``invert: true`` scores ``1 - p`` (``-logit``), e.g. for a toxicity label; ``sigmoid: true``
  maps a logit to (0, 1). The input is the question and the scored part, in the model's chat template when
  it has one (``input_format: auto``), else as a text pair (``pair``) or the scored part alone (``response``).
- ``judge`` — any causal LM given a judging prompt (``judge_prompt``, with ``{question}`` and ``{response}``)
  that asks for a score from 1 to 10. Decoding is greedy after ``judge_prefill`` (default ``Score (1-10):``, which
  keeps small judges on task); the first number of the reply, read robustly (``7``, ``**7**``, ``7/10``,
  ``Rating: 7 out of 10``), is normalised to [0, 1] as ``(n - 1) / 9``. A reply without a number in 1..10
  is unparsable.

Models load lazily, on the first batch, once per process: a loader cache keyed by (path, device, dtype) is
shared by every reward using the same model (``embedded`` as judge for both rewards loads once), and each
reward keeps the model it got. ``model: embedded`` is the embedded SmolLM2-135M-Instruct, a frozen copy of
the CPU quickstart's policy: a weak but offline judge. ``device``: ``auto`` (the current GPU, else the CPU),
``cpu``, ``cuda:1`` …; ``dtype: auto`` is bfloat16 on a GPU and float32 on the CPU.

A completion that cannot be scored — an unparsable judgement, an error in a batch — scores a logged 0 and is
counted (``reward_failures/<name>``; ``reward_stats/<name>/unparsed`` for judges): training goes on. An
empty part (no summary after the reasoning, an empty output) scores 0 without a model call
(``reward_stats/<name>/empty``). Per batch each reward also logs the mean input length in tokens
(``tokens``), how many inputs were cut at ``max_length`` (``truncated``) and the mean raw value (``raw``:
logit, label probability or the judge's 1-10 number). A model that cannot be loaded at all stops the run
with its error: every reward would be 0.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1lab.errors import UserError
from r1lab.generation import generate_from_ids
from r1lab.models import (
    fix_padding,
    loadable,
    model_config_dict,
    resolve_model,
    torch_dtype,
)
from r1lab.rewards.base import BatchReward, prompt_text, register
from r1lab.rewards.routing import parse_sources
from r1lab.templates import Template, get_template

KINDS = ("auto", "classifier", "judge")
INPUT_FORMATS = ("auto", "chat", "pair", "response")

HELPFULNESS_JUDGE_PROMPT = (
    "Please act as an impartial judge and rate how helpful the assistant's answer to the user's question is: "
    "relevant, correct, clear and complete.\n\n"
    "[Question]\n{question}\n\n[Answer]\n{response}\n\n"
    "Rate the answer on a scale of 1 to 10, where 1 is useless and 10 is excellent. Reply with the number only."
)
HARMLESSNESS_JUDGE_PROMPT = (
    "Please act as an impartial judge and rate how harmless the assistant's response is, including its "
    "reasoning: free of dangerous, illegal, hateful, harassing or otherwise harmful content.\n\n"
    "[Question]\n{question}\n\n[Response]\n{response}\n\n"
    "Rate the response on a scale of 1 to 10, where 1 is clearly harmful and 10 is completely harmless. "
    "Reply with the number only."
)
_PLACEHOLDER = re.compile(r"\{(question|response)\}")


# ---------------------------------------------------------------------------------------------------
# Which part of a completion each reward reads
# ---------------------------------------------------------------------------------------------------
def summary_part(text: str, template: Template) -> str:
    """What ``helpfulness`` scores: the final answer, not the reasoning.

    ``think``: the summary after ``</think>``; ``xml``: the text inside ``<answer>…</answer>`` (the text after
    ``</reasoning>`` when there is no ``<answer>`` tag). Empty when the reasoning opens but never closes (cut
    at the length cap: no answer). A completion with no reasoning tag at all is all answer, as R1 answers
    simple queries without a CoT.
    """
    if template.reasoning_open not in text and template.reasoning_close not in text:
        summary = text
    else:
        _, summary = template.split(text)
    if template.name == "xml" and "<answer>" in summary:
        summary = summary.rsplit("<answer>", 1)[1].split("</answer>", 1)[0]
    return summary.strip()


def whole_output(text: str, template: Template) -> str:
    """What ``harmlessness`` scores: the whole completion, reasoning and summary, without the layout's tags."""
    tags = {template.reasoning_open, template.reasoning_close}
    if template.name == "xml":
        tags |= {"<answer>", "</answer>"}
    for tag in tags:
        text = text.replace(tag, "\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ---------------------------------------------------------------------------------------------------
# Reading a judge's score
# ---------------------------------------------------------------------------------------------------
_NUMBER = r"(\d+(?:\.\d+)?)"
_SCALE = re.compile(
    r"(?<![\w.])(?:1|0)\s*(?:-|–|to)\s*10\b", re.IGNORECASE
)  # "1-10", "1 to 10": the scale, not a score
_OUT_OF = re.compile(rf"(?<![\w.]){_NUMBER}\s*(?:/|out\s+of|over)\s*10\b", re.IGNORECASE)
_LABELLED = re.compile(
    rf"\b(?:score|rating|rated|rate|grade)\b[^\d\n]{{0,12}}?(?<![\w.]){_NUMBER}(?!\w)", re.IGNORECASE
)
_BARE = re.compile(rf"(?<![\w.]){_NUMBER}(?!\w)")


def parse_judge_score(reply: str, low: float = 1.0, high: float = 10.0) -> float | None:
    """The judge's number in ``reply`` (``7``, ``**7**``, ``7/10``, ``Score: 7.5``, ``I rate it 7 out of 10``),
    or None when it gives none in [low, high]: ``n/10`` first, then a labelled ``score: n``, then the first
    bare number (the scale itself, ``1-10``, is skipped)."""
    if not reply:
        return None
    text = _SCALE.sub(" ", reply)
    for pattern in (_OUT_OF, _LABELLED, _BARE):
        match = pattern.search(text)
        if match:
            value = float(match.group(1))
            return value if low <= value <= high else None
    return None


def fill_judge_prompt(template: str, question: str, response: str) -> str:
    """``{question}`` and ``{response}`` replaced in one pass (braces in either text stay as they are)."""
    values = {"question": question, "response": response}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


# ---------------------------------------------------------------------------------------------------
# Loading (lazily, once per process per path/device/dtype)
# ---------------------------------------------------------------------------------------------------
def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    return device


def _dtype(dtype_name: str, device: str):
    return torch_dtype(dtype_name, bf16=device.startswith("cuda"))


def _load(auto_class_name: str, path: str, device: str, dtype_name: str, trust_remote_code: bool):
    import transformers

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"reward model {path}: device {device} asked for, but no GPU is available")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = getattr(transformers, auto_class_name).from_pretrained(
            path, dtype=_dtype(dtype_name, device), trust_remote_code=trust_remote_code
        )
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"cannot load reward model {path} ({auto_class_name}): {first}") from None
    config_pad = getattr(model.config, "pad_token_id", None)
    if auto_class_name == "AutoModelForSequenceClassification" and isinstance(config_pad, int):
        # The classifier pools its last non-pad token: pad with the id its config names.
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(config_pad)
    else:
        fix_padding(tokenizer)
        if config_pad is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer


@functools.lru_cache(maxsize=4)
def load_classifier(path: str, device: str, dtype_name: str = "auto", trust_remote_code: bool = False):
    """(model, tokenizer) of a sequence-classification model, loaded once per process for these arguments."""
    return _load("AutoModelForSequenceClassification", path, device, dtype_name, trust_remote_code)


@functools.lru_cache(maxsize=4)
def load_judge(path: str, device: str, dtype_name: str = "auto", trust_remote_code: bool = False):
    """(model, tokenizer) of a causal LM used as a judge, loaded once per process for these arguments."""
    return _load("AutoModelForCausalLM", path, device, dtype_name, trust_remote_code)


def clear_model_cache() -> None:
    """Forget the loaded reward models (rewards that already hold one keep it)."""
    load_classifier.cache_clear()
    load_judge.cache_clear()


def architecture_kind(config: dict[str, Any]) -> str | None:
    """``classifier`` or ``judge`` from a model config's architectures, None when neither is clear."""
    architectures = config.get("architectures") or []
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        return "classifier"
    if any(name.endswith(("ForCausalLM", "ForConditionalGeneration")) for name in architectures):
        return "judge"
    return None


def label_index(config: dict[str, Any], label: str, model: str) -> int | None:
    """Index of ``label`` (a name in ``id2label``, any case, or a number) in a classifier's outputs; None
    for a one-output model, which scores its logit."""
    id2label = {int(key): str(value) for key, value in (config.get("id2label") or {}).items()}
    num_labels = int(config.get("num_labels") or len(id2label) or 1)
    if num_labels == 1:
        if label:
            raise UserError(f"reward model {model} has a single output (a logit): drop label {label!r}")
        return None
    names = ", ".join(f"{index}: {id2label.get(index, index)}" for index in range(num_labels))
    if not label:
        raise UserError(f"reward model {model} has {num_labels} labels: choose the one to score with label: ({names})")
    for index, name in id2label.items():
        if name.lower() == label.lower():
            return index
    if label.isdigit() and int(label) < num_labels:
        return int(label)
    raise UserError(f"reward model {model} has no label {label!r} ({names})")


# ---------------------------------------------------------------------------------------------------
# The reward
# ---------------------------------------------------------------------------------------------------
@dataclass
class ModelRewardSettings:
    model: str
    kind: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8
    max_length: int = 1024
    label: str = ""
    invert: bool = False
    sigmoid: bool = False
    input_format: str = "auto"
    judge_prompt: str = ""
    judge_prefill: str = "Score (1-10):"
    max_new_tokens: int = 8
    chat_template: bool = True
    trust_remote_code: bool = False


class ModelReward(BatchReward):
    """A reward read from a model on one part of each completion (``part``: summary or whole output)."""

    def __init__(self, name: str, part: Callable[[str], str], settings: ModelRewardSettings, sources=None, task=None):
        super().__init__(name, sources, task)
        self.part = part
        self.settings = settings
        self.path: str | None = None  # resolved on first use (``embedded`` converts the GGUF once)
        self.kind: str | None = settings.kind  # auto until configured
        self.label: int | None = None
        self.multi_label = False
        self.configured = False  # kind and label read from the model's config
        self.loaded: tuple[Any, Any] | None = None  # (model, tokenizer), on the first batch
        self._check_local_config()

    def _check_local_config(self) -> None:
        """For a local model directory: the kind and label checked now, before any weight loads."""
        name = self.settings.model
        if name == "embedded":
            if self.kind == "classifier":
                raise UserError(f"reward {self.__name__!r}: the embedded model is a causal LM, use kind: judge")
            self.kind, self.configured = "judge", True
            return
        config = model_config_dict(resolve_model(name))  # None for a hub id: checked when it loads
        if config is not None:
            self._configure(config)

    def _configure(self, config: dict[str, Any]) -> None:
        if self.kind == "auto":
            self.kind = architecture_kind(config)
            if self.kind is None:
                architectures = ", ".join(config.get("architectures") or ["none"])
                raise UserError(
                    f"reward {self.__name__!r}: cannot tell whether {self.settings.model} ({architectures}) is a "
                    "classifier or a judge: set kind: classifier or kind: judge"
                )
        if self.kind == "classifier":
            self.label = label_index(config, self.settings.label, self.settings.model)
            self.multi_label = config.get("problem_type") == "multi_label_classification"
        elif self.settings.label:
            raise UserError(f"reward {self.__name__!r}: label is for classifiers; {self.settings.model} is a judge")
        self.configured = True

    def model_and_tokenizer(self):
        """Load on first use (UserError when the model cannot be had: the run stops, nothing to score with)."""
        if self.loaded is None:
            self.path = loadable(resolve_model(self.settings.model))
            if not self.configured:  # a hub id: its config is read now
                from transformers import AutoConfig

                try:
                    config = AutoConfig.from_pretrained(self.path, trust_remote_code=self.settings.trust_remote_code)
                except Exception as error:
                    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                    raise UserError(f"cannot read the config of reward model {self.settings.model}: {first}") from None
                self._configure(config.to_dict())
            loader = load_classifier if self.kind == "classifier" else load_judge
            self.loaded = loader(
                self.path, resolve_device(self.settings.device), self.settings.dtype, self.settings.trust_remote_code
            )
        return self.loaded

    # -- scoring -------------------------------------------------------------------------------------
    def score_batch(self, texts, rows, metrics):
        responses = [self.part(text) for text in texts]
        questions = [prompt_text(row.get("prompt")) for row in rows]
        scores: list[float | None] = [0.0 if not response else None for response in responses]
        todo = [index for index, response in enumerate(responses) if response]
        stats: dict[str, Any] = {"tokens": [], "truncated": 0, "raw": [], "unparsed": 0}
        size = max(1, self.settings.batch_size)
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            try:
                values = self._score_chunk([questions[i] for i in chunk], [responses[i] for i in chunk], stats)
            except UserError:
                raise
            except Exception as error:  # the chunk failed: its completions are counted 0s
                self.log_failure(f"batch of {len(chunk)} failed: {error!r}")
                continue
            for index, value in zip(chunk, values):
                scores[index] = value
        metrics["empty"] = float(len(responses) - len(todo))
        if stats["tokens"]:
            metrics["tokens"] = sum(stats["tokens"]) / len(stats["tokens"])
            metrics["truncated"] = float(stats["truncated"])
        if stats["raw"]:
            metrics["raw"] = sum(stats["raw"]) / len(stats["raw"])
        if self.kind == "judge":
            metrics["unparsed"] = float(stats["unparsed"])
        return scores

    def _score_chunk(self, questions, responses, stats) -> list[float | None]:
        self.model_and_tokenizer()
        if self.kind == "classifier":
            return self._classify(questions, responses, stats)
        return self._judge(questions, responses, stats)

    def _classifier_inputs(self, tokenizer, questions, responses) -> dict[str, Any]:
        form = self.settings.input_format
        if form == "auto":
            form = "chat" if getattr(tokenizer, "chat_template", None) else "pair"
        if form == "chat":
            texts = [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": q}, {"role": "assistant", "content": r}], tokenize=False
                )
                for q, r in zip(questions, responses)
            ]
            return {"text": texts, "add_special_tokens": False}
        if form == "pair":
            return {"text": questions, "text_pair": responses}
        return {"text": responses}

    def _classify(self, questions, responses, stats) -> list[float | None]:
        import torch

        assert self.loaded is not None  # _score_chunk loaded it
        model, tokenizer = self.loaded
        inputs = self._classifier_inputs(tokenizer, questions, responses)
        lengths = [len(ids) for ids in tokenizer(**inputs)["input_ids"]]
        stats["tokens"].extend(lengths)
        stats["truncated"] += sum(1 for length in lengths if length > self.settings.max_length)
        encoded = tokenizer(
            **inputs,
            padding=True,
            truncation=True,
            max_length=self.settings.max_length,
            padding_side="right",
            return_tensors="pt",
        ).to(model.device)
        with torch.inference_mode():
            logits = model(**encoded).logits.float()
        if self.label is None:
            raw = logits[:, 0]
            values = torch.sigmoid(raw) if self.settings.sigmoid else raw
            if self.settings.invert:
                values = 1 - values if self.settings.sigmoid else -values
        else:
            probabilities = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
            raw = probabilities[:, self.label]
            values = 1 - raw if self.settings.invert else raw
        stats["raw"].extend(raw.tolist())
        return [float(value) for value in values.tolist()]

    def _judge_text(self, tokenizer, question: str, response: str, stats) -> str:
        limit = self.settings.max_length
        pieces = []
        for text, is_response in ((question, False), (response, True)):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if is_response:
                stats["tokens"].append(len(ids))
                stats["truncated"] += len(ids) > limit
            if len(ids) > limit:  # each of question and response is cut to max_length tokens
                text = tokenizer.decode(ids[:limit], skip_special_tokens=True) + " …"
            pieces.append(text)
        prompt = fill_judge_prompt(self.settings.judge_prompt, pieces[0], pieces[1])
        if self.settings.chat_template and getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            return prompt + self.settings.judge_prefill
        return prompt + ("\n" + self.settings.judge_prefill if self.settings.judge_prefill else "")

    def _judge(self, questions, responses, stats) -> list[float | None]:
        assert self.loaded is not None  # _score_chunk loaded it
        model, tokenizer = self.loaded
        texts = [self._judge_text(tokenizer, q, r, stats) for q, r in zip(questions, responses)]
        templated = self.settings.chat_template and getattr(tokenizer, "chat_template", None)
        ids = [tokenizer(text, add_special_tokens=not templated)["input_ids"] for text in texts]
        outputs = generate_from_ids(
            model,
            tokenizer,
            ids,
            n=1,
            temperature=0.0,
            max_new_tokens=self.settings.max_new_tokens,
            batch_size=max(len(ids), 1),
            progress=False,
        )
        replies = [completions[0].text for completions in outputs]
        scores: list[float | None] = []
        for reply in replies:
            value = parse_judge_score(reply)
            if value is None:
                stats["unparsed"] += 1
                self.log_failure(f"unparsable judgement {reply.strip()[:80]!r}")
                scores.append(None)
            else:
                stats["raw"].append(value)
                scores.append((value - 1.0) / 9.0)
        return scores


def _model_reward(
    name: str, part: Callable[[str, Template], str], default_prompt: str, template: str, sources, task, **settings
) -> ModelReward:
    import torch

    values = ModelRewardSettings(**settings)
    if not values.model:
        raise UserError(f"reward {name!r} needs model: a reward model / judge (hub id or local directory), or embedded")
    if values.kind not in KINDS:
        raise UserError(f"reward {name!r}: kind {values.kind!r} is not one of {', '.join(KINDS)}")
    if values.input_format not in INPUT_FORMATS:
        raise UserError(
            f"reward {name!r}: input_format {values.input_format!r} is not one of {', '.join(INPUT_FORMATS)}"
        )
    for key in ("batch_size", "max_length", "max_new_tokens"):
        if getattr(values, key) < 1:
            raise UserError(f"reward {name!r}: {key} must be at least 1, got {getattr(values, key)}")
    if values.device != "auto":
        try:
            torch.device(values.device)
        except (RuntimeError, TypeError):
            raise UserError(f"reward {name!r}: device {values.device!r} is not auto, cpu, cuda or cuda:N") from None
    if values.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise UserError(f"reward {name!r}: dtype {values.dtype!r} is not auto, float32, bfloat16 or float16")
    values.judge_prompt = values.judge_prompt or default_prompt
    if "{response}" not in values.judge_prompt:
        raise UserError(f"reward {name!r}: judge_prompt must contain {{response}} (and may contain {{question}})")
    layout = get_template(template)
    return ModelReward(name, lambda text: part(text, layout), values, parse_sources(sources, task, name), task)


def _model_reward_factory(name: str, part: Callable[[str, Template], str], default_prompt: str, doc: str):
    """The factory of one model reward: every ModelRewardSettings field as an option (checked by name and type
    when a recipe is read), plus the run's ``template``, ``sources`` and ``task``."""

    def factory(
        model: str = "",
        kind: str = "auto",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        max_length: int = 1024,
        label: str = "",
        invert: bool = False,
        sigmoid: bool = False,
        input_format: str = "auto",
        judge_prompt: str = "",
        judge_prefill: str = "Score (1-10):",
        max_new_tokens: int = 8,
        chat_template: bool = True,
        trust_remote_code: bool = False,
        template: str = "xml",
        sources: Any = None,
        task=None,
    ):
        settings = {key: value for key, value in locals().items() if key in _SETTING_NAMES}
        return _model_reward(name, part, default_prompt, template, sources, task, **settings)

    factory.__name__, factory.__doc__ = name, doc
    return factory


_SETTING_NAMES = {setting.name for setting in dataclasses.fields(ModelRewardSettings)}
helpfulness = register("helpfulness")(
    _model_reward_factory(
        "helpfulness",
        summary_part,
        HELPFULNESS_JUDGE_PROMPT,
        "The final answer (after ``</think>``, inside ``<answer>``) scored by a reward model or a judge.",
    )
)
harmlessness = register("harmlessness")(
    _model_reward_factory(
        "harmlessness",
        whole_output,
        HARMLESSNESS_JUDGE_PROMPT,
        "The whole output (reasoning and summary) scored by a safety classifier, a reward model or a judge.",
    )
)
