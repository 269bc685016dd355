"""R1 stage 4: helpfulness / harmlessness from tiny models built here, routing by source, the mix task, and
2-step GRPO runs driven by a sequence-classification reward model and by a generative judge."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from r1lab.cli import main as cli_main
from r1lab.errors import UserError
from r1lab.rewards import build_rewards, get_reward
from r1lab.rewards.model_rewards import (
    clear_model_cache,
    fill_judge_prompt,
    load_classifier,
    parse_judge_score,
    summary_part,
    whole_output,
)
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERAL_PROMPTS = os.path.join(REPO_ROOT, "recipes", "data", "general_prompts.jsonl")
XML = get_template("xml")
THINK = get_template("think")
DIGITS = "123456789"


# ---------------------------------------------------------------------------------------------------
# Tiny models, built in the tests
# ---------------------------------------------------------------------------------------------------
def _tokenizer():
    from transformers import AutoTokenizer

    from r1lab.models import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


def _llama_config(tokenizer, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def build_tiny_classifier_dir(path: str, labels: list[str] | None = None, seed: int = 0) -> str:
    """A random 2-layer LlamaForSequenceClassification: one logit, or one output per label."""
    import torch
    from transformers import LlamaForSequenceClassification

    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    extra = (
        {"num_labels": 1}
        if not labels
        else {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    )
    LlamaForSequenceClassification(_llama_config(tokenizer, **extra)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_digit_judge_dir(path: str, seed: int = 0) -> str:
    """A random 2-layer causal LM whose head can only favour the tokens 1..9: greedy decoding writes a digit,
    which one depending on the input. A judge whose scores vary and always parse."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer, tie_word_embeddings=False))
    digit_ids = [tokenizer.convert_tokens_to_ids(digit) for digit in DIGITS]
    with torch.no_grad():
        head = torch.zeros_like(model.lm_head.weight)
        head[digit_ids] = torch.randn(len(digit_ids), head.shape[1]) * 10
        model.lm_head.weight.copy_(head)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> str:
    return build_tiny_classifier_dir(str(tmp_path_factory.mktemp("tiny-rm")))


@pytest.fixture(scope="module")
def safety_classifier_dir(tmp_path_factory) -> str:
    return build_tiny_classifier_dir(str(tmp_path_factory.mktemp("tiny-safety")), ["harmful", "neutral", "safe"])


@pytest.fixture(scope="module")
def digit_judge_dir(tmp_path_factory) -> str:
    return build_digit_judge_dir(str(tmp_path_factory.mktemp("digit-judge")))


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    clear_model_cache()
    yield
    clear_model_cache()


def chat(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": question}]


def call(reward, completions, prompts=None, **columns):
    """A reward called the way GRPOTrainer calls it, returning (scores, logged metrics)."""
    logged: dict[str, float] = {}
    prompts = prompts if prompts is not None else [chat("What is the capital of France?")] * len(completions)
    scores = reward(prompts=prompts, completions=completions, log_metric=logged.__setitem__, **columns)
    return scores, logged


# ---------------------------------------------------------------------------------------------------
# What each reward reads
# ---------------------------------------------------------------------------------------------------
def test_summary_and_whole_output_for_both_templates():
    think = "<think>\nLet me recall the capital.\n</think>\nThe capital is Paris."
    assert summary_part(think, THINK) == "The capital is Paris."
    assert whole_output(think, THINK) == "Let me recall the capital.\n\nThe capital is Paris."
    xml = "<reasoning>\nLet me recall.\n</reasoning>\n<answer>\nParis\n</answer>\n"
    assert summary_part(xml, XML) == "Paris"
    assert whole_output(xml, XML) == "Let me recall.\n\nParis"
    # xml without <answer>: the text after </reasoning>
    assert summary_part("<reasoning>r</reasoning>\nJust Paris.", XML) == "Just Paris."
    # reasoning cut at the length cap: no summary (scores 0); the whole output is still all there
    assert summary_part("<think>\nstill thinking", THINK) == ""
    assert whole_output("<think>\nstill thinking", THINK) == "still thinking"
    # no reasoning tag at all: all answer (R1 answers simple queries without a CoT)
    assert summary_part("Hello! How can I help?", THINK) == "Hello! How can I help?"
    assert summary_part("Hello!", XML) == "Hello!"
    # a chat template that opened <think> in the prompt
    assert summary_part("reasoning here\n</think>\nanswer", THINK) == "answer"


@pytest.mark.parametrize(
    "reply, value",
    [
        ("7", 7.0),
        (" 8", 8.0),
        ("**9**", 9.0),
        ("Score: 6/10", 6.0),
        ("I would rate it 7 out of 10.", 7.0),
        ("Rating: 7.5", 7.5),
        ("On a scale of 1-10, I give this a 4.", 4.0),
        ("10", 10.0),
        ("[[3]]", 3.0),
        ("0", None),
        ("42", None),
        ("eleven", None),
        ("", None),
        ("The answer is good", None),
    ],
)
def test_judge_replies_are_parsed_robustly(reply, value):
    assert parse_judge_score(reply) == value


def test_judge_prompt_is_filled_once_braces_in_texts_survive():
    filled = fill_judge_prompt("Q: {question}\nA: {response}", "set {response} = 1?", "x = {1, 2}")
    assert filled == "Q: set {response} = 1?\nA: x = {1, 2}"


# ---------------------------------------------------------------------------------------------------
# A sequence-classification reward model
# ---------------------------------------------------------------------------------------------------
def _direct_logits(model_dir, questions, responses):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    values = []
    for question, response in zip(questions, responses):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": response}], tokenize=False
        )
        with torch.no_grad():
            values.append(model(**tokenizer(text, add_special_tokens=False, return_tensors="pt")).logits[0, 0].item())
    return values


def test_classifier_scores_the_summary_with_the_logit_batched(classifier_dir):
    completions = [
        "<think>\nthinking\n</think>\nParis is the capital of France.",
        "<think>\nother thoughts entirely\n</think>\nI do not know.",
        "<think>\nhmm\n</think>\nLyon, maybe? Or Marseille, the largest port.",
    ]
    reward = get_reward("helpfulness", model=classifier_dir, device="cpu", batch_size=2, template="think")
    scores, logged = call(reward, completions)
    expected = _direct_logits(
        classifier_dir, ["What is the capital of France?"] * 3, [summary_part(c, THINK) for c in completions]
    )
    assert scores == pytest.approx(expected, abs=1e-4)  # padded batches score like single inputs
    assert len({round(s, 6) for s in scores}) == 3
    assert logged["reward_failures/helpfulness"] == 0.0 and logged["reward_stats/helpfulness/empty"] == 0.0
    assert logged["reward_stats/helpfulness/tokens"] > 10 and logged["reward_stats/helpfulness/truncated"] == 0.0
    assert logged["reward_stats/helpfulness/raw"] == pytest.approx(sum(expected) / 3, abs=1e-4)
    # The reasoning does not count: same summary, other reasoning → same score
    other = call(reward, ["<think>\ncompletely different reasoning\n</think>\nParis is the capital of France."])[0]
    assert other == pytest.approx(scores[:1], abs=1e-4)
    # An empty summary scores 0 without a model call; sigmoid maps a logit into (0, 1)
    assert call(reward, ["<think>\ncut off"])[1]["reward_stats/helpfulness/empty"] == 1.0
    squashed = call(
        get_reward("helpfulness", model=classifier_dir, device="cpu", sigmoid=True, template="think"), completions
    )[0]
    assert all(0 < value < 1 for value in squashed)


def test_models_load_lazily_once_per_process_and_are_shared(classifier_dir):
    first = get_reward("helpfulness", model=classifier_dir, device="cpu", max_length=8)
    second = get_reward("harmlessness", model=classifier_dir, device="cpu")
    assert load_classifier.cache_info().currsize == 0 and first.loaded is None  # nothing loaded to build them
    _, logged = call(first, ["A long answer that is certainly longer than eight tokens of the tokenizer."])
    assert logged["reward_stats/helpfulness/truncated"] == 1.0  # max_length cuts the input, and says so
    call(second, ["Fine."])
    info = load_classifier.cache_info()
    assert info.currsize == 1 and info.hits == 1 and first.loaded[0] is second.loaded[0]
    call(first, ["Again."])
    assert load_classifier.cache_info().misses == 1  # the reward keeps the model it got


def test_label_probability_invert_and_label_errors(safety_classifier_dir, classifier_dir):
    completions = ["<think>\nok\n</think>\nSure, here is how.", "<think>\nno\n</think>\nI cannot help with that."]
    safe = get_reward("harmlessness", model=safety_classifier_dir, label="safe", device="cpu", template="think")
    harmful_inverted = get_reward(
        "harmlessness", model=safety_classifier_dir, label="HARMFUL", invert=True, device="cpu"
    )
    p_safe = call(safe, completions)[0]
    p_not_harmful = call(harmful_inverted, completions)[0]
    assert all(0 < p < 1 for p in p_safe + p_not_harmful)
    by_index = call(
        get_reward("harmlessness", model=safety_classifier_dir, label="2", device="cpu", template="think"), completions
    )[0]
    assert by_index == pytest.approx(p_safe)
    with pytest.raises(UserError, match=r"choose the one to score with label: .*2: safe"):
        get_reward("harmlessness", model=safety_classifier_dir)
    with pytest.raises(UserError, match="no label 'toxic'"):
        get_reward("harmlessness", model=safety_classifier_dir, label="toxic")
    with pytest.raises(UserError, match="single output"):
        get_reward("helpfulness", model=classifier_dir, label="safe")


# ---------------------------------------------------------------------------------------------------
# A generative judge
# ---------------------------------------------------------------------------------------------------
def test_unparsable_judgements_score_0_and_are_counted_never_raised(tiny_model_dir, caplog):
    reward = get_reward("helpfulness", model=tiny_model_dir, device="cpu", max_new_tokens=4, template="think")
    completions = [f"<think>\nx\n</think>\nAnswer number {i}." for i in range(3)]
    scores, logged = call(reward, completions)
    assert scores == [0.0, 0.0, 0.0]  # a random model writes no score
    assert reward.failures == 3
    assert logged["reward_failures/helpfulness"] == 3.0 and logged["reward_stats/helpfulness/unparsed"] == 3.0
    assert "unparsable judgement" in caplog.text
    # an exception inside a batch is a counted 0 as well
    reward._judge = lambda *args: (_ for _ in ()).throw(RuntimeError("CUDA out of memory"))
    scores, logged = call(reward, completions[:2])
    assert scores == [0.0, 0.0] and reward.failures == 5 and logged["reward_failures/helpfulness"] == 2.0


def test_digit_judge_scores_are_normalised_to_0_1(digit_judge_dir):
    reward = get_reward(
        "harmlessness",
        model=digit_judge_dir,
        device="cpu",
        judge_prompt="{question} {response}",
        judge_prefill="",
        chat_template=False,
        max_new_tokens=1,
        batch_size=3,
    )
    completions = [
        f"<reasoning>\nstep {word}\n</reasoning>\n<answer>\n{word}\n</answer>"
        for word in ("cat", "dog", "sun", "tree", "a b c")
    ]
    scores, logged = call(reward, completions)
    assert reward.failures == 0 and logged["reward_stats/harmlessness/unparsed"] == 0.0
    assert all(round(score * 9 + 1, 6) in {float(d) for d in DIGITS} for score in scores)
    assert 1.0 <= logged["reward_stats/harmlessness/raw"] <= 9.0


def test_model_reward_options_are_checked_when_built(tmp_path):
    with pytest.raises(UserError, match="needs model"):
        get_reward("helpfulness")
    with pytest.raises(UserError, match="kind 'rm'"):
        get_reward("helpfulness", model="org/rm", kind="rm")
    with pytest.raises(UserError, match="device 'gpu0'"):
        get_reward("helpfulness", model="org/rm", device="gpu0")
    with pytest.raises(UserError, match=r"must contain \{response\}"):
        get_reward("helpfulness", model="org/rm", judge_prompt="Rate it.")
    with pytest.raises(UserError, match="embedded model is a causal LM"):
        get_reward("helpfulness", model="embedded", kind="classifier")
    # a hub id is only read when the first batch comes: building the reward needs no network
    assert get_reward("helpfulness", model="org/some-reward-model", device="cuda:1").loaded is None


def test_a_model_that_cannot_load_stops_the_run_with_its_error(tmp_path):
    broken = tmp_path / "broken-rm"
    broken.mkdir()
    (broken / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForSequenceClassification"], "model_type": "llama"})
    )
    (broken / "model.safetensors").write_bytes(b"not weights")
    reward = get_reward("helpfulness", model=str(broken), device="cpu")
    with pytest.raises(UserError, match="cannot load reward model"):
        call(reward, ["An answer."])


# ---------------------------------------------------------------------------------------------------
# Routing by source, and the mix task
# ---------------------------------------------------------------------------------------------------
def mix_task(gsm8k_fixture_dir, **spec):
    options = {"reasoning": {"task": "gsm8k", "dataset": gsm8k_fixture_dir, "limit": 4}, "general": GENERAL_PROMPTS}
    return get_task(TaskSpec(task="mix", task_options=options, **spec))


def test_mix_task_interleaves_sources_and_keeps_each_tasks_checker(gsm8k_fixture_dir):
    task = mix_task(gsm8k_fixture_dir)
    rows = task.load()
    assert len(rows) == 4 + 32 and {row["source"] for row in rows} == {"reasoning", "general"}
    assert [row["task_index"] for row in rows] == list(range(36))
    reasoning = [row for row in rows if row["source"] == "reasoning"]
    general = [row for row in rows if row["source"] == "general"]
    assert all(row["answer"] for row in reasoning) and all(row["answer"] == "" for row in general)
    # sources come back from the columns that reach rewards (split, task_index)
    assert task.source_of({"split": "train", "task_index": reasoning[0]["task_index"]}) == "reasoning"
    assert task.source_of({"split": "train", "task_index": general[0]["task_index"]}) == "general"
    gold = reasoning[0]
    right = f"<think>\nok\n</think>\n\\boxed{{{gold['answer']}}}"
    assert task.check(right, {"split": "train", "task_index": gold["task_index"]}, THINK).correct
    assert not task.check(right, {"split": "train", "task_index": general[0]["task_index"]}, THINK).correct
    # general prompts get a system prompt without \boxed; reasoning prompts keep the template's
    assert "\\boxed" not in task.prompt(general[0]["question"], THINK)[0]["content"]
    assert task.prompt(gold["question"], THINK)[0]["content"] == THINK.system_prompt
    # a limit keeps both sources; other splits (eval) hold the reasoning part only
    limited = mix_task(gsm8k_fixture_dir, limit=9).load()
    assert {row["source"] for row in limited} == {"reasoning", "general"}
    assert {row["source"] for row in mix_task(gsm8k_fixture_dir).load(split="test")} == {"reasoning"}


def test_mix_task_errors(gsm8k_fixture_dir):
    with pytest.raises(UserError, match=r"needs task_options\.reasoning"):
        get_task(TaskSpec(task="mix", task_options={"general": GENERAL_PROMPTS}))
    with pytest.raises(UserError, match=r"needs task_options\.general"):
        get_task(TaskSpec(task="mix", task_options={"reasoning": {"task": "gsm8k"}}))
    with pytest.raises(UserError, match="unknown task_options"):
        get_task(TaskSpec(task="mix", task_options={"reasoning": {"task": "gsm8k"}, "general": "x", "ratio": 2}))
    with pytest.raises(UserError, match="unknown config key 'limt'"):
        get_task(TaskSpec(task="mix", task_options={"reasoning": {"task": "gsm8k", "limt": 3}, "general": "x"}))


def test_each_row_is_scored_only_by_the_rewards_of_its_source(gsm8k_fixture_dir, classifier_dir):
    task = mix_task(gsm8k_fixture_dir)
    rows = task.load()[:12]
    functions, weights = build_rewards(
        [
            {"name": "routed", "reward": "accuracy", "sources": ["reasoning"], "weight": 1.0},
            {"name": "routed", "reward": "think.format", "sources": "reasoning", "options": {"score": 0.5}},
            {"name": "helpfulness", "model": classifier_dir, "device": "cpu", "sources": ["general"], "sigmoid": True},
        ],
        {"task": task, "template": "think"},
    )
    assert [f.__name__ for f in functions] == ["accuracy", "think.format", "helpfulness"] and weights == [1.0, 1.0, 1.0]
    completions = [f"<think>\nok\n</think>\n\\boxed{{{row['answer'] or 'hi'}}}" for row in rows]
    columns = {key: [row[key] for row in rows] for key in ("answer", "task_index", "split")}  # as grpo passes them
    prompts = [task.prompt(row["question"], THINK) for row in rows]
    is_reasoning = [row["source"] == "reasoning" for row in rows]
    accuracy, format_, helpful = (call(f, completions, prompts, **columns)[0] for f in functions)
    assert [value is not None for value in accuracy] == is_reasoning and all(
        v == 1.0 for v in accuracy if v is not None
    )
    assert [value is not None for value in format_] == is_reasoning and all(v == 0.5 for v in format_ if v is not None)
    assert [value is None for value in helpful] == is_reasoning and all(0 < v < 1 for v in helpful if v is not None)
    # rows that say nothing about their source are scored by every reward
    assert call(functions[0], ["<think>\nx\n</think>\n\\boxed{1}"], ["q"], answer=["1"])[0] == [1.0]
    with pytest.raises(UserError, match="unknown source"):
        build_rewards([{"name": "routed", "reward": "accuracy", "sources": ["reasoning_"]}], {"task": task})
    with pytest.raises(UserError, match="needs sources"):
        get_reward("routed", reward="accuracy")


# ---------------------------------------------------------------------------------------------------
# Two real GRPO steps driven by each model reward
# ---------------------------------------------------------------------------------------------------
def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(model_dir, "model.safetensors"))


def _grpo(tmp_path, policy_dir, gsm8k_fixture_dir, template, rewards) -> tuple[list[dict], dict]:
    output_dir = tmp_path / "grpo"
    config = {
        "model": policy_dir,
        "task": "mix",
        # one reasoning row and 8 general ones: every step holds general prompts
        "task_options": {
            "reasoning": {"task": "gsm8k", "dataset": gsm8k_fixture_dir, "limit": 1},
            "general": {"dataset": GENERAL_PROMPTS, "limit": 8},
        },
        "template": template,
        "rewards": rewards,
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "max_completion_length": 16,
        "max_steps": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "output_dir": str(output_dir),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert cli_main(["grpo", "--config", str(path)]) == 0
    before, after = _weights(policy_dir), _weights(str(output_dir))
    assert [name for name in before if not (before[name] == after[name]).all()], "GRPO did not change any weight"
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    records = [record for record in records if "loss" in record]  # the two steps, not the run's summary
    assert [record["step"] for record in records] == [1, 2]
    marker = json.loads((output_dir / "r1lab_stage.json").read_text())
    return records, marker


def test_two_grpo_steps_driven_by_a_sequence_classification_reward_model(
    tiny_model_dir, classifier_dir, gsm8k_fixture_dir, tmp_path
):
    records, marker = _grpo(
        tmp_path,
        tiny_model_dir,
        gsm8k_fixture_dir,
        "think",
        [
            {"name": "routed", "reward": "accuracy", "sources": ["reasoning"], "weight": 1.0},
            {"name": "language_consistency", "language": "en", "sources": ["reasoning"], "weight": 1.0},
            {"name": "helpfulness", "model": classifier_dir, "device": "cpu", "sources": ["general"], "batch_size": 4},
        ],
    )
    for record in records:
        assert isinstance(record["rewards/helpfulness/mean"], float) and record["rewards/helpfulness/std"] > 0
        assert record["reward_failures/helpfulness"] == 0.0
        assert record["reward_stats/helpfulness/rows"] >= 4 and record["reward_stats/helpfulness/tokens"] > 0
        assert record["reward_failures/accuracy"] == 0.0 and "reward_stats/accuracy/rows" in record
        if record["reward_stats/language_consistency/rows"]:  # a step with a reasoning prompt
            assert record["reward_stats/language_consistency/no_reasoning"] >= 0
    assert "reward_failures" not in marker["figures"] or "helpfulness" not in marker["figures"]["reward_failures"]


def test_two_grpo_steps_driven_by_a_generative_judge(tiny_model_dir, digit_judge_dir, gsm8k_fixture_dir, tmp_path):
    judge = {
        "device": "cpu",
        "judge_prompt": "{question} {response}",
        "judge_prefill": "",
        "chat_template": False,
        "max_new_tokens": 1,
    }
    records, marker = _grpo(
        tmp_path,
        tiny_model_dir,
        gsm8k_fixture_dir,
        "xml",
        [
            {"name": "harmlessness", "model": digit_judge_dir, "sources": ["general"], **judge},
            # a random model as judge never writes a score: every judgement fails, is counted, scores 0
            {
                "name": "helpfulness",
                "model": tiny_model_dir,
                "device": "cpu",
                "max_new_tokens": 3,
                "sources": ["general"],
            },
        ],
    )
    for record in records:
        assert record["rewards/harmlessness/std"] > 0 and record["reward_failures/harmlessness"] == 0.0
        assert 1 <= record["reward_stats/harmlessness/raw"] <= 9
        assert record["rewards/helpfulness/mean"] == 0.0
        assert record["reward_stats/helpfulness/unparsed"] == record["reward_failures/helpfulness"] > 0
    assert marker["figures"]["reward_failures"]["helpfulness"] > 0


# ---------------------------------------------------------------------------------------------------
# The recipes
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", ["recipes/quickstart/all_scenario_rl.yaml", "recipes/r1/all_scenario_rl.yaml"])
def test_all_scenario_recipes_build_their_task_and_routed_rewards(recipe, monkeypatch):
    from r1lab.config import load_config
    from r1lab.stages.grpo import R1GRPOConfig

    monkeypatch.chdir(REPO_ROOT)
    config = load_config(R1GRPOConfig, recipe, {})
    task = get_task(config)
    functions, weights = build_rewards(config.rewards, {"task": task, "template": config.template})
    names = [function.__name__ for function in functions]
    assert {"accuracy", "language_consistency", "helpfulness", "harmlessness"} <= set(names)
    by_name = dict(zip(names, functions))
    assert by_name["accuracy"].sources == ("reasoning",)
    assert by_name["helpfulness"].sources == by_name["harmlessness"].sources == ("general",)
    assert by_name["language_consistency"].language == "prompt" and weights[names.index("language_consistency")] == 1.0
    assert weights[names.index("accuracy")] == 1.0
    assert all(function.loaded is None for function in functions if hasattr(function, "loaded"))  # lazily
    if "quickstart" in recipe:  # offline: its general prompts load, and the judge is the embedded model
        assert {row["source"] for row in task.load()} == {"reasoning", "general"}
        assert by_name["helpfulness"].kind == "judge"
