"""Score an eval's completions with any rewards, as a GRPO run would, and print one table row per completion and
each reward's mean: how a reward judges a model's real outputs before you train with it.

    python examples/rewards/score_samples.py runs/eval --rewards '[{name: cosine, options: {max_len: 96}}, reasoning_steps]'

``runs/eval`` is an ``r1lab eval`` output directory (``samples.jsonl`` and ``summary.json``); the rewards are a YAML
list as in a recipe (registered names or dotted paths, with options). Each completion is scored with its
question's row (the task and template come from the eval's settings) and its token ids from the eval model's
tokenizer, the greedy completion and the k samples alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import yaml

from r1lab.models import load_tokenizer
from r1lab.rewards import build_rewards
from r1lab.tasks import TaskSpec, get_task
from r1lab.templates import get_template


def completions_of(eval_dir: str) -> tuple[dict, list[dict]]:
    """The eval's settings and one entry per completion: its text, its row and where it came from."""
    with open(os.path.join(eval_dir, "summary.json"), encoding="utf-8") as handle:
        settings = json.load(handle)["settings"]
    entries = []
    with open(os.path.join(eval_dir, "samples.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            row = {
                "question": record["question"],
                "answer": record["gold"],
                "task_index": record["task_index"],
                "split": settings["split"],
            }
            outputs = ([("greedy", record["greedy"])] if record.get("greedy") else []) + [
                (f"sample {number}", sample) for number, sample in enumerate(record["samples"], 1)
            ]
            for kind, output in outputs:
                entries.append({"question": record["index"], "kind": kind, "row": row, **output})
    return settings, entries


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir")
    parser.add_argument("--rewards", required=True, help="a YAML list of rewards, as in a recipe")
    parser.add_argument("--show", choices=("all", "greedy"), default="all", help="rows printed (the mean is over all)")
    args = parser.parse_args(argv)
    settings, entries = completions_of(args.eval_dir)
    spec = TaskSpec(
        **{field.name: settings[field.name] for field in dataclasses.fields(TaskSpec) if field.name in settings}
    )
    task, template = get_task(spec), get_template(settings["template"])
    rewards, _ = build_rewards(yaml.safe_load(args.rewards), {"task": task, "template": template.name})
    tokenizer = load_tokenizer(settings["model"])
    scores = {reward.__name__: [] for reward in rewards}
    for entry in entries:
        kwargs = {
            "prompts": [task.prompt(entry["row"]["question"], template)],
            "completions": [[{"role": "assistant", "content": entry["completion"]}]],
            "completion_ids": [tokenizer(entry["completion"], add_special_tokens=False)["input_ids"]],
            **{key: [value] for key, value in entry["row"].items()},
        }
        for reward in rewards:
            scores[reward.__name__].append(reward(**kwargs)[0])
    names = list(scores)
    print("| question | completion | tokens | correct | " + " | ".join(f"`{name}`" for name in names) + " |")
    print("|---" * (4 + len(names)) + "|")
    for index, entry in enumerate(entries):
        if args.show == "greedy" and entry["kind"] != "greedy":
            continue
        values = " | ".join(f"{scores[name][index]:.3f}" for name in names)
        print(
            f"| {entry['question']} | {entry['kind']} | {entry['tokens']} | {'yes' if entry['correct'] else 'no'} | {values} |"
        )
    means = {name: sum(values) / len(values) for name, values in scores.items()}
    print(
        f"| mean of {len(entries)} | | "
        + f"{sum(e['tokens'] for e in entries) / len(entries):.1f} | "
        + f"{sum(e['correct'] for e in entries)}/{len(entries)} | "
        + " | ".join(f"{means[name]:.3f}" for name in names)
        + " |"
    )
    return means


if __name__ == "__main__":
    main()
