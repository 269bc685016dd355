"""THE SEED'S BASELINE: the seed's GRPO script ("GRPO强化学习训练实践", Qwen2.5-0.5B-Instruct on GSM8K with TRL),
kept as close to the original as TRL 1.x allows, so that ``r1lab bench grpo`` can time r1lab against it.

Changes from the seed, and why (nothing else differs: prompts, five reward functions, printing, hyper-parameters):

- TRL 1.x: ``max_prompt_length`` is gone (dropped; every GSM8K prompt of the seed is < 256 tokens anyway),
  ``warmup_ratio=0.1`` became ``warmup_steps=0.1`` (a float < 1 is a ratio), ``vllm_device`` was already commented out.
- Parameters instead of hard-coded paths, so it runs offline: ``--model`` (the seed: model/Qwen2.5-0.5B-Instruct),
  ``--dataset`` (a local GSM8K folder or file; the seed: ./dataset/gsm8k/main/train-*.parquet; default: the hub),
  ``--limit`` (the seed: 500), ``--max_steps`` (the seed: one epoch), ``--max_completion_length`` (the seed: 200),
  ``--output_dir``.
- The device: bf16 and ``.to("cuda")`` only when a GPU is there (the seed assumes one); float32 on the CPU unless
  ``--cpu_bf16`` asks for the seed's bf16 there too (then ``use_cpu=True``, which TRL needs to accept bf16).

    .venv/bin/python benchmarks/seed_grpo.py --model ~/.cache/r1lab/SmolLM2-135M-Instruct \\
        --dataset ../shared/data/gsm8k --max_steps 4 --output_dir /tmp/seed-grpo
"""

import argparse
import glob
import os
import re

import torch
from datasets import Dataset, load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

# 定义了系统提示（prompt）的格式：
SYSTEM_PROMPT = """
Respond in the following format:
<reasoning>
...
</reasoning>
<answer>
...
</answer>
"""

XML_COT_FORMAT = """\
<reasoning>
{reasoning}
</reasoning>
<answer>
{answer}
</answer>
"""


def extract_xml_answer(text: str) -> str:
    answer = text.split("<answer>")[-1]
    answer = answer.split("</answer>")[0]
    return answer.strip()


def extract_hash_answer(text: str) -> str | None:
    if "####" not in text:
        return None
    return text.split("####")[1].strip()


def _data_files(dataset: str, split: str) -> tuple[str, list[str]]:
    """(builder, files) for a local GSM8K copy: a jsonl/parquet file, or a folder holding {split}.jsonl or
    (main/){split}-*.parquet. (Not in the seed, which globbed ./dataset/gsm8k/main/train-*.parquet.)"""
    if os.path.isfile(dataset):
        return ("parquet" if dataset.endswith(".parquet") else "json"), [dataset]
    for folder in (dataset, os.path.join(dataset, "main")):
        if os.path.isfile(os.path.join(folder, f"{split}.jsonl")):
            return "json", [os.path.join(folder, f"{split}.jsonl")]
        parquet = sorted(glob.glob(os.path.join(folder, f"{split}-*.parquet")))
        if parquet:
            return "parquet", parquet
    raise SystemExit(f"seed_grpo: no {split} split in {dataset}")


## 加载 `GSM8K` 数据集，并将问题与系统提示结合，格式化后返回。
def get_gsm8k_questions(split="train", dataset=None, limit=500) -> Dataset:
    if dataset is None:
        data = load_dataset("openai/gsm8k", "main")[split]
    else:
        builder, files = _data_files(dataset, split)
        data = load_dataset(builder, data_files={split: files})[split]
    data = data.select(range(min(limit, len(data))))  # 为了快我取了500条

    data = data.map(lambda x: {
        'prompt': [
            {'role': 'system', 'content': SYSTEM_PROMPT},
            {'role': 'user', 'content': x['question']}
        ],
        'answer': extract_hash_answer(x['answer'])
    })
    return data


# Reward functions (the seed's, unchanged)

def correctness_reward_func(prompts, completions, answer, **kwargs) -> list[float]:
    responses = [completion[0]['content'] for completion in completions]
    q = prompts[0][-1]['content']
    extracted_responses = [extract_xml_answer(r) for r in responses]
    print('-'*20, f"Question:\n{q}", f"\nAnswer:\n{answer[0]}", f"\nResponse:\n{responses[0]}", f"\nExtracted:\n{extracted_responses[0]}")
    return [2.0 if r == a else 0.0 for r, a in zip(extracted_responses, answer)]


def int_reward_func(completions, **kwargs) -> list[float]:
    responses = [completion[0]['content'] for completion in completions]
    extracted_responses = [extract_xml_answer(r) for r in responses]
    return [0.5 if r.isdigit() else 0.0 for r in extracted_responses]


def strict_format_reward_func(completions, **kwargs) -> list[float]:
    """Reward function that checks if the completion has a specific format."""
    pattern = r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
    responses = [completion[0]["content"] for completion in completions]
    matches = [re.match(pattern, r) for r in responses]
    return [0.5 if match else 0.0 for match in matches]


def soft_format_reward_func(completions, **kwargs) -> list[float]:
    """Reward function that checks if the completion has a specific format."""
    pattern = r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"
    responses = [completion[0]["content"] for completion in completions]
    matches = [re.match(pattern, r) for r in responses]
    return [0.5 if match else 0.0 for match in matches]


def count_xml(text) -> float:
    count = 0.0
    if text.count("<reasoning>\n") == 1:
        count += 0.125
    if text.count("\n</reasoning>\n") == 1:
        count += 0.125
    if text.count("\n<answer>\n") == 1:
        count += 0.125
        count -= len(text.split("\n</answer>\n")[-1])*0.001
    if text.count("\n</answer>") == 1:
        count += 0.125
        count -= (len(text.split("\n</answer>")[-1]) - 1)*0.001
    return count


def xmlcount_reward_func(completions, **kwargs) -> list[float]:
    contents = [completion[0]["content"] for completion in completions]
    return [count_xml(c) for c in contents]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="the seed's GRPO script on TRL 1.x (r1lab's benchmark baseline)")
    parser.add_argument("--model", default="model/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--dataset", default=None, help="local GSM8K folder or file (default: openai/gsm8k from the hub)")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--max_steps", type=int, default=-1, help="optimizer steps (default -1: one epoch, as the seed)")
    parser.add_argument("--max_completion_length", type=int, default=200, help="the seed: 200")
    parser.add_argument("--output_dir", default="outputs/Qwen-0.5B-GRPO")
    parser.add_argument("--cpu_bf16", action="store_true",
                        help="without a GPU, run in bf16 as the seed does on one (TRL needs use_cpu for that)")
    args = parser.parse_args(argv)
    on_gpu = torch.cuda.is_available()
    bf16 = on_gpu or args.cpu_bf16

    dataset = get_gsm8k_questions("train", args.dataset, args.limit)
    print(f"{dataset[0]}")  # 1条示例数据

    # 模型名和训练输出目录
    model_name = args.model
    output_dir = args.output_dir
    run_name = "Qwen-0.5B-GRPO-gsm8k"

    # GRPO训练参数配置
    training_args = GRPOConfig(
        output_dir=output_dir,
        run_name=run_name,
        learning_rate=5e-6,
        adam_beta1=0.9,
        adam_beta2=0.99,
        weight_decay=0.1,
        warmup_steps=0.1,  # TRL 1.x: was warmup_ratio=0.1
        lr_scheduler_type='cosine',
        logging_steps=1,
        bf16=bf16,  # the seed: True (it assumed a GPU)
        use_cpu=bf16 and not on_gpu,  # not in the seed: --cpu_bf16 only, lets TRL accept bf16 without a GPU
        per_device_train_batch_size=1,
        gradient_accumulation_steps=4,
        num_generations=16,
        # max_prompt_length=256,  # TRL 1.x: removed
        max_completion_length=args.max_completion_length,
        num_train_epochs=1,
        max_steps=args.max_steps,  # not in the seed: the benchmark runs a few steps
        save_steps=100,
        max_grad_norm=0.1,
        log_on_each_node=False,
        use_vllm=False,
        vllm_gpu_memory_utilization=.3,
        generation_batch_size=16,
    )

    model = AutoModelForCausalLM.from_pretrained(
        model_name,
        torch_dtype=torch.bfloat16 if bf16 else torch.float32,
        device_map=None,
    ).to("cuda" if on_gpu else "cpu")

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenizer.pad_token = tokenizer.eos_token

    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[
            xmlcount_reward_func,
            soft_format_reward_func,
            strict_format_reward_func,
            int_reward_func,
            correctness_reward_func],
        args=training_args,
        train_dataset=dataset,
    )

    trainer.train()
    trainer.save_model(output_dir)


if __name__ == "__main__":
    main()
